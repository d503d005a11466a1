"""The runner on Tradovate, as a subprocess: quotes as JSON lines, stdin commands, SIGINT,
a static token or REST credentials from the environment, secrets never shown.

Real time, like ``test_runner.py``; the simulator runs in the test's own Trio run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from tickactors.sim import SimConfig, open_simulator

from .test_runner import Child, start

TOKEN = "tv-runner-TOKEN-7e7e"
USER = "runner-user"
PASSWORD = "tv-runner-PASSWORD-3a3a"
SEC = "tv-runner-SEC-4d4d"
ENV_NAMES = (
    "TRADOVATE_USERNAME",
    "TRADOVATE_PASSWORD",
    "TRADOVATE_APP_ID",
    "TRADOVATE_APP_VERSION",
    "TRADOVATE_CID",
    "TRADOVATE_SEC",
)


def environment(**tradovate: str) -> dict[str, str]:
    """Our environment without any TRADOVATE_* or TICKACTORS_TOKEN, plus ``tradovate``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRADOVATE_") and k != "TICKACTORS_TOKEN"
    }
    env.update({f"TRADOVATE_{k.upper()}": v for k, v in tradovate.items()})
    return env


def credentials(password: str = PASSWORD) -> dict[str, str]:
    return environment(
        username=USER, password=password, app_id="tickactors", app_version="1.0", cid="8", sec=SEC
    )


async def sigint_exits_0(child: Child) -> str:
    """SIGINT; the exit code must be 0 within 2 s. Returns everything the child wrote."""
    child.process.send_signal(signal.SIGINT)
    with trio.fail_after(2):
        code = await child.process.wait()
    assert code == 0
    return await remaining(child)


async def remaining(child: Child) -> str:
    assert child.process.stdout is not None
    rest = b""
    with trio.fail_after(5):
        while chunk := await child.process.stdout.receive_some(65536):
            rest += chunk
    return json.dumps(child.lines) + (child._buffer + rest).decode()


def quote_of(symbol: str):
    return lambda o: o["kind"] == "quote" and o["symbol"] == symbol


async def test_static_token_quotes_stdin_commands_and_sigint(tmp_path: Path):
    stderr = tmp_path / "stderr"
    async with open_simulator("tradovate", config=SimConfig(tokens={TOKEN}), seed=7) as sim:
        with stderr.open("wb") as err:
            child = await start(
                sim.url,
                "--symbols",
                "ESZ6,NQZ6",
                venue="tradovate",
                auth=("--token", TOKEN),
                env=environment(),
                stderr=err,
            )
        async with child:
            for symbol in ("ESZ6", "NQZ6"):
                quote = await child.wait_for(quote_of(symbol))
                assert isinstance(quote["contract_id"], int)
                assert {"bid", "offer", "price", "total_volume", "received_at"} <= quote.keys()
                assert quote["bid"] is None or float(quote["bid"]) > 0

            # plain verbs: the venue's main stream (quotes); -book verbs: DOM
            await child.send("subscribe ymz6\nsubscribe-book ESZ6\n")
            command = await child.wait_for(lambda o: o.get("event") == "command")
            assert command["stream"] == "quotes" and command["symbols"] == ["ymz6"]
            await child.wait_for(quote_of("YMZ6"))
            book = await child.wait_for(lambda o: o["kind"] == "book")
            assert book["symbol"] == "ESZ6" and book["bids"] and book["asks"]

            await child.send("unsubscribe NQZ6\nfrobnicate X\n")
            error = await child.wait_for(lambda o: o.get("event") == "command_error")
            assert "unknown command" in error["message"]
            confirmed = await child.wait_for(
                lambda o: (
                    o.get("event") == "subscribed"
                    and o["stream"] == "quotes"
                    and "NQZ6" not in o["symbols"]
                )
            )
            assert confirmed["symbols"] == ["ESZ6", "YMZ6"]
            everything = await sigint_exits_0(child)
        assert '"event":"stopped"' in everything or '"event": "stopped"' in everything
        assert TOKEN not in everything + stderr.read_text()
        assert dict(sim.stats.violations) == {}


async def start_with_rest(sim, err) -> Child:
    """The runner on Tradovate with --rest-url and the credentials in its environment."""
    return await start(
        sim.url,
        "--symbols",
        "ESZ6",
        venue="tradovate",
        auth=("--rest-url", sim.rest_url),
        env=credentials(),
        stderr=err,
    )


async def test_rest_url_with_credentials_from_the_environment(tmp_path: Path):
    stderr = tmp_path / "stderr"
    config = SimConfig(tradovate_user=USER, tradovate_password=PASSWORD)
    async with open_simulator("tradovate", config=config, seed=8) as sim:
        with stderr.open("wb") as err:
            child = await start_with_rest(sim, err)
        async with child:
            await child.wait_for(lambda o: o.get("event") == "token_refreshed")
            await child.wait_for(quote_of("ESZ6"))
            await child.send("subscribe NQZ6\n")
            await child.wait_for(quote_of("NQZ6"))
            (conn,) = sim.connections
            _, endpoint, _, _, body = conn.requests[0]
            assert endpoint == "authorize"
            issued = body.strip()  # the md token the runner was handed
            assert len(issued) >= 16 and conn.uses_token(issued)
            everything = await sigint_exits_0(child) + stderr.read_text()
        assert sim.stats.tokens_issued == 1
        assert sim.stats.rest_calls["POST /v1/auth/accesstokenrequest"] == 1
        for secret in (PASSWORD, SEC, issued):
            assert secret not in everything


async def test_rest_url_with_a_wrong_password_exits_1_without_showing_it(tmp_path: Path):
    stderr = tmp_path / "stderr"
    config = SimConfig(tradovate_user=USER, tradovate_password="the-right-one")
    async with open_simulator("tradovate", config=config, seed=9) as sim:
        with stderr.open("wb") as err:
            child = await start_with_rest(sim, err)
        async with child:
            fatal = await child.wait_for(lambda o: o.get("event") == "fatal")
            assert fatal["error"] == "AuthenticationError"
            with trio.fail_after(5):
                assert await child.process.wait() == 1
            everything = await remaining(child) + stderr.read_text()
        assert sim.stats.connections_opened == 0
        assert PASSWORD not in everything and SEC not in everything


async def test_rest_url_without_credentials_names_the_missing_variables_and_exits_2():
    env = environment(username=USER, password=PASSWORD, cid="8")  # three of six
    done = await trio.run_process(
        [
            sys.executable,
            "-m",
            "tickactors",
            "run",
            "--venue",
            "tradovate",
            "--url",
            "ws://127.0.0.1:1/v1/websocket",
            "--rest-url",
            "http://127.0.0.1:1/v1",
            "--symbols",
            "ESZ6",
            "--format",
            "jsonl",
        ],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 2
    (line,) = [json.loads(x) for x in done.stdout.decode().splitlines()]
    assert line["kind"] == "status" and line["event"] == "error"
    for name in ("TRADOVATE_APP_ID", "TRADOVATE_APP_VERSION", "TRADOVATE_SEC"):
        assert name in line["message"]
    for name in ("TRADOVATE_USERNAME", "TRADOVATE_PASSWORD", "TRADOVATE_CID"):
        assert name not in line["message"]
    assert PASSWORD not in done.stdout.decode() + done.stderr.decode()


def test_token_and_rest_url_are_exclusive_and_rest_url_is_tradovate_only():
    base = [sys.executable, "-m", "tickactors", "run", "--url", "ws://127.0.0.1:1/x"]
    both = subprocess.run(
        [*base, "--venue", "tradovate", "--token", TOKEN, "--rest-url", "http://127.0.0.1:1/v1"],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(),
    )
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert TOKEN not in both.stdout
    alltick = subprocess.run(
        [*base, "--venue", "alltick", "--rest-url", "http://127.0.0.1:1/v1", "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(),
    )
    assert alltick.returncode == 2
    assert "--venue tradovate only" in alltick.stdout
    no_token = subprocess.run(
        [*base, "--venue", "tradovate", "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(),
    )
    assert no_token.returncode == 2
    assert "needs --token" in no_token.stdout


async def test_replay_from_the_command_line():
    config = SimConfig(tokens={TOKEN})
    async with open_simulator("tradovate", config=config, seed=8) as sim:
        child = await start(
            sim.replay_url,
            "--symbols",
            "ESZ6",
            "--replay-start",
            "2024-01-02T14:30:00.000Z",
            "--replay-speed",
            "400",
            venue="tradovate",
            auth=("--token", TOKEN),
        )
        async with child:
            clock = await child.wait_for(lambda o: o.get("event") == "clock")
            assert clock["s"] == 400 and clock["t"] >= "2024-01-02T14:30"
            await child.wait_for(lambda o: o["kind"] == "quote" and o["symbol"] == "ESZ6")
            child.process.send_signal(signal.SIGINT)
            with trio.fail_after(2):
                assert await child.process.wait() == 0


def test_replay_speed_out_of_range_is_a_usage_error():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickactors",
            "run",
            "--venue",
            "tradovate",
            "--url",
            "ws://127.0.0.1:1/replay/v1/websocket",
            "--token",
            TOKEN,
            "--replay-start",
            "2024-01-02T14:30:00Z",
            "--replay-speed",
            "900",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "0 to 400" in done.stdout + done.stderr


async def test_trade_symbols_print_tick_lines_once_each_and_stdin_unsubscribes(tmp_path: Path):
    stderr = tmp_path / "stderr"
    async with open_simulator("tradovate", config=SimConfig(tokens={TOKEN}), seed=9) as sim:
        with stderr.open("wb") as err:
            child = await start(
                sim.url,
                "--trade-symbols",
                "ESZ6,nqz6",
                venue="tradovate",
                auth=("--token", TOKEN),
                env=environment(),
                stderr=err,
            )
        async with child:
            seqs: dict[str, list[int]] = {"ESZ6": [], "NQZ6": []}
            while min(map(len, seqs.values())) < 20:
                tick = await child.wait_for(lambda o: o["kind"] == "tick")
                assert {"price", "volume", "seq", "exchange_time", "bid", "ask"} <= tick.keys()
                assert float(tick["bid"]) <= float(tick["price"]) <= float(tick["ask"])
                assert tick["exchange_time"] > 1e9 and float(tick["volume"]) > 0
                seqs[tick["symbol"]].append(tick["seq"])
            for got in seqs.values():  # the simulator's ids: 1, 2, 3, ... each once, no hole
                assert got == list(range(got[0], got[0] + len(got)))
            await child.send("unsubscribe-trades NQZ6\n")
            command = await child.wait_for(lambda o: o.get("event") == "command")
            assert command["stream"] == "trades" and command["symbols"] == ["NQZ6"]
            await child.wait_for(
                lambda o: o.get("event") == "subscribed" and o["symbols"] == ["ESZ6"]
            )
            everything = await sigint_exits_0(child)
        assert TOKEN not in everything + stderr.read_text()
        assert dict(sim.stats.violations) == {}
