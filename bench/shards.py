"""Sharding at scale: 30,000 symbols over 10 AllTick connections, within AllTick's rules.

``python bench/shards.py`` (about 1.5 minutes), ``--json`` for one JSON object on stdout;
progress goes to stderr.

The simulator runs in a child process (this script with ``--serve``) on loopback, holding
AllTick's professional plan: 3,000 symbols per connection, 10 connections per token, 3 s
between subscription requests across a token's connections; it answers an over-cap list
with 603, an eleventh connection with 429, a request too soon with 605, and counts each.
When the benchmark ends it reports those counts, so the rules are checked by the venue,
not by the client that is being measured.

Method, per run (a child process each, so that memory is the run's own):

1. the feed opens with ``AllTick(plan="professional")`` and subscribes N x 3,000 symbols
   in one call; the shard plan opens N connections at once;
2. **convergence**: the time from that call until the venue confirmed every symbol
   (``wait_converged``). The floor is the token's rule: N requests 3 s apart, (N - 1) x 3 s;
3. **steady state**: for ``--steady`` seconds the feed delivers every trade of the
   N x 3,000 symbols (each trades every ``--tick-interval`` seconds, jittered); CPU time of
   this process (``time.process_time``) over that window, per connection and per tick;
4. **memory**: RSS of this process before ``open_feed`` and after the steady window.

A run with one connection (3,000 symbols) comes first; the memory and CPU of one more
connection are the difference between the two runs, divided by N - 1. No rotation: ten
connections of 3,000 leave no spare under the plan's ten (rotation needs one).

Benchmarks, not tests: nothing is asserted; the venue's counts are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import trio

import tickactors
from _common import listening_url, machine
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick

TOKEN = "bench-shards-token"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


# -- the venue: a child process ----------------------------------------------------------


async def serve(tick_interval: float, seed: int) -> None:
    """The simulator on loopback until stdin closes; then its counts as one JSON line."""
    config = SimConfig(
        plan="professional", over_cap="reject", tick_interval=tick_interval, send_queue=1 << 16
    )
    async with open_simulator("alltick", config=config, seed=seed) as sim:
        print(f"listening {sim.url}", flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        async with stdin:
            while await stdin.receive_some(4096):
                pass
        stats = sim.stats
        report = {
            "violations": dict(stats.violations),
            "closes": dict(stats.closes),
            "connections_opened": stats.connections_opened,
            "requests_by_cmd": {str(k): v for k, v in stats.requests_by_cmd.items()},
            "trades_generated": sum(run.count for run in stats.trades_generated.values()),
        }
        print(json.dumps(report), flush=True)


# -- the feed: one run -------------------------------------------------------------------


async def measure(url: str, connections: int, per: int, steady: float) -> dict[str, Any]:
    symbols = [f"S{n:05d}.US" for n in range(connections * per)]
    rss_before = rss_bytes()
    # A token of its own per run: the venue's 3 s rule spans every connection of a token,
    # those of the previous run (another process) included.
    venue = AllTick(url=url, token=f"{TOKEN}-{connections}", plan="professional")
    options = {"max_symbols_per_connection": per}  # the plan's 3,000 unless told otherwise
    async with tickactors.open_feed(venue, seed=1, stale_after=60.0, **options) as feed:
        cpu0, t0 = time.process_time(), trio.current_time()
        feed.subscribe(*symbols)
        ticks = 0

        async def drain() -> None:
            nonlocal ticks
            async for batch in feed.batches():
                ticks += len(batch)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            with trio.fail_after(60 + 6 * connections):
                await feed.wait_converged()
            converged_s = trio.current_time() - t0
            cpu_converge = time.process_time() - cpu0
            rss_converged = rss_bytes()
            ticks, cpu1, t1 = 0, time.process_time(), trio.current_time()
            await trio.sleep(steady)
            cpu_steady = time.process_time() - cpu1
            window = trio.current_time() - t1
            steady_ticks = ticks
            stats = feed.statistics()
            nursery.cancel_scope.cancel()
    rss_after = rss_bytes()
    slots = stats["slots"]
    return {
        "connections": len(slots),
        "symbols": len(symbols),
        "converge_s": round(converged_s, 3),
        "converge_floor_s": 3.0 * (len(slots) - 1),
        "requests": stats["gate"]["requests"],
        "cpu_converge_s": round(cpu_converge, 3),
        "steady_s": round(window, 3),
        "steady_ticks_per_s": round(steady_ticks / window, 1),
        "steady_cpu_pct": round(100 * cpu_steady / window, 2),
        "steady_cpu_pct_per_connection": round(100 * cpu_steady / window / len(slots), 3),
        "cpu_us_per_tick": round(1e6 * cpu_steady / steady_ticks, 2) if steady_ticks else None,
        "rss_mb_before": round(rss_before / 2**20, 1),
        "rss_mb_converged": round(rss_converged / 2**20, 1),
        "rss_mb_after": round(rss_after / 2**20, 1),
        "per_slot_symbols": [s["desired"]["trades"] for s in slots],
        "reconnects": stats["connection"]["disconnects"],
    }


def run_child(url: str, connections: int, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--measure", url, "--connections", str(connections)]
    argv += ["--per-connection", str(args.per_connection), "--steady", str(args.steady)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise SystemExit(f"the run with {connections} connection(s) failed:\n{done.stderr}")
    return json.loads(done.stdout)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/shards.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--connections", type=int, default=10, help="connections (default 10)")
    parser.add_argument("--per-connection", type=int, default=3000, help="symbols each (3000)")
    parser.add_argument(
        "--tick-interval", type=float, default=10.0, help="s between two trades of a symbol (10)"
    )
    parser.add_argument("--steady", type=float, default=20.0, help="steady-state window, s (20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        trio.run(serve, args.tick_interval, args.seed)
        return 0
    if args.measure:
        result = trio.run(measure, args.measure, args.connections, args.per_connection, args.steady)
        print(json.dumps(result))
        return 0
    result = collect(args, lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


def start_venue(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """This script with ``--serve``: the simulator in a child process; its URL."""
    argv = [sys.executable, __file__, "--serve", "--tick-interval", str(args.tick_interval)]
    argv += ["--seed", str(args.seed)]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return process, listening_url(process, "simulator")


def collect(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    process, url = start_venue(args)
    try:
        log(f"simulator pid {process.pid} at {url} (professional plan)")
        log(f"[1/2] one connection, {args.per_connection:,} symbols")
        one = run_child(url, 1, args)
        log(f"      converged in {one['converge_s']} s, {one['steady_cpu_pct']} % CPU")
        total = args.connections * args.per_connection
        log(f"[2/2] {args.connections} connections, {total:,} symbols")
        many = run_child(url, args.connections, args)
        log(f"      converged in {many['converge_s']} s, {many['steady_cpu_pct']} % CPU")
    finally:
        venue = _report(process)
    extra = max(many["connections"] - one["connections"], 1)
    return {
        "machine": machine(),
        "tick_interval_s": args.tick_interval,
        "one": one,
        "many": many,
        "per_extra_connection": {
            "rss_mb": round((many["rss_mb_after"] - one["rss_mb_after"]) / extra, 2),
            "steady_cpu_pct": round((many["steady_cpu_pct"] - one["steady_cpu_pct"]) / extra, 3),
        },
        "venue": venue,
    }


def _report(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Close the simulator's stdin: it prints its counts and exits."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    try:
        line = process.stdout.readline().decode().strip()
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        return {}
    return json.loads(line) if line else {}


def table(result: dict[str, Any]) -> str:
    one, many, venue = result["one"], result["many"], result["venue"]
    rows = [
        ("connections", one["connections"], many["connections"]),
        ("symbols", one["symbols"], many["symbols"]),
        ("converged after (s)", one["converge_s"], many["converge_s"]),
        ("floor: (N - 1) x 3 s", one["converge_floor_s"], many["converge_floor_s"]),
        ("subscription requests", one["requests"], many["requests"]),
        ("CPU to converge (s)", one["cpu_converge_s"], many["cpu_converge_s"]),
        ("steady ticks/s", one["steady_ticks_per_s"], many["steady_ticks_per_s"]),
        ("steady CPU (% of a core)", one["steady_cpu_pct"], many["steady_cpu_pct"]),
        ("CPU per tick (us)", one["cpu_us_per_tick"], many["cpu_us_per_tick"]),
        ("RSS after (MB)", one["rss_mb_after"], many["rss_mb_after"]),
    ]
    out = ["| | one | many |", "| --- | --- | --- |"]
    out += [f"| {name} | {a} | {b} |" for name, a, b in rows]
    extra = result["per_extra_connection"]
    out.append("")
    out.append(
        f"one more connection of {many['symbols'] // max(many['connections'], 1):,} symbols: "
        f"{extra['rss_mb']} MB RSS, {extra['steady_cpu_pct']} % of a core"
    )
    out.append(
        f"venue's counts: violations {venue.get('violations')}, closes {venue.get('closes')}"
    )
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
