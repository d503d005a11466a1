"""``python -m tickactors`` (the demo) as a subprocess: both venues, JSON lines, bounded runs.

Real time, like the runner's tests: each run ends itself with ``--duration`` and is killed
by ``subprocess.run``'s timeout if it does not. The scripted faults come early enough to be
seen in the window: on Tradovate a stall at 4 s (stale at ~10 s with ``stale_after`` 6),
then a 10 s penalty ticket at 14 s; on AllTick a stall at 6 s (stale at ~10 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_demo(*args: str, duration: float) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickactors",
            *args,
            "--duration",
            f"{duration}",
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 9,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def events_of(lines: list[dict[str, Any]]) -> list[str]:
    return [o["event"] for o in lines if o["kind"] == "status"]


def faults_of(lines: list[dict[str, Any]]) -> list[str]:
    return [o["fault"] for o in lines if o.get("event") == "demo_fault"]


def test_the_tradovate_demo_streams_quotes_and_recovers_from_its_scripted_faults():
    lines = run_demo("--venue", "tradovate", duration=20)
    quotes = [o for o in lines if o["kind"] == "quote"]
    assert {q["symbol"] for q in quotes} >= {"ESZ6", "NQZ6", "CLF7", "GCG7"}
    assert any(q["bid"] and q["offer"] and q["price"] for q in quotes)
    assert {o["symbol"] for o in lines if o["kind"] == "book"} == {"ESZ6"}  # the DOM
    events = events_of(lines)
    # the stall: stale, then a new connection that authorizes again, then the penalty
    assert events.count("authorized") >= 2
    stale = events.index("stale")
    assert "authorized" in events[stale:]
    assert "penalty" in events[stale:]
    assert faults_of(lines)[:2] == ["stall", "p_ticket"]
    assert events[-1] == "stopped"
    assert "fatal" not in events


def test_the_alltick_demo_streams_ticks_and_sees_its_stall():
    lines = run_demo(duration=13)
    ticks = [o for o in lines if o["kind"] == "tick"]
    assert {t["symbol"] for t in ticks} >= {"BTCUSDT", "ETHUSDT", "EURUSD", "XAUUSD"}
    events = events_of(lines)
    assert "stale" in events
    assert faults_of(lines)[:1] == ["stall"]
    assert events[-1] == "stopped"
    assert "fatal" not in events
