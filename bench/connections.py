"""CPU of the same tick rate over ten connections and over one (``bench/run.py``).

One feed reads 40 symbols from the replay server (``bench/_server.py``, paced per
connection with ``?rate=R``), twice:

one
    one connection carrying all 40 symbols at 10,000 ticks/s;
ten
    ``max_symbols_per_connection=4``: ten connections of 4 symbols, each at 1,000
    ticks/s (AllTick's 3 s between requests across a token's connections is turned off
    for the benchmark, so that the ten converge at once).

Each lets ``warmup`` seconds pass once every connection delivers, then takes the
process's CPU time (``time.process_time``: every thread, user and system) over
``seconds``, with the ticks delivered meanwhile. The figure that matters is the ratio
ten / one: what spreading a feed over connections costs when every connection is
quiet (a wake-up, a read and a hand-off per tick or two) against one busy connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

import tickactors
from _common import TOKEN, Server
from tickactors.venues import AllTick

SYMBOLS = [f"CPU{i:02d}USDT" for i in range(40)]


async def _measure(
    url: str, connections: int, rate: float, warmup: float, seconds: float
) -> dict[str, Any]:
    venue = AllTick(url=f"{url}?rate={rate:g}", token=TOKEN)
    venue.dialect.token_spacing = None  # the benchmark's ten converge at once
    per = len(SYMBOLS) // connections
    options: dict[str, Any] = {"stale_after": 60}
    if connections > 1:
        options.update(max_symbols_per_connection=per, max_connections=connections)
    async with tickactors.open_feed(venue, **options) as feed:
        feed.subscribe(*SYMBOLS)
        get_batch = feed.get_batch
        seen: set[str] = set()
        with trio.fail_after(30):
            while len(seen) < len(SYMBOLS):
                seen.update(t.symbol for t in await get_batch())
        end = trio.current_time() + warmup
        while trio.current_time() < end:
            await get_batch()
        ticks = 0
        c0, t0 = time.process_time(), time.perf_counter()
        end = trio.current_time() + seconds
        while trio.current_time() < end:
            ticks += len(await get_batch())
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        used = feed.statistics()
    return {
        "connections": connections,
        "rate_per_connection": rate,
        "ticks_per_s": round(ticks / wall),
        "cpu_pct": round(100 * cpu / wall, 1),
        "cpu_us_per_tick": round(cpu / ticks * 1e6, 2) if ticks else None,
        "connections_open": len(used.get("slots", [])) or 1,
    }


def run(
    server: Server, *, warmup: float, seconds: float, log: Callable[[str], None]
) -> dict[str, Any]:
    """Both layouts; ``connections_cpu_ratio`` = CPU of ten / CPU of one (same tick rate)."""
    one = trio.run(_measure, server.url, 1, 10_000.0, warmup, seconds)
    log(
        f"  one connection at 10,000/s: {one['ticks_per_s']:,} ticks/s, CPU "
        f"{one['cpu_pct']}% ({one['cpu_us_per_tick']} us/tick)"
    )
    ten = trio.run(_measure, server.url, 10, 1_000.0, warmup, seconds)
    log(
        f"  ten connections at 1,000/s: {ten['ticks_per_s']:,} ticks/s, CPU "
        f"{ten['cpu_pct']}% ({ten['cpu_us_per_tick']} us/tick)"
    )
    # CPU per tick, so that a few ticks more or less in either window do not count.
    ratio = (
        ten["cpu_us_per_tick"] / one["cpu_us_per_tick"]
        if one["cpu_us_per_tick"] and ten["cpu_us_per_tick"]
        else None
    )
    return {
        "connections_cpu_ratio": round(ratio, 3) if ratio else None,
        "connections": {"one_at_10k": one, "ten_at_1k": ten},
    }
