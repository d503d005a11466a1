"""The chaos soak: a real minute per venue, and proof that the soak catches a broken feed.

The minute runs are ``python -m tickactors chaos`` subprocesses on the real clock (the
product as a user runs it; both venues at once, so CI pays one minute). The sabotage
runs are in-process under the autojump clock: a feed that cannot detect a stall, and a
feed that lets ghost ticks through, must each make the soak fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from tickactors._actors.session import Session
from tickactors._chaos.plan import kinds_for
from tickactors._chaos.setups import RotatingToken
from tickactors._chaos.soak import SoakOptions, soak
from tickactors._values import BOOK, QUOTES, TRADES, MarketData, StreamKind
from tickactors.venues._dialect import MarketBatch

REQUIRED = (
    "faults_injected", "faults_by_kind", "faults_recovered", "detection_ms_p50",
    "detection_ms_p99", "recovery_ms_p50", "recovery_ms_p99", "ghost_ticks_delivered",
    "requests_past_deadline", "unhandled_exceptions", "converged", "rss_start_mb", "rss_end_mb",
)  # fmt: skip


def chaos_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tickactors", "chaos", *args]


@pytest.mark.slow
def test_a_minute_of_chaos_loses_nothing_on_either_venue() -> None:
    runs = {
        venue: subprocess.Popen(
            chaos_command("--venue", venue, "--duration", "60", "--seed", "7"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for venue in ("alltick", "tradovate")
    }
    outputs = {venue: run.communicate(timeout=240) for venue, run in runs.items()}
    for venue, (stdout, stderr) in outputs.items():
        lines = stdout.strip().splitlines()
        summary = json.loads(lines[-1])
        assert runs[venue].returncode == 0, (venue, summary, stderr[-2000:])
        assert summary["ok"] is True
        for key in REQUIRED:
            assert key in summary, key
        assert set(summary["faults_by_kind"]) == set(kinds_for(venue)), summary
        assert summary["faults_recovered"] == summary["faults_injected"]
        assert summary["ghost_ticks_delivered"] == 0
        assert summary["requests_past_deadline"] == 0
        assert summary["unhandled_exceptions"] == 0
        assert summary["converged"] is True
        assert summary["detection_ms_p50"] is not None
        assert summary["ticks_delivered"] > 500
        assert all(json.loads(line)["event"] for line in lines[:-1])  # progress lines


def test_a_feed_that_cannot_see_a_stall_fails_the_soak(
    autojump_clock: trio.testing.MockClock,
) -> None:
    options = SoakOptions(
        venue="alltick",
        duration=15.0,
        settle=10.0,
        kinds=("stall",),
        feed_options={"stale_after": 1000.0},  # the detector is blind: stalls go unnoticed
    )
    summary = trio.run(soak, options, clock=autojump_clock)
    assert summary["ok"] is False
    assert summary["stalls_undetected"] >= 1
    assert "stall" in summary["faults_unrecovered"]


@pytest.fixture
def leaky_reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The reader passes every tick on, wanted or not (the ghost filter is gone)."""

    def everything(
        self: Session, batch: MarketBatch, now: float
    ) -> list[tuple[StreamKind, list[MarketData]]]:
        groups = ((TRADES, batch.trades), (BOOK, batch.books), (QUOTES, batch.quotes))
        return [(kind, list(items)) for kind, items in groups if items]

    monkeypatch.setattr(Session, "_filter", everything)
    yield


def test_a_feed_that_delivers_ghost_ticks_fails_the_soak(
    autojump_clock: trio.testing.MockClock, leaky_reader: None
) -> None:
    options = SoakOptions(venue="alltick", duration=20.0, settle=10.0, kinds=("ghost",))
    summary: dict[str, Any] = trio.run(soak, options, clock=autojump_clock)
    assert summary["ghost_ticks_delivered"] > 0
    assert summary["ok"] is False


def test_the_cli_refuses_unknown_faults_and_empty_durations() -> None:
    bad_kind = subprocess.run(
        chaos_command("--venue", "alltick", "--kinds", "stall,p_ticket"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad_kind.returncode != 0
    assert "unknown fault kind(s) for alltick: p_ticket" in bad_kind.stderr
    no_time = subprocess.run(
        chaos_command("--duration", "0"), capture_output=True, text=True, timeout=60, check=False
    )
    assert no_time.returncode == 2
    assert "--duration" in no_time.stderr


def test_the_virtual_clock_runs_ten_simulated_minutes_in_seconds() -> None:
    run = subprocess.run(
        chaos_command("--venue", "alltick", "--duration", "600", "--clock", "virtual", "--quiet"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.stdout.count("\n") == 1  # --quiet: the summary alone
    assert run.returncode == 0, summary
    assert summary["clock"] == "virtual" and summary["faults_injected"] > 100


async def test_the_soaks_alltick_tokens_never_repeat() -> None:
    # A simulated day wrapped around a pool of 1000 and handed out a revoked token.
    source = RotatingToken(["a", "b"])
    assert [(await source.fetch()).token.reveal() for _ in range(2)] == ["a", "b"]
    with pytest.raises(LookupError):
        await source.fetch()
