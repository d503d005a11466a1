"""A bad network, made by the kernel: loss, delay, reordering, a thin pipe, blackholes.

``tests/netem_scenario.py`` runs in a child process inside a network namespace of its own
(``unshare --net``), the simulator and a feed on that namespace's ``lo``, impaired by
``tests/netem_link.py``: kernel ``netem`` where the kernel has it, else the same decisions
made through ``NFQUEUE`` (the packets, TCP and its retransmissions are the kernel's either
way), ``tbf`` for bandwidth, iptables ``DROP`` for blackholes. Each phase runs for both
venues at once (one namespace each) and prints one JSON line that this module asserts on.

Real time, so the bounds carry margins, each stated where it is asserted:

* ``steady``: 90 s of 2 % loss, 80 ms +- 40 ms delay and 1 % reordering on every packet,
  the venues' own ``stale_after`` (AllTick 30 s, Tradovate 10 s): no stale verdict, no
  reconnect, no heartbeat the venue missed, every trade of the simulator's ledger
  delivered once and in order. That the network really was bad is asserted too: TCP
  retransmitted, and ticks took 60 ms or more at the median (1 ms or less before).
* ``bandwidth``: the link capped at 30 % of what the stream needs for 30 s, then lifted
  (it queues 30 s of traffic: it delays rather than drops, so TCP never backs off its
  retransmission timer and the lift takes effect at once): one ``lagging`` while capped,
  ``caught_up`` within 5 s of the lift, nothing out of order, and what the ledger has and
  the feed did not deliver is exactly what the lane policy dropped and ``gap`` events
  counted (AllTick trades block: nothing; Tradovate quotes conflate: some).
* ``rotation`` and ``order``: a blackhole cut during a make-before-break rotation (both
  venues) and during a Tradovate ``order/placeorder``. Detection within ``stale_after``
  plus 10 ms of the moment the path was cut, on both connections; the order fails with
  ``ConnectionLostError`` within 10 ms of that verdict (its deadline was 30 s), is never
  sent again, and never reaches the venue later (the dead socket is reset, not closed).

Skipped with the reason without root, ``tc``/``iptables``/``unshare``, namespaces, or any
way to impair a link; under ``TICKACTORS_REQUIRE_NETEM=1`` (``.ci/run``) that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .namespace_children import run_children, skip_or_fail

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "netem_scenario.py"
LINK = HERE / "netem_link.py"
TOOLS = ("unshare", "ip", "tc", "iptables", "iptables-restore", "ss")
VENUES = ("alltick", "tradovate")
PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
STEADY = 90.0
CUT = 30.0
BLACKHOLE_STALE_AFTER = 3.0
PRECISION = 0.010  # the bound on detection: stale_after + 10 ms
VENUE_STALE_AFTER = {"alltick": 30.0, "tradovate": 10.0}
HEARTBEAT_INTERVAL = {"alltick": 10.0, "tradovate": 2.5}


def env() -> dict[str, str]:
    return {**os.environ, "PATH": PATH}


def why_not() -> str | None:
    """Why this machine cannot run the scenarios, or None if it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: network namespaces, qdiscs and iptables rules of its own"
    missing = [tool for tool in TOOLS if shutil.which(tool, path=PATH) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iproute2 iptables util-linux)"
    try:
        done = subprocess.run(
            ["unshare", "--net", "--", sys.executable, str(LINK), "probe"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot probe a network namespace: {exc}"
    if done.returncode != 0:
        return f"cannot probe a network namespace: {done.stderr.strip()[-500:]}"
    probe = json.loads(done.stdout)
    if probe["backend"] is None:
        return "no way to impair a link here: " + "; ".join(probe["unavailable"])
    return None


def run_phase(
    tmp: Path, phase: str, venues: tuple[str, ...], timeout: float, *extra: str
) -> dict[str, dict[str, Any]]:
    """Run ``phase`` for each venue at once, one namespace each; their JSON by venue."""
    skip_or_fail(why_not())
    command = ["unshare", "--net", "--", sys.executable, str(SCENARIO)]
    commands = {venue: [*command, "--venue", venue, "--phase", phase, *extra] for venue in venues}
    results: dict[str, dict[str, Any]] = {}
    for venue, (code, stdout, stderr) in run_children(commands, tmp, timeout, env()).items():
        assert code == 0, f"{phase} {venue} failed:\n{stdout}\n{stderr[-4000:]}"
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        assert lines, f"no JSON line from {phase} {venue}:\n{stdout}\n{stderr[-4000:]}"
        results[venue] = json.loads(lines[-1])
        print(json.dumps(results[venue]))  # the figures, with -s
    return results


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("netem-steady")
    return run_phase(tmp, "steady", VENUES, STEADY + 120, "--duration", str(STEADY))


@pytest.fixture(scope="module")
def bandwidth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("netem-bandwidth")
    return run_phase(tmp, "bandwidth", VENUES, CUT + 150, "--cut", str(CUT))


@pytest.fixture(scope="module")
def blackholes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    rotation = run_phase(tmp_path_factory.mktemp("netem-rotation"), "rotation", VENUES, 120)
    order = run_phase(tmp_path_factory.mktemp("netem-order"), "order", ("tradovate",), 120)
    return {**{f"rotation-{v}": r for v, r in rotation.items()}, "order": order["tradovate"]}


def assert_venue_content(r: dict[str, Any]) -> None:
    """The venue dropped no one and counted no client violation (heartbeats included)."""
    venue = r["venue_side"]
    assert venue["violations"] == {}, venue
    closes = {k: v for k, v in venue["server_closes"].items() if k != "client_closed"}
    assert closes == {}, venue  # no heartbeat_timeout, no slow_consumer, nothing


@pytest.mark.parametrize("venue", VENUES)
def test_a_lossy_slow_reordering_network_loses_nothing_and_stays_connected(
    steady: dict[str, dict[str, Any]], venue: str
) -> None:
    r = steady[venue]
    assert r["impairment"] == "loss 2% delay 80ms 40ms reorder 1%"
    assert r["stale_after"] == VENUE_STALE_AFTER[venue]  # the venue's default
    # It really was a bad network: TCP retransmitted, ticks took 80 ms +- 40 ms and more.
    assert r["snmp"]["RetransSegs"] > 0 and r["tcp"]["server"]["retrans"] > 0, r["tcp"]
    assert r["latency_clean"]["p50_ms"] < 5.0, r["latency_clean"]
    assert r["latency_impaired"]["p50_ms"] >= 60.0, r["latency_impaired"]
    if r["backend"] == "nfqueue":  # the emulator's own count: about 2 % dropped
        emulator = r["emulator"]
        assert 0.005 < emulator["dropped"] / emulator["packets"] < 0.05, emulator
        assert emulator["kernel_queue"].get("queue_dropped", 0) == 0, emulator

    # No stale verdict, no reconnect, nothing but the connection's own first events.
    assert r["stale"] == 0 and r["reconnects"] == 0, r["events"]
    assert not {"stale", "disconnected", "request_timeout", "lagging"} & set(r["events"])
    # The longest silence the feed saw, against the deadline: far from it.
    assert r["longest_silence"] < VENUE_STALE_AFTER[venue] / 5, r["longest_silence"]
    # The venue got every heartbeat in time (a missed one closes the socket there).
    assert_venue_content(r)
    run_for = r["duration"] + 5
    assert r["venue_side"]["heartbeats_received"] >= run_for // HEARTBEAT_INTERVAL[venue] - 1

    # Every trade the simulator generated reached the user once, in order (Tradovate's
    # quotes are ``block``ed in this phase: each carries a trade).
    for symbol, row in r["ledger"].items():
        assert row["ledger"] >= 10 * r["duration"], (symbol, row)  # ~20 a second each
        assert row["delivered"] == row["ledger"], (symbol, row)
        assert row["duplicates"] == row["out_of_order"] == row["missing"] == 0, (symbol, row)
        assert row["unknown"] == row["dropped_by_policy"] == 0, (symbol, row)


@pytest.mark.parametrize("venue", VENUES)
def test_a_thin_pipe_is_reported_as_lag_and_the_lane_policy_decides_what_goes(
    bandwidth: dict[str, dict[str, Any]], venue: str
) -> None:
    r = bandwidth[venue]
    assert r["capped_bps"] < 0.35 * r["needed_bps"]
    assert r["tbf"]["overlimits"] > 0, r["tbf"]  # the cap bit
    # lagging once, while capped (the lag grows ~0.5 s a second: 5 s behind after ~10 s)
    assert len(r["lagging"]) == 1, r["events"]
    (lagging,) = r["lagging"]
    assert lagging["at"] < r["cut"] and lagging["behind"] >= 5.0, lagging
    # lifted: the backlog drains at once, judged when the next buckets close
    assert r["caught_up"]["at"] < 5.0 and r["caught_up"]["behind_max"] >= 5.0, r["caught_up"]
    # lag is no reason to call a connection dead or to reconnect
    assert r["stale"] == 0 and r["reconnects"] == 0, r["events"]
    assert_venue_content(r)
    for symbol, row in r["ledger"].items():
        assert row["duplicates"] == row["out_of_order"] == row["unknown"] == 0, (symbol, row)
        assert row["delivered"] + row["dropped_by_policy"] == row["ledger"], (symbol, row)
        assert row["missing"] == row["dropped_by_policy"] == r["gaps"].get(symbol, 0)
    dropped = sum(row["dropped_by_policy"] for row in r["ledger"].values())
    if venue == "alltick":
        assert dropped == 0  # trades block: every one delivered
    else:
        assert dropped > 0  # quotes conflate: the backlog's older quotes gave way


def assert_detected(stale: dict[str, float]) -> None:
    """``stale`` within ``stale_after`` + 10 ms of the cut, and of the last message."""
    assert stale["silent_for"] <= BLACKHOLE_STALE_AFTER + PRECISION, stale
    assert stale["after_cut"] <= BLACKHOLE_STALE_AFTER + PRECISION, stale
    # ticks every ~12 ms (several symbols at 25-75 ms each): the last one came just before
    assert stale["after_cut"] >= BLACKHOLE_STALE_AFTER - 0.25, stale


@pytest.mark.parametrize("venue", VENUES)
def test_a_blackhole_during_a_rotation_is_detected_on_both_connections(
    blackholes: dict[str, dict[str, Any]], venue: str
) -> None:
    r = blackholes[f"rotation-{venue}"]
    assert r["rotation_events"][0] == "rotating" and r["new"] != r["old"]
    assert r["cut_after_rotating"] < 1.0  # while both connections were open
    assert_detected(r["stale"]["old"])
    assert_detected(r["stale"]["new"])
    # healed: reconnected after the backoff (floor AllTick 3 s, Tradovate 1 s, + up to 1 s)
    assert r["heal_to_flowing"] <= {"alltick": 6.0, "tradovate": 4.0}[venue], r["events"]
    # the overlap delivered nothing twice; only what went into the blackhole is missing
    for symbol, row in r["ledger"].items():
        assert row["duplicates"] == row["out_of_order"] == row["unknown"] == 0, (symbol, row)
    assert r["missing_outside_cut"] == 0
    assert_venue_content(r)


def test_an_order_in_a_blackhole_fails_when_the_connection_is_declared_dead_and_never_lands(
    blackholes: dict[str, dict[str, Any]],
) -> None:
    r = blackholes["order"]
    assert r["first_order"]["orderId"] > 0  # the path worked before the cut
    assert r["result"] == "ConnectionLostError"
    assert r["silent_for"] <= BLACKHOLE_STALE_AFTER + PRECISION
    assert r["stale_after_cut"] <= BLACKHOLE_STALE_AFTER + PRECISION
    # failed when the connection was declared dead, not at its 30 s deadline
    assert 0 <= r["failed_after_stale"] <= PRECISION
    assert r["request_took"] <= BLACKHOLE_STALE_AFTER + PRECISION < r["request_timeout"]
    # never sent again on a later connection, and the dead socket's kernel did not deliver
    # it once the path healed: the venue saw the first order only
    assert all(count == 0 for count in r["orders_on_live_connections"].values())
    assert r["orders_received"] == 1 and r["late_order_after_heal"] is None
    assert_venue_content(r)
