"""Benchmark: the full feed pipeline (two transports) against a bare trio-websocket loop.

``python bench/pipeline.py`` (``--help`` for the knobs; ``--json`` for one JSON object).

Contenders, each on a fresh connection per run, in a rotating order (A-B-C,
B-C-A, C-A-B, ...):

pipeline
    ``tickactors.open_feed(AllTick(url=..., token=...))``, ``feed.subscribe(*symbols)``,
    ``await feed.get_batch()`` in a loop, counting ticks: every frame decoded,
    validated into a ``Tick`` with exact decimals, ghost-filtered, staleness-stamped
    and handed over in batches. No ``transport_factory`` is passed, so this measures
    what users get: the default transport (``tickactors.connect_batched``, trio +
    wsproto, which hands the reader every frame of a socket read at once).
pipeline_trio_websocket
    the same feed with ``transport_factory=tickactors.connect_websocket``: the
    trio-websocket transport, one message per channel hand-off.
bare
    ``trio_websocket.open_websocket_url(url + "?token=...")``, send the 22004
    subscribe request, then ``await ws.get_message()`` in a loop, discarding frames.

Each run first lets ``--warmup`` ticks pass (connection set-up, subscription,
first batches), then times ``--ticks`` ticks with ``time.perf_counter``. The
report gives the median rate of each contender over the runs, each pipeline's
ratio to the bare loop (pipeline / bare) and its overhead: how much more time
per tick it needs than the bare loop, ``(bare_rate / pipeline_rate - 1) * 100``
(negative: faster than the bare loop). The verdict "target met" (overhead <= 15 %)
is about the default pipeline; the trio-websocket pipeline is reported alongside.

The server runs in a separate process, loopback only: ``bench/_server.py``
replays the simulator's own 22998 frames (see its docstring for why the
simulator's ``--firehose`` is too slow to be the server here); ``--server sim``
uses ``python -m tickactors sim --firehose`` instead. Two checks that the
server is not the bottleneck, both printed:

1. before the runs, a null client (a raw socket that only counts frames) reads
   from the server alone for ``--check-seconds``: the server's capacity must be
   well above the faster contender's rate;
2. during every timed window, the server's CPU (utime + stime from
   ``/proc/<pid>/stat``) and the client's CPU (``time.process_time``) are
   measured: the client should be near 100 % of a core, the server far below.

Bounded in time: every run has a deadline (``--run-timeout``) and no new round
of runs (one per contender) starts once ``--max-seconds`` would be exceeded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio_websocket

import tickactors
from _common import (
    DEFAULT_SYMBOLS,
    TOKEN,
    Sample,
    Server,
    Window,
    machine,
    null_client,
    start_server,
    subscribe_request,
)
from tickactors._net.transport import TransportFactory
from tickactors.venues import AllTick

# -- the contenders ----------------------------------------------------------------------


async def run_pipeline(
    server: Server,
    symbols: list[str],
    warmup: int,
    n: int,
    sample: Sample,
    transport_factory: TransportFactory | None = None,
) -> None:
    """Open a feed, subscribe, consume with get_batch; time ``n`` ticks after ``warmup``.

    ``transport_factory=None`` passes nothing to ``open_feed``: its default transport.
    """
    url = server.url
    venue = AllTick(url=url, token=TOKEN)
    options: dict[str, Any] = {}
    if transport_factory is not None:
        options["transport_factory"] = transport_factory
    async with tickactors.open_feed(venue, **options) as feed:
        feed.subscribe(*symbols)
        get_batch = feed.get_batch
        count = 0
        while count < warmup:
            count += len(await get_batch())
        window = Window(server, sample)
        count = 0
        try:
            while count < n:
                count += len(await get_batch())
        finally:
            window.stop(count)


async def run_bare(
    server: Server,
    symbols: list[str],
    warmup: int,
    n: int,
    sample: Sample,
    connect_options: dict[str, Any],
) -> None:
    """Open a trio-websocket connection, subscribe, discard ``n`` frames after ``warmup``."""
    url = f"{server.url}?token={TOKEN}"
    async with trio_websocket.open_websocket_url(url, **connect_options) as ws:
        await ws.send_message(subscribe_request(symbols))
        get_message = ws.get_message
        for _ in range(warmup):
            await get_message()
        window = Window(server, sample)
        count = 0
        try:
            while count < n:
                await get_message()
                count += 1
        finally:
            window.stop(count)


# -- driving the runs --------------------------------------------------------------------


async def timed(
    contender: str,
    run: int,
    deadline: float,
    body: Callable[[Sample], Awaitable[None]],
) -> Sample:
    """Run one contender for at most ``deadline`` seconds; a run cut short keeps its count."""
    sample = Sample(contender, run)
    with trio.move_on_after(deadline) as scope:
        await body(sample)
    sample.timed_out = scope.cancelled_caught
    return sample


async def run_all(
    args: argparse.Namespace, server: Server, log: Callable[[str], None]
) -> list[Sample]:
    symbols = args.symbols
    bare_options: dict[str, Any] = (
        {"message_queue_size": 256, "receive_buffer_size": 65536} if args.bare_like_feed else {}
    )

    async def pipeline(sample: Sample) -> None:
        await run_pipeline(server, symbols, args.warmup, args.ticks, sample)

    async def bare(sample: Sample) -> None:
        await run_bare(server, symbols, args.warmup, args.ticks, sample, bare_options)

    async def pipeline_trio_websocket(sample: Sample) -> None:
        await run_pipeline(
            server, symbols, args.warmup, args.ticks, sample, tickactors.connect_websocket
        )

    contenders = {
        "pipeline": pipeline,
        "bare": bare,
        "pipeline_trio_websocket": pipeline_trio_websocket,
    }
    names = list(contenders)
    samples: list[Sample] = []
    started = time.perf_counter()
    longest_round = 0.0
    for run in range(1, args.runs + 1):
        elapsed = time.perf_counter() - started
        if run > 1 and elapsed + longest_round * 1.2 > args.max_seconds:
            log(f"stopping after {run - 1} runs: --max-seconds {args.max_seconds:g} s reached")
            break
        shift = (run - 1) % len(names)
        order = names[shift:] + names[:shift]
        round_start = time.perf_counter()
        for name in order:
            sample = await timed(name, run, args.run_timeout, contenders[name])
            samples.append(sample)
            flag = "  TIMED OUT (partial)" if sample.timed_out else ""
            log(
                f"run {run} {name:<23} {sample.rate:>10,.0f} ticks/s  {sample.ticks:>8,} in "
                f"{sample.seconds:5.2f} s  client CPU {100 * sample.client_load:3.0f}%  "
                f"server CPU {100 * sample.server_load:3.0f}%  "
                f"{sample.cpu_us_per_tick:5.1f} us CPU/tick{flag}"
            )
        longest_round = max(longest_round, time.perf_counter() - round_start)
    return samples


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/pipeline.py",
        description="Feed pipeline (default transport, and on trio-websocket) vs bare "
        "trio-websocket loop against one simulated stream.",
    )
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks timed per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per contender (median)")
    parser.add_argument("--warmup", type=int, default=5_000, help="ticks before the clock")
    parser.add_argument(
        "--symbols", default=DEFAULT_SYMBOLS, help=f"comma-separated (default {DEFAULT_SYMBOLS})"
    )
    parser.add_argument(
        "--server",
        choices=("replay", "sim"),
        default="replay",
        help="replay: bench/_server.py (default); sim: python -m tickactors sim --firehose",
    )
    parser.add_argument(
        "--bare-like-feed",
        action="store_true",
        help="give the bare loop the feed's connection options "
        "(message_queue_size=256, receive_buffer_size=65536) instead of trio-websocket's",
    )
    parser.add_argument("--run-timeout", type=float, default=30.0, help="seconds per run")
    parser.add_argument(
        "--max-seconds", type=float, default=100.0, help="start no round of runs beyond this"
    )
    parser.add_argument(
        "--check-seconds", type=float, default=1.5, help="null-client check duration (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated market")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    args.symbols = [s for s in args.symbols.split(",") if s]
    if not args.symbols or args.ticks < 1 or args.runs < 1:
        parser.error("need at least one symbol, one tick and one run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    info = machine()
    server = start_server(args.server, args.symbols, args.seed)
    try:
        log(
            "pipeline (default transport, and on trio-websocket) vs bare trio-websocket: "
            f"{args.ticks:,} ticks x {args.runs} runs, "
            f"symbols {','.join(args.symbols)}, {args.server} server pid {server.pid} at "
            f"{server.url}"
        )
        log(
            f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, "
            f"trio {info['trio']}, trio-websocket {info['trio_websocket']}, "
            f"load {info['loadavg_1min_at_start']}"
        )
        if info["loadavg_1min_at_start"] > 0.5 * (info["nproc"] or 1):
            log(
                "warning: the machine is busy (load above half the cores): wall-clock rates "
                "suffer; the CPU time per tick is the steadier figure"
            )
        check: dict[str, float] | None = None
        if args.check_seconds > 0:
            check = null_client(server, args.symbols, args.check_seconds)
            log(
                f"server alone into a null reader: {check['frames_per_s']:,.0f} frames/s, "
                f"server CPU {check['server_cpu_pct']:.0f}% of one core"
            )
        samples = trio.run(run_all, args, server, log)
    finally:
        server.stop()

    def median(name: str, attr: str) -> float:
        # a run cut short before its window opened has nothing to say
        values = [getattr(s, attr) for s in samples if s.contender == name and s.ticks]
        return statistics.median(values) if values else 0.0

    names = ("pipeline", "bare", "pipeline_trio_websocket")
    pipe, bare = median("pipeline", "rate"), median("bare", "rate")
    pipe_tws = median("pipeline_trio_websocket", "rate")
    ratio = pipe / bare if bare else 0.0
    overhead = (bare / pipe - 1) * 100 if pipe else float("inf")
    ratio_tws = pipe_tws / bare if bare else 0.0
    overhead_tws = (bare / pipe_tws - 1) * 100 if pipe_tws else float("inf")
    runs = min(sum(s.contender == n and s.ticks > 0 for s in samples) for n in names)
    server_load = max(median(n, "server_load") for n in names)
    client_load = {n: median(n, "client_load") for n in names}
    cpu_per_tick = {n: median(n, "cpu_us_per_tick") for n in names}

    def cpu_overhead_of(name: str) -> float:
        base = cpu_per_tick["bare"]
        return (cpu_per_tick[name] / base - 1) * 100 if base and cpu_per_tick[name] else 0.0

    cpu_overhead = cpu_overhead_of("pipeline")
    cpu_overhead_tws = cpu_overhead_of("pipeline_trio_websocket")
    fastest = max(pipe, bare, pipe_tws)
    headroom = check["frames_per_s"] / fastest if check and fastest else 0.0
    verdict = (check is None or headroom >= 2.0) and server_load < 0.7
    result = {
        "ticks": args.ticks,
        "pipeline_ticks_per_s": round(pipe, 1),
        "trio_websocket_bare_per_s": round(bare, 1),
        "ratio": round(ratio, 4),
        "overhead_pct": round(overhead, 2),
        "pipeline_trio_websocket_per_s": round(pipe_tws, 1),
        "ratio_trio_websocket": round(ratio_tws, 4),
        "overhead_trio_websocket_pct": round(overhead_tws, 2),
        "runs": runs,
        "machine": info,
        "symbols": args.symbols,
        "server": args.server,
        "bare_connect_options": "feed's" if args.bare_like_feed else "trio-websocket defaults",
        "cpu_us_per_tick": {k: round(v, 2) for k, v in cpu_per_tick.items()},
        "cpu_overhead_pct": round(cpu_overhead, 2),
        "cpu_overhead_trio_websocket_pct": round(cpu_overhead_tws, 2),
        "server_check": {
            "null_reader_frames_per_s": round(check["frames_per_s"]) if check else None,
            "null_reader_server_cpu_pct": round(check["server_cpu_pct"], 1) if check else None,
            "headroom_over_fastest_client": round(headroom, 2),
            "server_cpu_pct_during_runs": round(100 * server_load, 1),
            "client_cpu_pct_during_runs": {k: round(100 * v, 1) for k, v in client_load.items()},
            "server_not_bottleneck": verdict,
        },
        "timed_out_runs": sum(s.timed_out for s in samples),
        "per_run": [
            {
                "contender": s.contender,
                "run": s.run,
                "ticks_per_s": round(s.rate, 1),
                "client_cpu_pct": round(100 * s.client_load, 1),
                "server_cpu_pct": round(100 * s.server_load, 1),
                "timed_out": s.timed_out,
            }
            for s in samples
        ],
    }
    if args.json:
        print(json.dumps(result))
        return 0
    log("")
    cut = result["timed_out_runs"]
    note = f" ({cut} run(s) cut short by --run-timeout: partial windows)" if cut else ""
    log(f"medians over {runs} runs of {args.ticks:,} ticks{note}:")
    log(
        f"  pipeline (open_feed + get_batch, default transport) {pipe:>10,.0f} ticks/s  "
        f"{cpu_per_tick['pipeline']:5.1f} us CPU/tick"
    )
    log(
        f"  pipeline, trio-websocket transport                  {pipe_tws:>10,.0f} ticks/s  "
        f"{cpu_per_tick['pipeline_trio_websocket']:5.1f} us CPU/tick"
    )
    log(
        f"  bare trio-websocket get_message                     {bare:>10,.0f} ticks/s  "
        f"{cpu_per_tick['bare']:5.1f} us CPU/tick"
    )
    log(
        f"  ratio pipeline_trio_websocket/bare {ratio_tws:.3f}; overhead {overhead_tws:+.1f}% "
        f"time per tick ({cpu_overhead_tws:+.1f}% CPU per tick)"
    )
    log(
        f"  ratio pipeline/bare {ratio:.3f}; overhead {overhead:+.1f}% time per tick "
        f"({cpu_overhead:+.1f}% CPU per tick); target <= 15% (default pipeline): "
        f"{'met' if overhead <= 15 else 'NOT met'}"
    )
    log(
        "server not the bottleneck: "
        + ("yes" if verdict else "NO")
        + (
            f" (server alone fills a null reader at {headroom:.1f}x the fastest client's rate; "
            if check
            else " ("
        )
        + f"server CPU {100 * server_load:.0f}% of one core during the runs while the clients "
        f"used {100 * client_load['pipeline']:.0f}% / "
        f"{100 * client_load['pipeline_trio_websocket']:.0f}% / {100 * client_load['bare']:.0f}% "
        "(pipeline / pipeline_trio_websocket / bare))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
