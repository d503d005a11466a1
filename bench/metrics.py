"""Benchmark: what ``--metrics`` costs per tick, with Prometheus scraping during the run.

``python bench/metrics.py`` (``--json`` for one JSON object; ``--help`` for the knobs).

The full feed (``open_feed(AllTick(...))``, ``feed.get_batch()`` in a loop, as in
``bench/throughput.py``) reads the replay server (``bench/_server.py``, a separate
process) in three set-ups, each on a fresh connection, in a rotating order:

off
    no collector, no endpoint;
on
    the runner's endpoint (``_cli/metrics.serve_metrics``: a ``FeedCollector``, the
    process collectors and prometheus_client's HTTP server thread), and a scraper in a
    separate process (plain ``urllib``, as Prometheus would GET it) fetching
    ``/metrics`` every ``--interval`` seconds (default 1 s);
on_fast
    the same, scraped every ``--fast-interval`` seconds (default 0.1 s), to make the
    cost of one scrape stand out of the noise.

CPU per tick is the client process's CPU (``time.process_time``: every thread, the
HTTP server's included; not the scraper's, another process) over the timed window,
divided by the ticks, and the Trio thread's alone (``time.thread_time``); the medians
over ``--runs`` rounds are reported, with the median of each round's difference to
``off`` (paired: adjacent runs share the host's load best) and the scrapes that fell in
each window. Separately it times one snapshot on the Trio thread
(``Feed.statistics()``, what a scrape costs the feed's own thread) and one whole
collection (snapshot, metric families and the text, what the server thread does),
each the median of ``--repeat`` calls in a running feed; and the process CPU of an idle
feed (connected, nothing subscribed) over ``--idle-seconds`` without scrapes, then
scraped every ``--fast-interval`` seconds: the CPU of one scrape, whole (HTTP server,
snapshot, families, text, the process collectors), without a busy reader's noise. Per
tick, one scrape a second costs that divided by the ticks per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from typing import Any

import trio

import tickactors
from _common import DEFAULT_SYMBOLS, TOKEN, Sample, Server, Window, machine, start_server
from tickactors._cli.metrics import serve_metrics
from tickactors.venues import AllTick

#: The scraper: GET the URL every INTERVAL seconds, one line per scrape, until killed.
SCRAPER = """
import sys, time, urllib.request
url, interval = sys.argv[1], float(sys.argv[2])
while True:
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read()
    print(round(time.monotonic() - start, 6), flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - start)))
"""
TIMEOUT = 120.0


async def run_feed(
    server: Server,
    symbols: list[str],
    warmup: int,
    n: int,
    sample: Sample,
    interval: float | None,
    scrapes: list[float],
    trio_cpu: list[float],
) -> None:
    """Time ``n`` ticks after ``warmup``; with ``interval``, scraped meanwhile. ``trio_cpu``
    gets the Trio thread's own CPU seconds over the window (``time.thread_time``)."""
    venue = AllTick(url=server.url, token=TOKEN)
    with tempfile.TemporaryFile("w+") as log:
        async with tickactors.open_feed(venue) as feed, AsyncExitStack() as stack:
            feed.subscribe(*symbols)
            scraper: trio.Process | None = None
            if interval is not None:
                url = await stack.enter_async_context(
                    serve_metrics(feed, "127.0.0.1", 0, name="alltick")
                )
                scraper = await trio.lowlevel.open_process(
                    [sys.executable, "-c", SCRAPER, url, str(interval)], stdout=log
                )
            get_batch = feed.get_batch
            count = 0
            while count < warmup:
                count += len(await get_batch())
            window = Window(server, sample)
            thread_start = time.thread_time()
            count = 0
            try:
                with trio.move_on_after(TIMEOUT):
                    while count < n:
                        count += len(await get_batch())
            finally:
                window.stop(count)
                trio_cpu.append(time.thread_time() - thread_start)
                if scraper is not None:
                    scraper.kill()
                    with trio.CancelScope(shield=True):
                        await scraper.wait()
        log.seek(0)
        scrapes.extend(float(line) for line in log.read().split())


async def time_collection(server: Server, symbols: list[str], repeat: int) -> dict[str, float]:
    """Median µs of one ``Feed.statistics()`` and of one whole collection, in a live feed."""
    from prometheus_client import CollectorRegistry, generate_latest

    venue = AllTick(url=server.url, token=TOKEN)
    async with tickactors.open_feed(venue) as feed:
        feed.subscribe(*symbols)
        registry = CollectorRegistry()
        tickactors.FeedCollector(feed, registry=registry)
        for _ in range(50):
            await feed.get_batch()
        snapshot, whole = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            feed.statistics()
            snapshot.append(time.perf_counter() - t)
            t = time.perf_counter()
            text = generate_latest(registry)
            whole.append(time.perf_counter() - t)
            await feed.get_batch()
        return {
            "snapshot_us": round(statistics.median(snapshot) * 1e6, 1),
            "collection_us": round(statistics.median(whole) * 1e6, 1),
            "text_bytes": len(text),
        }


async def scrape_cost(server: Server, seconds: float, interval: float) -> dict[str, float]:
    """Process CPU of an idle feed (connected, nothing subscribed) over ``seconds``, without
    and with a scrape every ``interval``: what one scrape costs the process, free of the
    noise of a busy reader."""
    venue = AllTick(url=server.url, token=TOKEN)
    out: dict[str, float] = {}
    with tempfile.TemporaryFile("w+") as log:
        async with (
            tickactors.open_feed(venue) as feed,
            serve_metrics(feed, "127.0.0.1", 0, name="alltick") as url,
        ):
            await trio.sleep(1)
            start = time.process_time()
            await trio.sleep(seconds)
            idle = time.process_time() - start
            scraper = await trio.lowlevel.open_process(
                [sys.executable, "-c", SCRAPER, url, str(interval)], stdout=log
            )
            await trio.sleep(1)  # the scraper's interpreter starts
            log.seek(0, 2)
            before = log.tell()
            start = time.process_time()
            await trio.sleep(seconds)
            busy = time.process_time() - start
            scraper.kill()
            await scraper.wait()
        log.seek(before)
        scrapes = len(log.read().split())
    out["idle_cpu_ms_per_s"] = round(idle / seconds * 1000, 3)
    out["scraped_cpu_ms_per_s"] = round(busy / seconds * 1000, 3)
    out["scrapes"] = scrapes
    out["cpu_ms_per_scrape"] = round((busy - idle) / max(1, scrapes) * 1000, 3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python bench/metrics.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--ticks", type=int, default=3_000_000, help="ticks timed per run")
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5, help="rounds over the three set-ups")
    parser.add_argument("--interval", type=float, default=1.0, help="scrape interval (s)")
    parser.add_argument("--fast-interval", type=float, default=0.1, help="on_fast's interval")
    parser.add_argument("--repeat", type=int, default=200, help="collections timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="idle feed, per half of scrape_cost"
    )
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    symbols = DEFAULT_SYMBOLS.split(",")
    server = start_server("replay", symbols, args.seed)
    setups: dict[str, float | None] = {
        "off": None,
        "on": args.interval,
        "on_fast": args.fast_interval,
    }
    names = list(setups)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    scrapes: dict[str, list[int]] = {name: [] for name in names}
    scrape_ms: list[float] = []
    trio_us: dict[str, list[float]] = {name: [] for name in names}
    try:
        collection = trio.run(time_collection, server, symbols, args.repeat)
        log(f"collection: {collection}")
        per_scrape = trio.run(scrape_cost, server, args.idle_seconds, args.fast_interval)
        log(f"one scrape, idle feed: {per_scrape}")
        for run_no in range(1, args.runs + 1):
            shift = (run_no - 1) % len(names)
            for name in names[shift:] + names[:shift]:
                sample = Sample(name, run_no)
                seen: list[float] = []
                thread: list[float] = []
                trio.run(
                    run_feed,
                    server,
                    symbols,
                    args.warmup,
                    args.ticks,
                    sample,
                    setups[name],
                    seen,
                    thread,
                )
                if sample.ticks:
                    trio_us[name].append(thread[0] / sample.ticks * 1e6)
                samples[name].append(sample)
                scrapes[name].append(len(seen))
                scrape_ms.extend(1000 * s for s in seen)
                log(
                    f"  round {run_no} {name:<8} {sample.rate:>10,.0f} ticks/s "
                    f"{sample.cpu_us_per_tick:6.3f} us CPU/tick (Trio thread "
                    f"{trio_us[name][-1] if trio_us[name] else 0:6.3f})  "
                    f"{sample.seconds:5.1f} s  {len(seen)} scrapes"
                )
    finally:
        server.stop()

    def median(name: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples[name] if s.ticks)

    cpu = {name: round(median(name, "cpu_us_per_tick"), 3) for name in names}

    def paired(name: str) -> float:
        """The median over rounds of (this set-up - off) in the same round."""
        pairs = zip(samples[name], samples["off"], strict=True)
        return statistics.median(a.cpu_us_per_tick - b.cpu_us_per_tick for a, b in pairs)

    result: dict[str, Any] = {
        "cpu_us_per_tick": cpu,
        "trio_thread_cpu_us_per_tick": {
            name: round(statistics.median(trio_us[name]), 3) for name in names if trio_us[name]
        },
        "paired_delta_us_per_tick": {name: round(paired(name), 3) for name in names[1:]},
        "per_run_cpu_us_per_tick": {
            name: [round(s.cpu_us_per_tick, 3) for s in samples[name]] for name in names
        },
        "ticks_per_s": {name: round(median(name, "rate")) for name in names},
        "delta_us_per_tick": {
            name: round(cpu[name] - cpu["off"], 3) for name in names if name != "off"
        },
        "scrapes_per_run": {name: scrapes[name] for name in names},
        "scrape_ms_median": round(statistics.median(scrape_ms), 3) if scrape_ms else None,
        "collection": collection,
        "scrape_cost": per_scrape,
        "runs": args.runs,
        "ticks": args.ticks,
        "interval": args.interval,
        "fast_interval": args.fast_interval,
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result))
        return
    for name in names:
        delta = "" if name == "off" else f"  ({result['paired_delta_us_per_tick'][name]:+.3f})"
        print(
            f"{name:<8} {cpu[name]:6.3f} us CPU/tick{delta}  Trio thread "
            f"{result['trio_thread_cpu_us_per_tick'].get(name, 0):6.3f}  "
            f"{result['ticks_per_s'][name]:>10,} ticks/s  scrapes/run {scrapes[name]}"
        )
    print(f"one scrape (GET, seen by the scraper): {result['scrape_ms_median']} ms (median)")
    cost = result["scrape_cost"]
    print(
        f"one scrape costs the process {cost['cpu_ms_per_scrape']} ms of CPU "
        f"(idle feed: {cost['idle_cpu_ms_per_s']} ms/s, scraped every {args.fast_interval} s: "
        f"{cost['scraped_cpu_ms_per_s']} ms/s, {cost['scrapes']} scrapes)"
    )
    print(
        f"on the Trio thread, one snapshot (Feed.statistics): {collection['snapshot_us']} us; "
        f"a whole collection: {collection['collection_us']} us, {collection['text_bytes']} bytes"
    )


if __name__ == "__main__":
    main()
