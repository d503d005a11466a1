"""The runner as a subprocess: JSON lines out, commands in, SIGINT out, secrets never shown.

These run in real time (a child process cannot share our mock clock), bounded
by ``trio.fail_after`` everywhere; the simulator runs in the test's own Trio run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import trio

from tickactors.sim import SimConfig, open_simulator

TOKEN = "runner-SECRET-9c9c"


class Child:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[dict] = []
        self._buffer = b""

    async def next_line(self) -> dict:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise EOFError(self._buffer)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        obj = json.loads(line)
        self.lines.append(obj)
        return obj

    async def wait_for(self, predicate, timeout: float = 15.0) -> dict:
        with trio.fail_after(timeout):
            while True:
                obj = await self.next_line()
                if predicate(obj):
                    return obj

    async def __aenter__(self) -> Child:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process.returncode is None:
            self.process.kill()
        with trio.CancelScope(shield=True):
            await self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                await pipe.aclose()

    async def send(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(text.encode())


async def start(
    url: str,
    *args: str,
    venue: str = "alltick",
    auth: tuple[str, ...] = ("--token", TOKEN),
    **process_options: Any,
) -> Child:
    """``python -m tickactors run`` with JSON lines; ``process_options`` go to open_process."""
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "tickactors",
            "run",
            "--venue",
            venue,
            "--url",
            url,
            *auth,
            "--format",
            "jsonl",
            *args,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        **process_options,
    )
    return Child(process)


async def test_jsonl_stdin_commands_and_sigint():
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=3) as sim:
        child = await start(sim.url, "--symbols", "BTCUSDT", "--stale-after", "10")
        async with child:
            tick = await child.wait_for(lambda o: o["kind"] == "tick")
            assert tick["symbol"] == "BTCUSDT"
            assert isinstance(tick["price"], str) and float(tick["price"]) > 0
            assert {"volume", "seq", "exchange_time"} <= tick.keys()
            assert abs(tick["received_at"] - time.time()) < 60  # wall-clock epoch seconds

            await child.send("subscribe EURUSD XAUUSD\n")
            await child.wait_for(lambda o: o["kind"] == "tick" and o["symbol"] == "EURUSD")
            await child.send("unsubscribe BTCUSDT\nfrobnicate X\nsubscribe b@d\n")
            errors = []
            while len(errors) < 2:
                errors.append(
                    await child.wait_for(
                        lambda o: o["kind"] == "status" and o["event"] == "command_error"
                    )
                )
            assert "unknown command" in errors[0]["message"]
            assert "invalid symbol" in errors[1]["message"]
            confirmed = await child.wait_for(
                lambda o: o.get("event") == "subscribed" and "BTCUSDT" not in o["symbols"]
            )
            assert confirmed["symbols"] == ["EURUSD", "XAUUSD"]
            # ticks after the unsubscribe was confirmed carry desired symbols only
            for _ in range(20):
                line = await child.wait_for(lambda o: o["kind"] == "tick")
                assert line["symbol"] in {"EURUSD", "XAUUSD"}

            child.process.send_signal(signal.SIGINT)
            with trio.fail_after(2):
                code = await child.process.wait()
            assert code == 0
            assert child.process.stdout is not None
            rest = b""
            while chunk := await child.process.stdout.receive_some(65536):
                rest += chunk
        everything = json.dumps(child.lines) + (child._buffer + rest).decode()
        assert TOKEN not in everything
        assert '"event": "stopped"' in everything or '"event":"stopped"' in everything


async def test_sigterm_and_duration_end_with_exit_0():
    async with open_simulator("alltick", seed=4) as sim:
        child = await start(sim.url, "--symbols", "BTCUSDT")
        async with child:
            await child.wait_for(lambda o: o["kind"] == "tick")
            child.process.send_signal(signal.SIGTERM)
            with trio.fail_after(2):
                assert await child.process.wait() == 0
        child = await start(sim.url, "--symbols", "BTCUSDT", "--duration", "1.5")
        async with child:
            with trio.fail_after(10):
                assert await child.process.wait() == 0


async def test_bad_symbols_on_the_command_line_exit_2_and_send_nothing():
    async with open_simulator("alltick", seed=5) as sim:
        child = await start(sim.url, "--symbols", "OK,b a d")
        async with child:
            with trio.fail_after(10):
                assert await child.process.wait() == 2
        assert sim.stats.requests_by_cmd.get(22004, 0) == 0


def test_help_of_every_command():
    for args in ([], ["run"], ["sim"]):
        out = subprocess.run(
            [sys.executable, "-m", "tickactors", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert "usage:" in out


def test_options_before_the_command_are_refused_not_silently_dropped():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickactors",
            "--duration",
            "5",
            "run",
            "--url",
            "ws://127.0.0.1:1/x",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "options go after the command" in done.stderr


async def test_a_reader_that_goes_away_ends_the_runner_quietly():
    async with open_simulator("alltick", seed=6) as sim:
        child = await start(sim.url, "--symbols", "BTCUSDT,ETHUSDT")
        async with child:
            await child.wait_for(lambda o: o["kind"] == "tick")
            assert child.process.stdout is not None
            await child.process.stdout.aclose()  # like `| head` exiting
            with trio.fail_after(10):
                code = await child.process.wait()
        assert code == 0
