"""The demo's venues: what each subscribes, its timings, and its scripted faults.

Each script makes the simulator commit, within the first minute, the faults the feed
exists for on that venue, and says so first (a ``demo_fault`` status line), so the
viewer sees the fault and then the feed's answer to it. Then random faults follow.

The scripts play on the symbols the demo subscribed (the user's ``--symbols`` and
``--book-symbols``, else the venue's defaults; :class:`DemoSymbols` picks which one each
step uses) and subscribe nothing else: a step that needs a request unsubscribes one of
them and subscribes it again, and a step that needs a book is skipped, saying so, when
there is none.

AllTick: a silent stall, a drop without a close frame, one symbol going silent, ghost
data after an unsubscribe, malformed frames, lost acks and a rate-limit kick.

Tradovate: a silent stall (stale, reconnect, re-authorize, resubscribe), a 10 s penalty
ticket waited out, a drop without a close frame, a 429 (on a DOM), a ``shutdown`` for
Maintenance (reconnect), one symbol going silent and malformed frames. Its random faults
leave out the quota shutdowns (``ConnectionQuotaReached``, ``IPQuotaReached``): those
stop a feed for good, which is right for a feed and wrong for a demo.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from .._feed.feed import Feed
from .._values import BOOK, StatusName, StreamKind
from ..sim import Simulator
from ..sim._faults import TRADOVATE_RANDOM_MENU
from ..venues import AllTick, Tradovate, Venue

DEMO_TOKEN = "demo-token"

#: ``say(fault, message)``: tell the viewer what the exchange is about to do.
Say = Callable[[str, str], None]


@attrs.frozen
class DemoSymbols:
    """The symbols the demo subscribed, and which one each scripted step plays on.

    ``main``: the venue's main stream (AllTick trades, Tradovate quotes), ``books``: the
    order books (Tradovate: DOM), in the order given.
    """

    main: tuple[str, ...]
    books: tuple[str, ...] = ()

    @property
    def silenced(self) -> str | None:
        """The symbol that goes silent: the first one (None: nothing subscribed)."""
        return (self.main or self.books or (None,))[0]

    @property
    def played(self) -> tuple[str, StreamKind | None] | None:
        """The symbol the steps unsubscribe and subscribe again (the ghost, the lost acks,
        the penalty ticket), with its kind (None: the main stream): the last of the main
        stream, so another than the silenced one when there are two; a book when there is
        no main stream; None when nothing is subscribed."""
        if self.main:
            return self.main[-1], None
        if self.books:
            return self.books[-1], BOOK
        return None

    @property
    def book(self) -> str | None:
        """The book a step that needs one plays on (None: no book subscribed)."""
        return self.books[0] if self.books else None


Script = Callable[[Simulator, Feed, Say, DemoSymbols, float, int], Awaitable[None]]


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


def _named(symbol: str, kind: StreamKind | None) -> str:
    return symbol if kind is None else f"the {symbol} book"


async def _alltick_script(
    sim: Simulator, feed: Feed, say: Say, symbols: DemoSymbols, random_every: float, seed: int
) -> None:
    silenced, played = symbols.silenced, symbols.played
    start = trio.current_time()
    await trio.sleep_until(start + 6.0)
    say("stall", "the exchange goes silent, socket open (false-alive)")
    sim.faults.stall(8.0)
    await trio.sleep_until(start + 16.0)
    say("drop", "the exchange drops TCP without a close frame")
    sim.faults.drop()
    await trio.sleep_until(start + 24.0)
    if silenced is None:
        say("silence", "skipped: one symbol going silent needs a symbol, and none is subscribed")
    else:
        say("silence", f"{silenced} alone goes silent while others flow")
        sim.faults.silence_symbol(silenced, 6.0)
    await trio.sleep_until(start + 32.0)
    if played is None:
        say("ghost", "skipped: a ghost needs a subscribed symbol, and none is")
    else:
        symbol, kind = played
        say(
            "ghost",
            f"we unsubscribe {_named(symbol, kind)} (for 8 s); the exchange keeps sending it",
        )
        sim.faults.ghost([symbol], duration=7.0, armed_for=8.0)
        feed.unsubscribe(symbol, kind=kind)
    await trio.sleep_until(start + 40.0)
    if played is not None:
        feed.subscribe(played[0], kind=played[1])
    say("malformed", "the exchange sends garbage frames")
    sim.faults.malformed(3)
    if played is not None:  # a request whose answer can go missing: out, then in again
        await trio.sleep_until(start + 45.0)
        feed.unsubscribe(played[0], kind=played[1])
    await trio.sleep_until(start + 46.0)
    if played is None:
        say("lose_acks", "skipped: lost answers need a request, and nothing is subscribed")
    else:
        say(
            "lose_acks",
            f"we subscribe {_named(*played)} again; the exchange swallows the next answers",
        )
        sim.faults.lose_acks(2)
        feed.subscribe(played[0], kind=played[1])
    await trio.sleep_until(start + 52.0)
    say("kick", "the exchange kicks us (606)")
    sim.faults.kick()
    if random_every > 0:
        say("random", f"from now on a random fault every ~{random_every:g} s")
        await sim.run_random_faults(random_every)


async def _tradovate_script(
    sim: Simulator, feed: Feed, say: Say, symbols: DemoSymbols, random_every: float, seed: int
) -> None:
    silenced, played, book = symbols.silenced, symbols.played, symbols.book
    start = trio.current_time()
    await trio.sleep_until(start + 4.0)
    say("stall", "the exchange goes silent, socket open: stale, reconnect, re-authorize")
    # 6.8 s: longer than stale_after (6 s), over before the reconnect (1 s floor) authorizes
    sim.faults.stall(6.8)
    if played is not None:  # a request for the penalty ticket: out, then in again
        await trio.sleep_until(start + 13.0)
        feed.unsubscribe(played[0], kind=played[1])
    await trio.sleep_until(start + 14.0)
    if played is None:
        say("p_ticket", "skipped: a penalty ticket needs a request, and nothing is subscribed")
    else:
        say(
            "p_ticket",
            f"we subscribe {_named(*played)} again; the exchange answers with a 10 s "
            "penalty ticket",
        )
        sim.faults.p_ticket(1, p_time=10.0)
        feed.subscribe(played[0], kind=played[1])
    await trio.sleep_until(start + 27.0)
    say("drop", "the exchange drops TCP without a close frame")
    sim.faults.drop()
    if book is not None:  # a DOM request for the 429: out, then in again
        await trio.sleep_until(start + 32.0)
        feed.unsubscribe(book, kind=BOOK)
    await trio.sleep_until(start + 33.0)
    if book is None:
        say("429", "skipped: the 429 is played on a DOM, and no --book-symbols were given")
    else:
        say("429", f"we subscribe the {book} DOM again; the exchange answers 429")
        sim.faults.rate_limit_429(1)
        feed.subscribe(book, kind=BOOK)
    await trio.sleep_until(start + 39.0)
    say("shutdown", "the exchange announces a shutdown for Maintenance and closes")
    sim.faults.shutdown("Maintenance")
    await trio.sleep_until(start + 45.0)
    if silenced is None:
        say("silence", "skipped: one contract going silent needs one, and none is subscribed")
    else:
        say("silence", f"{silenced} alone goes silent while others flow")
        sim.faults.silence_symbol(silenced, 6.0)
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
        writer.status(StatusName.DEMO_FAULT, message, fault=fault)

    return say


__all__ = [
    "ALLTICK",
    "DEMO_TOKEN",
    "TRADOVATE",
    "VENUES",
    "DemoSymbols",
    "DemoVenue",
    "say_with",
]
