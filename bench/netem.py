"""A bad network, longer than CI runs it, with the figures: ``tests/test_netem.py`` at length.

    sudo python bench/netem.py                          # 10 minutes impaired per venue, ...
    sudo python bench/netem.py --duration 120 --phases steady --markdown
    sudo python bench/netem.py --duplicate 0.01         # netem's duplication too

Each phase of ``tests/netem_scenario.py`` runs for both venues at once, one network
namespace each (``unshare --net``; root), the simulator and a feed on its ``lo``:

- ``steady``: ``--duration`` seconds of loss, delay +- jitter and reordering (default 2 %,
  80 ms +- 40 ms, 1 %) at the venues' own ``stale_after``. Figures: tick latency p50/p99
  (the simulator's generation stamp to the feed's reader, one clock), stale verdicts (all
  false: the venue never stopped), reconnects, the longest silence the feed saw, what the
  feed delivered against the simulator's ledger, TCP retransmissions (``ss -ti`` of both
  ends, the namespace's ``/proc/net/snmp``), heartbeats the venue received.
- ``bandwidth``: the link capped at ``--cap`` of what the stream needs for ``--cut``
  seconds, with ``--queue`` seconds of queue before it drops: when ``lagging`` came, how
  far behind the feed fell, how soon it caught up, and what the lane policy dropped.
- ``blackholes``: cut during a make-before-break rotation (both venues) and during a
  Tradovate order: detection against ``stale_after``, the order's outcome.

The impairment is the kernel's ``netem`` where the kernel has it, else the same decisions
through ``NFQUEUE`` (``tests/netem_link.py`` says how and why). Benchmarks, not tests:
nothing is asserted. The last stdout line is one JSON object of every figure;
``--markdown`` also prints the tables ``docs/reliability.md`` ("A bad network") shows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "netem_scenario.py"
LINK = ROOT / "tests" / "netem_link.py"
VENUES = ("alltick", "tradovate")
PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def env() -> dict[str, str]:
    src = str(ROOT / "src")
    python_path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PATH": PATH, "PYTHONPATH": python_path}


def run(phase: str, venues: tuple[str, ...], extra: list[str], timeout: float) -> dict[str, Any]:
    """``phase`` for each venue at once; the scenario's JSON (or its error) by venue."""
    children = {}
    for venue in venues:
        command = ["unshare", "--net", "--", sys.executable, str(SCENARIO)]
        command += ["--venue", venue, "--phase", phase, *extra]
        children[venue] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
        )
    deadline = time.monotonic() + timeout
    out: dict[str, Any] = {}
    for venue, child in children.items():
        try:
            stdout, stderr = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            stdout, stderr = child.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if child.returncode == 0 and lines:
            out[venue] = json.loads(lines[-1])
        else:
            out[venue] = {"error": f"exit {child.returncode}", "stderr": stderr[-3000:]}
        print(f"{phase} {venue}: done", file=sys.stderr, flush=True)
    return out


def ledger_totals(ledger: dict[str, dict[str, int]]) -> dict[str, int]:
    keys = ("ledger", "delivered", "duplicates", "out_of_order", "missing", "dropped_by_policy")
    return {key: sum(row[key] for row in ledger.values()) for key in keys}


def steady_table(results: dict[str, Any]) -> list[str]:
    rows = [
        "| figure | " + " | ".join(v.capitalize() for v in results) + " |",
        "| --- |" + " --- |" * len(results),
    ]

    def row(name: str, get: Any) -> None:
        cells = []
        for r in results.values():
            try:
                cells.append(str(get(r)))
            except (KeyError, TypeError):
                cells.append("n/a")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")

    row("impairment (both directions)", lambda r: f"{r['impairment']} ({r['backend']})")
    row("impaired for", lambda r: f"{r['duration']:g} s, `stale_after` {r['stale_after']:g} s")
    row("trades a second", lambda r: r["ticks_per_second"])
    row(
        "delivered / ledger",
        lambda r: "{delivered:,} / {ledger:,}".format(**ledger_totals(r["ledger"])),
    )
    row(
        "duplicates, out of order, missing",
        lambda r: "{duplicates}, {out_of_order}, {missing}".format(**ledger_totals(r["ledger"])),
    )
    row("false stale verdicts", lambda r: r["stale"])
    row("reconnects", lambda r: r["reconnects"])
    row("longest silence seen", lambda r: f"{r['longest_silence']:.3f} s")
    row(
        "latency p50 / p99 / max, clean",
        lambda r: "{p50_ms} / {p99_ms} / {max_ms} ms".format(**r["latency_clean"]),
    )
    row(
        "latency p50 / p99 / max, impaired",
        lambda r: "{p50_ms} / {p99_ms} / {max_ms} ms".format(**r["latency_impaired"]),
    )
    row(
        "retransmitted segments (venue's socket, `ss -ti`)",
        lambda r: (
            f"{r['tcp']['server']['retrans']:,} ({r['tcp']['server']['bytes_retrans']:,.0f} bytes)"
        ),
    )
    row(
        "retransmitted segments (feed's socket)",
        lambda r: f"{r['tcp']['client']['retrans']:,}",
    )
    row(
        "namespace: segments out / retransmitted / RTOs",
        lambda r: "{OutSegs:,} / {RetransSegs:,} / {TCPTimeouts}".format(**r["snmp"]),
    )
    row(
        "packets dropped / sent early / held (emulator)",
        lambda r: "{dropped} / {reordered} / {delayed} of {packets}".format(**r["emulator"]),
    )
    row(
        "emulator's release lateness p50 / p99",
        lambda r: "{p50} / {p99} ms".format(**r["emulator"]["lateness_ms"]),
    )
    row("heartbeats the venue received", lambda r: r["venue_side"]["heartbeats_received"])
    row(
        "venue closes, violations",
        lambda r: ", ".join(
            str(r["venue_side"][key] or "none") for key in ("server_closes", "violations")
        ),
    )
    return rows


def bandwidth_table(results: dict[str, Any]) -> list[str]:
    rows = ["| figure | " + " | ".join(v.capitalize() for v in results) + " |"]
    rows.append("| --- |" + " --- |" * len(results))

    def row(name: str, get: Any) -> None:
        cells = []
        for r in results.values():
            try:
                cells.append(str(get(r)))
            except (KeyError, TypeError, IndexError):
                cells.append("n/a")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")

    row(
        "stream needs / capped to",
        lambda r: (
            f"{r['needed_bps'] / 1000:.0f} / {r['capped_bps'] / 1000:.0f} kbit/s for {r['cut']:g} s"
            f", {r['queue_s']:g} s queue"
        ),
    )
    row(
        "`lagging` after the cap",
        lambda r: f"{r['lagging'][0]['at']:.1f} s ({r['lagging'][0]['behind']:.1f} s behind)",
    )
    row("worst lag", lambda r: f"{r['caught_up']['behind_max']:.1f} s")
    row("`caught_up` after the lift", lambda r: f"{r['caught_up']['at']:.2f} s")
    row(
        "delivered + dropped by policy = ledger",
        lambda r: "{delivered:,} + {dropped_by_policy:,} = {ledger:,}".format(
            **ledger_totals(r["ledger"])
        ),
    )
    row(
        "out of order, duplicates",
        lambda r: "{out_of_order}, {duplicates}".format(**ledger_totals(r["ledger"])),
    )
    row("stale, reconnects", lambda r: f"{r['stale']}, {r['reconnects']}")
    row("tbf drops", lambda r: r["tbf"].get("dropped", 0))
    return rows


def blackhole_table(rotation: dict[str, Any], order: dict[str, Any]) -> list[str]:
    rows = [
        "| blackhole, `stale_after` 3 s | " + " | ".join(v.capitalize() for v in rotation) + " |",
        "| --- |" + " --- |" * len(rotation),
    ]

    def row(name: str, get: Any) -> None:
        cells = []
        for r in rotation.values():
            try:
                cells.append(str(get(r)))
            except (KeyError, TypeError):
                cells.append("n/a")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")

    for side in ("old", "new"):
        row(
            f"during a rotation: cut to `stale`, {side} connection (silent for)",
            lambda r, s=side: "{after_cut:.4f} s ({silent_for:.4f} s)".format(**r["stale"][s]),
        )
    row("rotation events", lambda r: ", ".join(r["rotation_events"]))
    row("heal to ticks again", lambda r: f"{r['heal_to_flowing']:.2f} s")
    row(
        "delivered twice, out of order, lost outside the cut",
        lambda r: (
            "{duplicates}, {out_of_order}, ".format(**ledger_totals(r["ledger"]))
            + str(r["missing_outside_cut"])
        ),
    )
    o = order.get("tradovate", {})
    if "result" in o:
        rows.append(
            f"| during an order: cut to `stale` (silent for) | (no orders) | "
            f"{o['stale_after_cut']:.4f} s ({o['silent_for']:.4f} s) |"
        )
        rows.append(
            f"| the order: outcome, after the stale verdict, took (deadline) | | {o['result']}, "
            f"{o['failed_after_stale'] * 1000:.1f} ms, {o['request_took']:.3f} s "
            f"({o['request_timeout']:g} s) |"
        )
        landed = o["late_order_after_heal"]
        rows.append(
            "| the order, orders the venue received (the one before the cut included), "
            f"landed after the heal | | {o['orders_received']}, "
            f"{'no' if landed is None else f'{landed} s after'} |"
        )
    return rows


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Per venue: delivered vs ledger, false stales, reconnects, latency, retransmits."""
    out: dict[str, Any] = {}
    for venue, r in results.get("steady", {}).items():
        if "error" in r:
            out[venue] = r
            continue
        totals = ledger_totals(r["ledger"])
        out[venue] = {
            "delivered": totals["delivered"],
            "ledger": totals["ledger"],
            "false_stales": r["stale"],
            "reconnects": r["reconnects"],
            "latency_p50_ms": r["latency_impaired"]["p50_ms"],
            "latency_p99_ms": r["latency_impaired"]["p99_ms"],
            "retransmits": r["tcp"]["server"]["retrans"] + r["tcp"]["client"]["retrans"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--phases", default="steady,bandwidth,blackholes")
    parser.add_argument("--duration", type=float, default=600.0, help="steady: impaired seconds")
    parser.add_argument("--cut", type=float, default=30.0, help="bandwidth: capped seconds")
    parser.add_argument("--cap", type=float, default=0.3, help="bandwidth: cap / needed rate")
    parser.add_argument(
        "--queue", type=float, default=30.0, help="bandwidth: seconds the capped link queues"
    )
    for name, default in (
        ("loss", 0.02),
        ("delay", 0.080),
        ("jitter", 0.040),
        ("reorder", 0.01),
        ("duplicate", 0.0),
    ):
        parser.add_argument(f"--{name}", type=float, default=default)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=("auto", "netem", "nfqueue"), default="auto")
    parser.add_argument("--markdown", action="store_true", help="also print the docs' tables")
    args = parser.parse_args()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        sys.exit("bench/netem.py needs root: network namespaces, qdiscs and iptables rules")
    common = ["--seed", str(args.seed), "--backend", args.backend]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    results: dict[str, Any] = {}
    started = time.monotonic()
    if "steady" in phases:
        extra = [*common, "--duration", str(args.duration)]
        for name in ("loss", "delay", "jitter", "reorder", "duplicate"):
            extra += [f"--{name}", str(getattr(args, name))]
        results["steady"] = run("steady", VENUES, extra, args.duration + 300)
    if "bandwidth" in phases:
        extra = [
            *common,
            "--cut",
            str(args.cut),
            "--cap",
            str(args.cap),
            "--queue",
            str(args.queue),
        ]
        results["bandwidth"] = run("bandwidth", VENUES, extra, args.cut + 300)
    if "blackholes" in phases:
        results["rotation"] = run("rotation", VENUES, common, 300)
        results["order"] = run("order", ("tradovate",), common, 300)
    if args.markdown:
        if "steady" in results:
            print("\n".join(steady_table(results["steady"])) + "\n")
        if "bandwidth" in results:
            print("\n".join(bandwidth_table(results["bandwidth"])) + "\n")
        if "rotation" in results:
            print("\n".join(blackhole_table(results["rotation"], results["order"])) + "\n")
    results["summary"] = summary(results)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
