"""The simulator's command line: options, the first stdout line, clean exits."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import tickactors.sim
from tickactors.sim._cli import add_arguments, config_from_args, run_from_args
from tickactors.sim._probe import open_probe

SRC = Path(tickactors.sim.__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
LISTENING = re.compile(r"^listening ws://127\.0\.0\.1:(\d+)/quote-b-ws-api$")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_options_map_to_config() -> None:
    config = config_from_args(
        _parse(
            "--token",
            "a",
            "--token",
            "b",
            "--tick-interval",
            "0.5",
            "--max-symbols",
            "5",
            "--over-cap",
            "reject",
            "--default-depth",
            "5",
            "--fx-depth",
            "full",
            "--wire",
            "varied",
            "--heartbeat-timeout",
            "12",
            "--no-rate-limit",
            "--heartbeats-count-toward-rate",
            "--max-connection-age",
            "60",
            "--random-faults",
            "20",
            "--firehose",
            "--rate-scope",
            "connection",
        )
    )
    assert config.tokens == frozenset({"a", "b"})
    assert (config.tick_interval, config.max_symbols, config.over_cap) == (0.5, 5, "reject")
    assert (config.heartbeat_timeout, config.enforce_rate) == (12.0, False)
    assert config.heartbeats_count_toward_rate
    assert (config.default_depth, config.fx_depth, config.wire) == (5, "full", "varied")
    assert (config.max_connection_age, config.random_faults, config.firehose) == (60.0, 20.0, True)
    assert config.rate_scope == "connection"
    defaults = config_from_args(_parse())
    assert defaults.rate_scope == "api"  # the lenient reading, as the Go example needs
    assert defaults.tokens is None and defaults.enforce_rate and not defaults.firehose
    assert not defaults.heartbeats_count_toward_rate and defaults.over_cap == "ignore"
    assert (defaults.default_depth, defaults.fx_depth, defaults.wire) == (1, "top", "strict")
    assert (defaults.plan, defaults.max_symbols, defaults.max_connections_per_token) == (
        None,
        100,
        None,
    )
    assert defaults.token_rate_interval is None


def test_plan_options() -> None:
    plan = config_from_args(_parse("--plan", "professional"))
    assert (plan.plan, plan.max_symbols, plan.max_connections_per_token) == (
        "professional",
        3000,
        10,
    )
    assert plan.token_rate_interval == 3.0
    explicit = config_from_args(
        _parse(
            "--plan",
            "free",
            "--max-symbols",
            "7",
            "--max-connections-per-token",
            "2",
            "--token-rate-interval",
            "5",
        )
    )
    assert (explicit.max_symbols, explicit.max_connections_per_token) == (7, 2)
    assert explicit.token_rate_interval == 5.0
    with pytest.raises(SystemExit):  # refused by the parser now, before SimConfig sees it
        _parse("--max-connections-per-token", "0")


def test_bad_options_are_refused() -> None:
    for argv in (
        ["--venue", "binance"],
        ["--tick-interval", "0"],
        ["--random-faults", "-1"],
        ["--plan", "gold"],
        ["--token-rate-interval", "0"],
        ["--port", "99999"],
        ["--port", "-1"],
        ["--host", "10.1.2.3"],
        ["--max-symbols", "0"],
        ["--tick-interval", "inf"],
    ):
        with pytest.raises(SystemExit):
            _parse(*argv)


async def test_run_from_args_in_process(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_from_args(_parse("--duration", "5", "--seed", "3")) == 0
    assert trio.current_time() == 5.0
    out = capsys.readouterr()
    assert LISTENING.match(out.out.splitlines()[0])
    assert "stopped:" in out.err
    not_loopback = _parse("--duration", "1")
    not_loopback.host = "10.1.2.3"  # the parser refuses it; run_from_args does too
    assert await run_from_args(not_loopback) == 2


async def test_help() -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "tickactors.sim", "--help"], capture_stdout=True, env=ENV
    )
    text = result.stdout.decode()
    for option in (
        "--port",
        "--seed",
        "--random-faults",
        "--firehose",
        "--duration",
        "--token",
        "--over-cap",
        "--default-depth",
        "--fx-depth",
        "--wire",
        "--heartbeats-count-toward-rate",
        "--no-rate-limit",
        "--max-connection-age",
        "--heartbeat-timeout",
        "--plan",
        "--max-connections-per-token",
        "--token-rate-interval",
    ):
        assert option in text


async def test_duration_run_exits_zero() -> None:
    result = await trio.run_process(
        [sys.executable, "-W", "error", "-m", "tickactors.sim", "--duration", "1", "--port", "0"],
        capture_stdout=True,
        capture_stderr=True,
        env=ENV,
    )
    assert LISTENING.match(result.stdout.decode().splitlines()[0])
    assert "stopped:" in result.stderr.decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_signal_stops_cleanly(sig: signal.Signals) -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-W", "error", "-m", "tickactors.sim", "--token", "tk"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive_some(1)
        match = LISTENING.match(line.decode().strip())
        assert match
        async with open_probe(f"ws://127.0.0.1:{match[1]}/quote-b-ws-api", "tk") as probe:
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200
        proc.send_signal(sig)
        with trio.fail_after(20):
            assert await proc.wait() == 0
        err = await proc.stderr.receive_some(65536)
        assert b"stopped:" in err and b"tk" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.stdout.aclose()
        await proc.stderr.aclose()
