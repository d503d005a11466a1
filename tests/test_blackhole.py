"""A real blackhole, not only a simulated one: the kernel drops a live connection's packets.

``tests/blackhole_scenario.py`` runs in a child process inside a network namespace of its
own (``unshare --net``): simulator and feed on that namespace's 127.0.0.1, cut in the middle
of streaming by ``iptables -j DROP`` on ``lo`` for the simulator's port, then healed. Nothing
leaves the namespace and the host's rules are never touched. The child prints what it
measured as one JSON line; this module asserts on it.

Real time, because kernel TCP cannot run under a mock clock, so the bounds carry margins:

* detection: ``stale`` within ``STALE_AFTER + DETECTION_MARGIN`` (3 s + 1.5 s) of the cut.
  Ticks arrive every ~0.1 s (and Tradovate's ``h`` every 2.5 s), so the last message
  precedes the cut by a tick at most, and the detector fires ``stale_after`` after it;
  measured: 3.0 s give or take 10 ms. The 1.5 s margin absorbs a loaded CI machine;
  a detector that waited for a heartbeat answer (5 s) or a TCP timeout (minutes) fails it.
* reconnects into the blackhole: each ends at the connect deadline (2 s, +0.5 s margin)
  with a SYN seen in SYN-SENT, then a backoff delay no shorter than the venue's floor.
* recovery: the path is healed while the feed waits out a backoff delay; every symbol
  must be confirmed again and tick within ``RECOVERY_MARGIN`` (2 s) of that delay's end.

The two venues run concurrently (one namespace each) so CI waits ~18 s, not ~30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .namespace_children import run_children, skip_or_fail

pytestmark = pytest.mark.slow

VENUES = ("alltick", "tradovate")
SCENARIO = Path(__file__).with_name("blackhole_scenario.py")
CHILD_TIMEOUT = 60.0
STALE_AFTER = 3.0
CONNECT_TIMEOUT = 2.0
DETECTION_MARGIN = 1.5
CONNECT_MARGIN = 0.5
RECOVERY_MARGIN = 2.0
TOOLS = ("unshare", "ip", "iptables", "iptables-restore", "ss")
# root's tools live in sbin, which a PATH set for an unprivileged user may lack
PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def why_not() -> str | None:
    """Why this machine cannot run the scenario, or None if it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: a network namespace and iptables rules of its own"
    missing = [tool for tool in TOOLS if shutil.which(tool, path=PATH) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iptables iproute2 util-linux)"
    for probe, what in (
        (["unshare", "-n", "true"], "creating a network namespace is not permitted here"),
        (["unshare", "-n", "iptables", "-w", "-S"], "iptables cannot run in a namespace here"),
    ):
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=10, env=env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what}: {exc}"
        if done.returncode != 0:
            return f"{what}: {done.stderr.strip() or done.returncode}"
    return None


def env() -> dict[str, str]:
    return {**os.environ, "PATH": PATH}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Both venues' scenarios, run at once, each in its own namespace; their JSON by venue."""
    skip_or_fail(why_not())
    out = tmp_path_factory.mktemp("blackhole")
    commands = {
        venue: ["unshare", "--net", "--", sys.executable, str(SCENARIO), "--venue", venue]
        for venue in VENUES
    }
    yield {
        venue: {"returncode": code, "stdout": stdout, "stderr": stderr}
        for venue, (code, stdout, stderr) in run_children(
            commands, out, CHILD_TIMEOUT, env()
        ).items()
    }


def report(run: dict[str, Any]) -> dict[str, Any]:
    assert run["returncode"] == 0, f"scenario failed:\n{run['stdout']}\n{run['stderr'][-3000:]}"
    lines = [line for line in run["stdout"].splitlines() if line.startswith("{")]
    assert lines, f"no JSON line from the scenario:\n{run['stdout']}\n{run['stderr'][-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.mark.parametrize("venue", VENUES)
def test_a_kernel_blackhole_is_detected_and_repaired(
    measured: dict[str, dict[str, Any]], venue: str
) -> None:
    r = report(measured[venue])
    print(json.dumps({k: v for k, v in r.items() if k != "events"}))  # the figures, with -s
    assert r["stale_after"] == STALE_AFTER and r["connect_timeout"] == CONNECT_TIMEOUT
    events = r["events"]

    # It really was a blackhole: the socket stayed open on both ends while nothing crossed
    # it, the kernel dropped packets, and no close, reset or close frame reached the feed.
    assert r["established_during_cut"] == {"client": 1, "server": 1}, events
    assert r["established_after_detection"]["server"] == 1, events  # our FIN never arrived
    assert r["dropped_packets"]["OUTPUT"] > 0
    # ticks (every ~0.1 s per symbol, 0.15 s at most) flowed up to the cut, and stopped there
    assert -0.3 <= r["last_tick_after_cut"] < 0.1, events
    assert r["closes_before_stale"] == [], events
    assert r["disconnect_reason"] == "StaleConnection", events

    # Detected by the staleness deadline: not before stale_after of silence after the last
    # tick (0.05 s: the tick is timed when the user gets it, a moment after the reader), and
    # within stale_after plus the stated margin of the cut.
    assert r["stale_silent_for"] >= STALE_AFTER
    assert r["detection_latency"] >= r["last_tick_after_cut"] + STALE_AFTER - 0.05, events
    assert r["detection_latency"] <= STALE_AFTER + DETECTION_MARGIN, events

    # While cut, every attempt sent SYNs into the void and ended at our connect deadline,
    # then backed off (never shorter than the venue's floor) and tried again.
    attempts = r["failed_attempts"]
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt["message"] == f"no WebSocket handshake within {CONNECT_TIMEOUT:g} s"
        assert CONNECT_TIMEOUT <= attempt["took"] <= CONNECT_TIMEOUT + CONNECT_MARGIN, attempts
        assert attempt["syn_sent"] == 1, attempts
        assert attempt["then_delay"] >= r["reconnect_floor"], attempts
    assert attempts[0]["attempt"] < attempts[1]["attempt"]
    assert r["confirmed_during_cut"] == []  # nothing claimed confirmed on a dead path

    # Healed during a backoff delay: reconnected when it ended, everything confirmed again
    # and ticking, all within the recovery margin of that delay.
    assert r["heal_to_connected"] <= r["backoff_delay_left_at_heal"] + RECOVERY_MARGIN, events
    assert r["heal_to_confirmed"] <= r["heal_to_tick"]
    assert r["heal_to_tick"] <= r["backoff_delay_left_at_heal"] + RECOVERY_MARGIN, events
    assert r["events_after_heal"][:2] == ["connecting", "connected"], events
    assert "connect_failed" not in r["events_after_heal"]
    assert r["confirmed"] == sorted(
        {"alltick": ["BTCUSDT", "ETHUSDT", "EURUSD"], "tradovate": ["ESZ6", "NQZ6"]}[venue]
    )
    assert r["connects"] == 2  # the first connection and the one after the heal
    assert r["violations"] == {}
