"""SIGINT and SIGTERM end every command cleanly, in the foreground and in the background.

Subprocesses on the real clock, each bounded by ``trio.fail_after``; the signal goes out
once the command has said something (its first stdout line), never after a sleep. A
background job is mimicked the way a non-interactive shell starts one: SIGINT ignored
before ``exec`` (Python then installs no KeyboardInterrupt handler of its own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import tickactors

SRC = Path(tickactors.__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
ENV.pop("TICKACTORS_TOKEN", None)


@attrs.define
class Ended:
    code: int
    out: list[str]
    err: str


async def signalled(
    argv: list[str],
    sig: signal.Signals,
    *,
    background: bool = False,
    first: Callable[[str], bool] = lambda line: True,
    timeout: float = 60.0,
) -> Ended:
    """``python -m tickactors ARGV``; ``sig`` once a stdout line satisfies ``first``."""
    command = [sys.executable, "-m", "tickactors", *argv]
    if background:
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    process = await trio.lowlevel.open_process(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = bytearray(), bytearray()
    seen = trio.Event()

    async def read_stdout() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.receive_some(65536):
            out.extend(chunk)
            whole_lines = out.decode().split("\n")[:-1]
            if not seen.is_set() and any(first(line) for line in whole_lines):
                seen.set()
        seen.set()  # ended without one: the asserts below will say so

    async def read_stderr() -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.receive_some(65536):
            err.extend(chunk)

    try:
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_stdout)
                nursery.start_soon(read_stderr)
                await seen.wait()
                if process.returncode is None:
                    process.send_signal(sig)
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.aclose()
        await process.stderr.aclose()
    return Ended(process.returncode, out.decode().splitlines(), err.decode())


def is_json_progress(line: str) -> bool:
    return line.startswith("{") and "event" in json.loads(line)


def chaos_summary(ended: Ended, sig: signal.Signals) -> dict[str, Any]:
    """The summary of an interrupted soak that lost nothing, checked as far as it goes."""
    assert "Traceback" not in ended.err and "Group" not in ended.err, ended.err
    (line,) = ended.err.splitlines()  # one line: what it does after the signal
    assert line.startswith(f"chaos: {sig.name}: faults and churn stopped"), line
    summary: dict[str, Any] = json.loads(ended.out[-1])
    assert ended.code == 0, summary
    assert summary["interrupted"] is True and summary["ok"] is True
    assert summary["faults_recovered"] == summary["faults_injected"]
    events = [json.loads(x)["event"] for x in ended.out[:-1]]
    assert events.index("interrupted") < events.index("faults_stopped")
    return summary


@pytest.mark.slow
async def test_chaos_stops_on_sigint_and_sigterm_foreground_background_and_virtual() -> None:
    soak = ["chaos", "--duration", "30", "--settle", "25"]
    cases = {
        "sigint": (soak, signal.SIGINT, False),
        "sigterm": (soak, signal.SIGTERM, False),
        "background": (soak, signal.SIGINT, True),
        "virtual": (
            ["chaos", "--duration", "86400", "--clock", "virtual"],
            signal.SIGINT,
            True,
        ),
    }
    ended: dict[str, Ended] = {}

    async def one(name: str) -> None:
        argv, sig, background = cases[name]
        ended[name] = await signalled(argv, sig, background=background, first=is_json_progress)

    async with trio.open_nursery() as nursery:
        for name in cases:
            nursery.start_soon(one, name)
    for name, (argv, sig, _) in cases.items():
        summary = chaos_summary(ended[name], sig)
        assert summary["duration_s"] < float(argv[2]), (name, summary)
    assert chaos_summary(ended["virtual"], signal.SIGINT)["clock"] == "virtual"


async def test_run_sim_and_the_demo_stop_cleanly_on_signals_even_in_the_background() -> None:
    run = ["run", "--url", "ws://127.0.0.1:1/x", "--token", "t", "--symbols", "A"]
    cases = {
        "run": ([*run, "--format", "jsonl"], signal.SIGINT, True),
        "run-sigterm": ([*run, "--format", "jsonl"], signal.SIGTERM, False),
        "sim": (["sim"], signal.SIGINT, False),
        "sim-background": (["sim", "--venue", "tradovate"], signal.SIGINT, True),
        "demo": (["--format", "jsonl"], signal.SIGINT, True),
    }
    ended: dict[str, Ended] = {}

    async def one(name: str) -> None:
        argv, sig, background = cases[name]
        ended[name] = await signalled(argv, sig, background=background)

    async with trio.open_nursery() as nursery:
        for name in cases:
            nursery.start_soon(one, name)
    for name, result in ended.items():
        assert result.code == 0, (name, result)
        assert "Traceback" not in result.err and "KeyboardInterrupt" not in result.err, name
    for name in ("run", "run-sigterm", "demo"):
        assert json.loads(ended[name].out[-1])["event"] == "stopped", name
        assert ended[name].err == "", name
    for name in ("sim", "sim-background"):
        assert ended[name].out[0].startswith("listening ws://127.0.0.1:")
        assert ended[name].err.startswith("stopped: connections=")
