"""Memory: RSS growth over millions of ticks, and state per desired symbol (``bench/run.py``).

rss_growth
    One feed (default transport) on the replay server (``bench/_server.py``), four
    symbols, ``get_batch`` in a loop. RSS (``/proc/self/statm``) is read after the
    first ``base`` ticks and after ``total`` ticks (default 1 M and 10 M); growth is the
    difference. Bounded by ``max_seconds``: a run cut short reports the ticks it reached.
bytes_per_symbol
    A feed on ``python -m tickactors sim`` (a separate process: its own state per
    symbol must not be counted) with ``--max-symbols 20000`` and a trade per symbol
    once an hour (quiet). With ``tracemalloc`` tracing, the feed connects; then
    ``subscribe`` of ``n`` symbols (names made before the first measurement), wait
    until all are confirmed, ``gc.collect()``; state per symbol = the traced memory
    difference / ``n``. Counts everything the feed keeps: desired and confirmed sets,
    the reconciler's and the staleness monitor's per-symbol entries, and whatever else.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import trio

import tickactors
from _common import TOKEN, Server, rss_bytes, start_server
from tickactors.venues import AllTick

SYMBOLS = ["BTCUSDT", "ETHUSDT", "EURUSD", "700.HK"]
MB = 1024 * 1024


async def _rss(
    server: Server, base: int, total: int, max_seconds: float, log: Callable[[str], None]
) -> dict[str, Any]:
    marks: list[tuple[int, int]] = []
    started = time.perf_counter()
    venue = AllTick(url=server.url, token=TOKEN)
    async with tickactors.open_feed(venue) as feed:
        feed.subscribe(*SYMBOLS)
        get_batch = feed.get_batch
        count, next_mark, step = 0, base, max(1, (total - base) // 9)
        deadline = started + max_seconds
        while count < total:
            count += len(await get_batch())
            if count >= next_mark:
                marks.append((count, rss_bytes()))
                log(f"  rss: {count:>11,} ticks  RSS {marks[-1][1] / MB:7.1f} MB")
                next_mark += step
                if time.perf_counter() > deadline:
                    log(f"  rss: time limit {max_seconds:g} s reached at {count:,} ticks")
                    break
    seconds = time.perf_counter() - started
    first = marks[0] if marks else (0, 0)
    last = marks[-1] if marks else (0, 0)
    return {
        "rss_growth_mb_10m_ticks": round((last[1] - first[1]) / MB, 2),
        "rss_ticks": last[0],
        "rss_base_ticks": first[0],
        "rss_mb_at_base": round(first[1] / MB, 1),
        "rss_mb_at_end": round(last[1] / MB, 1),
        "rss_curve_mb": [[c, round(r / MB, 2)] for c, r in marks],
        "rss_run_ticks_per_s": round(count / seconds) if seconds else 0,
    }


def rss_growth(
    server: Server, *, base: int, total: int, max_seconds: float, log: Callable[[str], None]
) -> dict[str, Any]:
    return trio.run(_rss, server, base, total, max_seconds, log)


async def _per_symbol(url: str, n: int, log: Callable[[str], None]) -> dict[str, Any]:
    symbols = [f"S{i:05d}.X" for i in range(n)]
    venue = AllTick(url=url, token=TOKEN)
    async with tickactors.open_feed(venue) as feed:
        with trio.fail_after(20):
            async for event in feed.events():
                if event.event == "connected":
                    break
        await trio.sleep(0.2)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        feed.subscribe(*symbols)
        with trio.fail_after(60):
            await feed.wait_confirmed()
        await trio.sleep(0.5)  # answers handled, watch clocks set
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        confirmed = len(feed.confirmed())
    per = (after - before) / n
    log(
        f"  state per symbol: {per:,.0f} bytes with {n:,} symbols desired ({confirmed:,} confirmed)"
    )
    return {"bytes_per_symbol_10k": round(per), "bytes_per_symbol_symbols": n}


def bytes_per_symbol(*, n: int, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    options = ["--max-symbols", str(2 * n), "--tick-interval", "3600"]
    server = start_server("sim", [], seed, sim_options=options)
    tracemalloc.start()
    try:
        return trio.run(_per_symbol, server.url, n, log)
    finally:
        tracemalloc.stop()
        server.stop()
