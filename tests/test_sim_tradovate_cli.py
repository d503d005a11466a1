"""The simulator's command line with ``--venue tradovate``."""

from __future__ import annotations

import argparse
import re
import sys

import pytest
import trio

from tickactors.sim._cli import add_arguments, config_from_args, run_from_args

from .test_sim_cli import ENV

LISTENING = re.compile(
    r"^listening ws://127\.0\.0\.1:(\d+)/v1/websocket rest http://127\.0\.0\.1:(\d+)/v1$"
)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_options_map_to_config() -> None:
    config = config_from_args(
        _parse(
            *("--venue", "tradovate", "--token-lifetime", "600", "--user", "u"),
            *("--password", "p", "--heartbeat-timeout", "50", "--max-connections-per-user", "3"),
            *("--replay-drop-after", "60", "--mute-on-token-expiry"),
            *("--quote-entries", "mixed", "--histogram-updates", "changes"),
            *("--history-delay", "0"),
        )
    )
    assert (config.token_lifetime, config.tradovate_user, config.tradovate_password) == (
        600.0,
        "u",
        "p",
    )
    assert (config.tradovate_heartbeat_timeout, config.heartbeat_timeout) == (50.0, 30.0)
    assert (config.max_connections_per_user, config.replay_drop_after) == (3, 60.0)
    assert config.mute_on_token_expiry is True
    assert (config.wire_variants, config.tradovate_histogram) == ("mixed", "changes")
    assert config.tradovate_history_delay == 0.0
    default = config_from_args(_parse("--venue", "tradovate"))
    assert default.tradovate_heartbeat_timeout == 45.0 and default.token_lifetime == 5100.0
    assert default.mute_on_token_expiry is False
    # the documented readings: nine complete quote entries, whole histograms, history later
    assert (default.wire_variants, default.tradovate_histogram) == ("documented", "full")
    assert default.tradovate_history_delay == 0.25


async def test_in_process_run(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse("--venue", "tradovate", "--duration", "5", "--password", "hunter2")
    assert await run_from_args(args) == 0
    out = capsys.readouterr()
    match = LISTENING.match(out.out.splitlines()[0])
    assert match and match[1] == match[2]
    assert "stopped:" in out.err and "hunter2" not in out.out + out.err


async def test_help_and_short_run_in_a_subprocess() -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "tickactors", "sim", "--help"], capture_stdout=True, env=ENV
    )
    text = result.stdout.decode()
    for option in ("--venue", "--token-lifetime", "--user", "--password", "--replay-drop-after"):
        assert option in text
    assert "tradovate" in text
    result = await trio.run_process(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "tickactors",
            "sim",
            "--venue",
            "tradovate",
            "--duration",
            "1",
            "--random-faults",
            "0.3",
            "--seed",
            "2",
        ],
        capture_stdout=True,
        capture_stderr=True,
        env=ENV,
    )
    assert LISTENING.match(result.stdout.decode().splitlines()[0])
    assert "stopped:" in result.stderr.decode()
