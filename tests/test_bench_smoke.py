"""The benchmark scripts start and parse their options (no benchmark runs, no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    "script",
    [
        "run.py",
        "pipeline.py",
        "decode.py",
        "shards.py",
        "orders.py",
        "netem.py",
        "metrics.py",
        "wakeups.py",
    ],
)
def test_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_decode_tiny_run_builds_the_same_ticks() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "decode.py"), "--frames", "64", "--repeat", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    rows = result["results"]
    assert "dialect.decode (current)" in rows
    for row in rows.values():
        assert row["frames_differing"] in (None, 0)
