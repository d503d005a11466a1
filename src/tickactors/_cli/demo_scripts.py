"""The demo's venues: what each subscribes, its timings, and its scripted faults.

Each script makes the simulator commit, within the first minute, the faults the feed
exists for on that venue, and says so first (a ``demo_fault`` status line), so the
viewer sees the fault and then the feed's answer to it. Then random faults follow.

AllTick: a silent stall, a drop without a close frame, one symbol going silent, ghost
data after an unsubscribe, malformed frames, lost acks and a rate-limit kick.

Tradovate: a silent stall (stale, reconnect, re-authorize, resubscribe), a 10 s penalty
ticket waited out, a drop without a close frame, a 429, a ``shutdown`` for Maintenance
(reconnect), one symbol going silent and malformed frames. Its random faults leave
out the quota shutdowns (``ConnectionQuotaReached``, ``IPQuotaReached``): those stop a
feed for good, which is right for a feed and wrong for a demo.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from .._feed import Feed
from .._values import BOOK
from ..sim import Simulator
from ..sim._faults import TRADOVATE_RANDOM_MENU
from ..venues import AllTick, Tradovate, Venue
from .feed_options import symbols_of

DEMO_TOKEN = "demo-token"

#: ``say(fault, message)``: tell the viewer what the exchange is about to do.
Say = Callable[[str, str], None]
Script = Callable[[Simulator, Feed, Say, float, int], Awaitable[None]]


@attrs.frozen
class DemoVenue:
    """One venue of the demo: its defaults and its script."""

    name: str
    title: str
    symbols: str
    book_symbols: str
    stale_after: float
    symbol_stale_after: float
    make: Callable[[str], Venue]  # the simulator's URL -> the venue
    script: Script


async def _alltick_script(
    sim: Simulator, feed: Feed, say: Say, random_every: float, seed: int
) -> None:
    symbols = symbols_of(ALLTICK.symbols)
    start = trio.current_time()
    await trio.sleep_until(start + 6.0)
    say("stall", "the exchange goes silent, socket open (false-alive)")
    sim.faults.stall(8.0)
    await trio.sleep_until(start + 16.0)
    say("drop", "the exchange drops TCP without a close frame")
    sim.faults.drop()
    await trio.sleep_until(start + 24.0)
    say("silence", f"{symbols[2]} alone goes silent while others flow")
    sim.faults.silence_symbol(symbols[2], 6.0)
    await trio.sleep_until(start + 32.0)
    say("ghost", f"we unsubscribe {symbols[1]}; the exchange keeps sending it")
    sim.faults.ghost([symbols[1]], duration=7.0)
    feed.unsubscribe(symbols[1])
    await trio.sleep_until(start + 40.0)
    feed.subscribe(symbols[1])
    say("malformed", "the exchange sends garbage frames")
    sim.faults.malformed(3)
    await trio.sleep_until(start + 46.0)
    say("lose_acks", "the exchange swallows the next answers")
    sim.faults.lose_acks(2)
    feed.subscribe("SOLUSDT")
    await trio.sleep_until(start + 52.0)
    say("kick", "the exchange kicks us (606)")
    sim.faults.kick()
    if random_every > 0:
        say("random", f"from now on a random fault every ~{random_every:g} s")
        await sim.run_random_faults(random_every)


async def _tradovate_script(
    sim: Simulator, feed: Feed, say: Say, random_every: float, seed: int
) -> None:
    symbols = symbols_of(TRADOVATE.symbols)
    start = trio.current_time()
    await trio.sleep_until(start + 4.0)
    say("stall", "the exchange goes silent, socket open: stale, reconnect, re-authorize")
    # 6.8 s: longer than stale_after (6 s), over before the reconnect (1 s floor) authorizes
    sim.faults.stall(6.8)
    await trio.sleep_until(start + 14.0)
    say("p_ticket", "we subscribe YMZ6; the exchange answers with a 10 s penalty ticket")
    sim.faults.p_ticket(1, p_time=10.0)
    feed.subscribe("YMZ6")
    await trio.sleep_until(start + 27.0)
    say("drop", "the exchange drops TCP without a close frame")
    sim.faults.drop()
    await trio.sleep_until(start + 33.0)
    say("429", f"we subscribe the {symbols[1]} DOM; the exchange answers 429")
    sim.faults.rate_limit_429(1)
    feed.subscribe(symbols[1], kind=BOOK)
    await trio.sleep_until(start + 39.0)
    say("shutdown", "the exchange announces a shutdown for Maintenance and closes")
    sim.faults.shutdown("Maintenance")
    await trio.sleep_until(start + 45.0)
    say("silence", f"{symbols[2]} alone goes silent while others flow")
    sim.faults.silence_symbol(symbols[2], 6.0)
    await trio.sleep_until(start + 53.0)
    say("malformed", "the exchange sends garbage frames")
    sim.faults.malformed(3)
    await trio.sleep_until(start + 58.0)
    if random_every > 0:
        say("random", f"from now on a random fault every ~{random_every:g} s")
        await _random_faults(sim, feed, random_every, seed)


#: Tradovate's random faults without the shutdowns that stop a feed for good.
_ALL_KINDS: Sequence[tuple[str, int]] = TRADOVATE_RANDOM_MENU
_TRADOVATE_DEMO_MENU = tuple(item for item in _ALL_KINDS if item[0] != "shutdown")


async def _random_faults(sim: Simulator, feed: Feed, mean: float, seed: int) -> None:
    rng = random.Random(f"tickactors-demo-{seed}")
    while True:
        await trio.sleep(rng.expovariate(1.0 / mean))
        if rng.random() < 0.1:  # now and then a Maintenance shutdown (the feed reconnects)
            sim.faults.shutdown("Maintenance")
        else:
            sim.faults.inject_random(rng, feed.confirmed(), menu=_TRADOVATE_DEMO_MENU)


ALLTICK = DemoVenue(
    name="alltick",
    title="AllTick",
    symbols="BTCUSDT,ETHUSDT,EURUSD,XAUUSD",
    book_symbols="BTCUSDT",
    stale_after=4.0,
    symbol_stale_after=3.0,
    make=lambda url: AllTick(url=url, token=DEMO_TOKEN),
    script=_alltick_script,
)
TRADOVATE = DemoVenue(
    name="tradovate",
    title="Tradovate",
    symbols="ESZ6,NQZ6,CLF7,GCG7",
    book_symbols="ESZ6",
    stale_after=6.0,
    symbol_stale_after=4.0,
    make=lambda url: Tradovate(url=url, token=DEMO_TOKEN),
    script=_tradovate_script,
)
VENUES: dict[str, DemoVenue] = {v.name: v for v in (ALLTICK, TRADOVATE)}


def say_with(writer: Any) -> Say:
    def say(fault: str, message: str) -> None:
        writer.status("demo_fault", message, fault=fault)

    return say


__all__ = ["ALLTICK", "DEMO_TOKEN", "TRADOVATE", "VENUES", "DemoVenue", "say_with"]
