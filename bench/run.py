"""The benchmark suite: every benchmark in one run, one table (or one JSON object).

``python bench/run.py`` (about 6 minutes), ``--quick`` (about 1 minute),
``--json`` for one JSON object on stdout; progress always goes to stderr.
Needs the ``bench`` extra (``pip install -e '.[bench]'``) for the asyncio
contenders; without websockets or picows their rows are skipped with a note.

Parts, in this order (see each module's docstring for the method):

1. throughput (``bench/throughput.py``): our full feed, the two fair peers that do the
   feed's work on picows and on asyncio ``websockets`` (``bench/peers.py``), and four
   bare receive loops, against the replay server (``bench/_server.py``, a separate
   process), after a null-reader check of the server's own capacity;
2. latency (``bench/latency.py``): server write to user code, at 1,000 and 20,000
   ticks/s and near saturation (40 % of the feed's unpaced rate just measured: the
   paced, stamping server and the client together saturate the two cores at about
   55-60 % of it), for the feed (``get_batch`` in a consumer task, and ``on_batch`` called
   by the reader) and both peers. The latency target compares ``feed_callback`` with
   ``picows_decode``: both call user code from their reader as each read is decoded;
   ``get_batch``'s ratio is reported beside it, and so are the two floors' (a bare
   wait-and-read loop that decodes nothing, in a Trio task and in a thread of its own).
   Three windows per contender and rate, in a rotating order; medians of their
   percentiles;
3. CPU of ten connections at 1,000 ticks/s against one at 10,000
   (``bench/connections.py``);
4. stall detection and heartbeat punctuality (``bench/live.py``);
5. recovery after a dropped connection (``bench/live.py``);
6. churn: 10,000 subscribe/unsubscribe calls in one second (``bench/churn.py``);
7. memory: state per symbol with 10,000 desired, RSS growth over 10 M ticks
   (``bench/memory.py``);
8. with ``--shards`` only (about 1.5 minutes more): 30,000 symbols over 10 AllTick
   connections on the simulator, time to converge and cost per connection
   (``bench/shards.py``).

Benchmarks, not tests: targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import trio

import churn
import connections
import latency
import live
import memory
import shards
import throughput
from _common import DEFAULT_SYMBOLS, machine, null_client, start_server

#: (key, target, "min"/"max") of the issue's targets.
TARGETS: list[tuple[str, float, str]] = [
    ("ticks_per_s", 400_000, "min"),
    ("ratio_vs_picows_decode", 1.0, "min"),
    ("ratio_vs_websockets_asyncio", 1.3, "min"),
    ("latency_p99_vs_picows_decode_1000", 1.0, "max"),
    ("latency_p99_vs_picows_decode_20000", 1.0, "max"),
    ("connections_cpu_ratio", 1.2, "max"),
    ("detection_ms_p99", 10.0, "max"),
    ("recovery_ms_p99", 50.0, "max"),
    ("churn_ops_per_s", 500_000, "min"),
    ("churn_wire_max_frames_in_1s", 1, "max"),
    ("churn_converged_s", 1.0, "max"),
    ("heartbeat_jitter_ms_p99", 20.0, "max"),
    ("rss_growth_mb_10m_ticks", 5.0, "max"),
    ("bytes_per_symbol_10k", 2048, "max"),
]
BARE = ("trio_websocket", "wsproto_trio", "websockets_asyncio", "picows")
PEERS = ("picows_decode", "websockets_decode")
LATENCY_RATES = (1_000.0, 20_000.0)
#: The third latency rate, as a fraction of the feed's unpaced ticks_per_s (see collect).
NEAR_SATURATION = 0.4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quick", action="store_true", help="a short run (about 1 minute)")
    parser.add_argument("--ticks", type=int, help="throughput: ticks timed per run")
    parser.add_argument("--runs", type=int, help="throughput: rounds over all contenders")
    parser.add_argument("--rss-ticks", type=int, help="memory: total ticks (default 10 M)")
    parser.add_argument("--stalls", type=int, help="detection: stalls (default 20)")
    parser.add_argument("--drops", type=int, help="recovery: drops (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the replay server's market")
    parser.add_argument(
        "--shards",
        action="store_true",
        help="also run bench/shards.py: 30,000 symbols over 10 AllTick connections",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "ticks": 50_000 if quick else 200_000,
        "runs": 1 if quick else 9,
        "rss_ticks": 2_000_000 if quick else 10_000_000,
        "stalls": 5 if quick else 20,
        "drops": 4 if quick else 15,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def collect(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    quick = args.quick
    symbols = DEFAULT_SYMBOLS.split(",")
    result: dict[str, Any] = {"machine": machine(), "quick": quick}
    started = time.perf_counter()
    server = start_server("replay", symbols, args.seed)
    try:
        log(f"replay server pid {server.pid} at {server.url}")
        check = null_client(server, symbols, 1.0 if quick else 1.5)
        log(
            f"[1/7] server alone into a null reader: {check['frames_per_s']:,.0f} frames/s at "
            f"{check['server_cpu_pct']:.0f}% server CPU; throughput, {args.runs} round(s) of "
            f"{args.ticks:,} ticks"
        )
        tp = throughput.run(
            server,
            symbols,
            warmup=5_000,
            ticks=args.ticks,
            runs=args.runs,
            max_seconds=30 if quick else 200,
            log=log,
        )
        rates = tp["rates"]
        ours = rates["feed"]
        result["ticks_per_s"] = round(ours)
        feed_cpu = tp["cpu_us_per_tick"]["feed"]
        result["ticks_per_cpu_second"] = round(1e6 / feed_cpu) if feed_cpu else None
        for name in PEERS:
            result[f"{name}_per_s"] = round(rates[name]) if name in rates else None
            result[f"ratio_vs_{name}"] = round(ours / rates[name], 4) if rates.get(name) else None
        for name in BARE:
            result[f"{name}_bare_per_s"] = round(rates[name]) if name in rates else None
            result[f"ratio_vs_{name}"] = round(ours / rates[name], 4) if rates.get(name) else None
        result["throughput"] = tp
        headroom = check["frames_per_s"] / ours if ours else 0.0
        result["server_check"] = {
            "null_reader_frames_per_s": round(check["frames_per_s"]),
            "null_reader_server_cpu_pct": round(check["server_cpu_pct"], 1),
            "null_reader_over_feed": round(headroom, 2),
            "server_cpu_pct_median_per_contender": tp["server_cpu_pct"],
            "server_cpu_pct_max_window": tp["server_cpu_pct_max"],
            "client_cpu_pct_median_per_contender": tp["client_cpu_pct"],
            "server_not_bottleneck": headroom >= 2 and tp["server_cpu_pct_max"] < 70,
        }
        # Near saturation: the paced server stamping every frame shares the two cores with
        # the client, and the pair saturates at about 0.55-0.6 of the unpaced rate.
        near = max(40_000.0, round(NEAR_SATURATION * ours, -4))
        lat_rates = [*LATENCY_RATES, near]
        log(f"[2/7] latency at {', '.join(f'{r:,.0f}' for r in lat_rates)} ticks/s")
        result["latency_us"] = latency.run(
            server,
            symbols,
            lat_rates,
            seconds={
                1_000.0: 2.0 if quick else 6.0,
                20_000.0: 1.0 if quick else 3.0,
                near: 1.0 if quick else 2.0,
            },
            warmup=0.5,
            rounds=1 if quick else 3,
            contenders={name: note for name, note in tp["notes"].items() if name in PEERS},
            log=log,
        )
        for rate in LATENCY_RATES:
            row = result["latency_us"][f"{rate:g}"]
            peer = row.get("picows_decode")
            for key, name in (
                ("", "feed_callback"),
                ("_get_batch", "feed"),
                ("_trio_floor", "trio_floor"),
                ("_thread_floor", "thread_floor"),
            ):
                mine = row.get(name)
                result[f"latency_p99{key}_vs_picows_decode_{rate:g}"] = (
                    round(mine["p99"] / peer["p99"], 3) if mine and peer and peer["p99"] else None
                )
        log("[3/7] CPU: ten connections at 1,000 ticks/s against one at 10,000")
        cpu_server = start_server(
            "replay", connections.SYMBOLS, args.seed, replay_options=["--ring", "2048"]
        )
        try:
            result.update(
                connections.run(
                    cpu_server, warmup=0.5 if quick else 1.0, seconds=2.0 if quick else 5.0, log=log
                )
            )
        finally:
            cpu_server.stop()
        log(f"[4/7] stall detection + heartbeat, {args.stalls} stalls")
        result.update(
            trio.run(
                lambda: live.detect_and_heartbeat(
                    server,
                    cycles=args.stalls,
                    min_seconds=8 if quick else 40,
                    stale_after=0.5,
                    hb=2.0,
                    log=log,
                )
            )
        )
        log(f"[5/7] recovery, {args.drops} drops")
        result.update(trio.run(lambda: live.recovery(cycles=args.drops, log=log)))
        log("[6/7] churn, 10,000 calls in 1 s")
        result.update(trio.run(lambda: churn.churn(calls=10_000, log=log)))
        log("[7/7] memory: state per symbol, then RSS over the ticks")
        result.update(memory.bytes_per_symbol(n=10_000, seed=args.seed, log=log))
        result.update(
            memory.rss_growth(
                server,
                base=args.rss_ticks // 10,
                total=args.rss_ticks,
                max_seconds=40 if quick else 150,
                log=log,
            )
        )
    finally:
        server.stop()
    if args.shards:
        log("[8/8] shards: 30,000 symbols over 10 AllTick connections (bench/shards.py)")
        result["shards"] = shards.collect(shards.parse_args([]), log)
    result["targets"] = {key: verdict(result.get(key), goal, kind) for key, goal, kind in TARGETS}
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def verdict(value: float | None, goal: float, kind: str) -> str:
    if value is None:
        return "not measured"
    met = value >= goal if kind == "min" else value <= goal
    return f"{'met' if met else 'NOT met'} ({'>=' if kind == 'min' else '<='} {goal:g})"


def table(result: dict[str, Any]) -> str:
    tp = result["throughput"]
    cpu = tp["cpu_us_per_tick"]
    rows = ["| benchmark | value | target |", "|---|---:|---|"]

    def row(name: str, key: str, unit: str = "") -> None:
        value = result.get(key)
        shown = "skipped" if value is None else f"{value:,}{unit}"
        rows.append(f"| {name} | {shown} | {result['targets'].get(key, '')} |")

    row("`ticks_per_s` (our feed, default transport)", "ticks_per_s")
    row("ticks per CPU-second of our feed (1e6 / CPU µs per tick)", "ticks_per_cpu_second")
    for name in PEERS:
        note = tp["notes"].get(name, "")
        row(f"`{name}_per_s` (fair peer: the same ticks) {note}".rstrip(), f"{name}_per_s")
        row(f"ratio ticks_per_s / {name}", f"ratio_vs_{name}")
    for name in BARE:
        note = tp["notes"].get(name, "")
        row(f"`{name}_bare_per_s` {note}".rstrip(), f"{name}_bare_per_s")
        row(f"ratio ticks_per_s / {name}", f"ratio_vs_{name}")
    rows.append(
        "| CPU µs per tick (feed / "
        + " / ".join(n for n in (*PEERS, *BARE) if n in cpu)
        + ") | "
        + " / ".join(f"{cpu[n]:.2f}" for n in ("feed", *PEERS, *BARE) if n in cpu)
        + " | |"
    )
    for rate in LATENCY_RATES:
        row(
            f"feed (on_batch) p99 / picows_decode p99 at {rate:,.0f} ticks/s",
            f"latency_p99_vs_picows_decode_{rate:g}",
        )
        row(
            f"feed (get_batch) p99 / picows_decode p99 at {rate:,.0f} ticks/s",
            f"latency_p99_get_batch_vs_picows_decode_{rate:g}",
        )
        row(
            f"trio_floor (no decode) p99 / picows_decode p99 at {rate:,.0f} ticks/s",
            f"latency_p99_trio_floor_vs_picows_decode_{rate:g}",
        )
        row(
            f"thread_floor (no decode) p99 / picows_decode p99 at {rate:,.0f} ticks/s",
            f"latency_p99_thread_floor_vs_picows_decode_{rate:g}",
        )
    row("CPU of ten connections at 1,000/s over one at 10,000/s", "connections_cpu_ratio")
    for key in (
        "detection_ms_p50",
        "detection_ms_p99",
        "timer_wake_late_ms_p50",
        "timer_wake_late_ms_p99",
        "recovery_ms_p50",
        "recovery_ms_p99",
        "churn_ops_per_s",
        "churn_call_only_ops_per_s",
        "churn_reconciler_steps",
        "churn_process_cpu_ms",
        "churn_idle_process_cpu_ms",
        "churn_requests_sent",
        "churn_wire_max_frames_in_1s",
        "churn_converged_s",
        "heartbeat_jitter_ms_p50",
        "heartbeat_jitter_ms_p99",
        "heartbeat_jitter_ms_p99_slow_consumer",
        "gc_full_collections",
        "gc_full_pause_ms_max",
        "rss_growth_mb_10m_ticks",
        "bytes_per_symbol_10k",
    ):
        row(f"`{key}`", key)
    rows += ["", "| latency, µs (p50 / p99 / p99.9) | " + " | ".join(latency.CONTENDERS) + " |"]
    rows.append("|---|" + "---:|" * len(latency.CONTENDERS))
    for rate, by_name in result["latency_us"].items():
        cells = []
        for name in latency.CONTENDERS:
            r = by_name.get(name)
            cells.append(
                "skipped"
                if r is None
                else f"{r['p50']:,.0f} / {r['p99']:,.0f} / {r['p999']:,.0f}"
                + (" (overloaded)" if r["overloaded"] else "")
            )
        rows.append(f"| {float(rate):,.0f} ticks/s | " + " | ".join(cells) + " |")
    conn = result["connections"]
    rows.append("")
    rows.append(
        f"CPU: one connection at 10,000/s {conn['one_at_10k']['cpu_pct']}% of a core "
        f"({conn['one_at_10k']['cpu_us_per_tick']} µs/tick); ten at 1,000/s "
        f"{conn['ten_at_1k']['cpu_pct']}% ({conn['ten_at_1k']['cpu_us_per_tick']} µs/tick)"
    )
    sc = result["server_check"]
    rows.append("")
    rows.append(
        f"server not the bottleneck: {'yes' if sc['server_not_bottleneck'] else 'NO'} (null "
        f"reader {sc['null_reader_frames_per_s']:,} frames/s = {sc['null_reader_over_feed']}x "
        f"our feed; server CPU at most {sc['server_cpu_pct_max_window']}% of a core in any "
        f"timed window; client CPU medians {sc['client_cpu_pct_median_per_contender']})"
    )
    rows.append(
        f"rss: {result['rss_ticks']:,} ticks ({result['rss_base_ticks']:,} at the base mark); "
        f"throughput rounds {tp['rounds']}; total {result['seconds']} s; load average "
        f"{result['machine']['loadavg_1min_at_start']} at the start, "
        f"{result['loadavg_at_end']} (1, 5, 15 min) at the end"
    )
    if "shards" in result:
        rows += ["", shards.table(result["shards"])]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    info = machine()
    log(
        f"bench/run.py{' --quick' if args.quick else ''}: {info['nproc']} cores, {info['cpu']}, "
        f"Python {info['python']}, load {info['loadavg_1min_at_start']}"
    )
    result = collect(args, log)
    if args.json:
        log(table(result))  # the table on stderr too, so one run gives both
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
