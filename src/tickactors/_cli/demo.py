"""``python -m tickactors``: the demo a newcomer runs first.

It starts the simulated exchange on loopback (``--venue alltick``, the default, or
``--venue tradovate``), connects a feed to it, and within the first minute makes the
simulator commit every fault the feed exists for on that venue (the scripts are in
:mod:`.demo_scripts`), then random faults. On a terminal it shows a live view of
prices, connection health and events; piped, it writes JSON lines.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from decimal import Decimal
from typing import Any

import trio

from .._arg_types import non_negative_float
from .._feed import Feed
from .._values import BookSnapshot, HealthEvent, MarketData, Quote, Tick
from ..sim import SimConfig, open_simulator
from .demo_scripts import DEMO_TOKEN, VENUES, DemoVenue, say_with
from .feed_options import add_feed_arguments, symbols_error
from .output import JsonLines, Writer
from .run import make_writer, run_feed
from .signals import open_stop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_feed_arguments(parser)
    # None: the venue's demo defaults (see demo_scripts), so recoveries show within a minute
    parser.set_defaults(symbols=None, book_symbols=None)
    parser.add_argument(
        "--venue",
        choices=tuple(VENUES),
        default="alltick",
        help="which simulated exchange the demo runs against (default: alltick)",
    )
    parser.add_argument(
        "--random-faults",
        type=non_negative_float,
        default=12.0,
        metavar="S",
        help="after the scripted faults, one random fault every S seconds on average (0: off)",
    )
    parser.add_argument("--no-script", action="store_true", help="skip the scripted faults")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse through ``parser`` symbols the demo's venue would refuse."""
    problem = symbols_error(args, VENUES[args.venue].make("ws://127.0.0.1:1/").dialect)
    if problem is not None:
        parser.error(problem)


def _with_demo_defaults(args: argparse.Namespace, demo: DemoVenue) -> argparse.Namespace:
    """``args`` with every option left out filled in from the venue's demo defaults."""
    out = argparse.Namespace(**vars(args))
    if out.symbols is None:
        out.symbols = demo.symbols
    if out.book_symbols is None:
        out.book_symbols = demo.book_symbols
    if out.stale_after is None:
        out.stale_after = demo.stale_after
    if out.symbol_stale_after is None:
        out.symbol_stale_after = demo.symbol_stale_after
    return out


async def run_from_args(args: argparse.Namespace) -> int:
    demo = VENUES[args.venue]
    args = _with_demo_defaults(args, demo)
    config = SimConfig(random_faults=0.0, tokens=frozenset({DEMO_TOKEN}))
    seed = args.seed or 0
    async with open_stop() as stop, open_simulator(demo.name, config=config, seed=seed) as sim:
        fmt = args.format or ("live" if sys.stdout.isatty() else "jsonl")
        writer: Writer = LiveView(demo.title) if fmt == "live" else make_writer(fmt)

        def extra(feed: Feed, nursery: trio.Nursery) -> None:
            if not args.no_script:
                say = say_with(writer)
                nursery.start_soon(demo.script, sim, feed, say, args.random_faults, seed)
            if isinstance(writer, LiveView):
                nursery.start_soon(writer.refresh_forever, feed)

        return await run_feed(demo.make(sim.url), args, writer, extra=extra, stop=stop)


_Row = tuple[Decimal | None, Decimal | None, Decimal | None, float, int]


class LiveView:
    """A live terminal view: prices, connection health, the latest events."""

    def __init__(self, title: str = "AllTick") -> None:
        self._title = title
        self._rows: dict[str, _Row] = {}  # symbol -> (bid, offer, last, received at, updates)
        self._books: dict[str, str] = {}
        self._events: deque[str] = deque(maxlen=14)
        self._start = trio.current_time()

    def market(self, batch: list[MarketData]) -> None:
        for item in batch:
            if isinstance(item, BookSnapshot):
                if item.bids and item.asks:
                    self._books[item.symbol] = f"{item.bids[0].price} / {item.asks[0].price}"
                continue
            bid, offer, last, _, count = self._rows.get(item.symbol, (None, None, None, 0.0, 0))
            if isinstance(item, Tick):
                last = item.price
            elif isinstance(item, Quote):  # a part the venue left out keeps its last value
                bid = item.bid if item.bid is not None else bid
                offer = item.offer if item.offer is not None else offer
                last = item.last if item.last is not None else last
            self._rows[item.symbol] = (bid, offer, last, item.received_at, count + 1)

    def event(self, event: HealthEvent) -> None:
        detail = " ".join(f"{k}={v}" for k, v in event.detail.items() if k != "url")
        at = event.time - self._start  # seconds since the demo started, like status lines
        line = f"{at:7.2f}s #{event.connection:<3} {event.event:<15} {event.message} {detail}"
        self._events.append(line[:118])

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        now = trio.current_time() - self._start
        self._events.append(f"{now:7.2f}s --   {event:<15} {message}"[:118])
        if event == "stopped":  # a fatal error has its own line on stderr
            sys.stdout.write(f"{event}: {message}\n")

    async def refresh_forever(self, feed: Feed) -> None:
        while True:
            self.draw(feed)
            await trio.sleep(0.5)

    def draw(self, feed: Feed) -> None:
        now = trio.current_time()
        stats = feed.statistics()
        conn = stats["connection"]
        lines = [
            "\x1b[H\x1b[2J",
            f"tickactors demo: a feed against the simulated {self._title} exchange, "
            "with faults (Ctrl-C ends)\n",
            f"connection #{conn['connection']} {conn['state']:<10}  connects {conn['connects']}"
            f"  updates {conn['ticks_delivered']}  ghosts filtered {conn['ghost_ticks']}"
            f"  bad frames {conn['decode_errors']}\n",
            f"desired {sorted(feed.desired())}  confirmed {sorted(feed.confirmed())}\n\n",
            f"{'symbol':<10} {'bid':>12} {'offer':>12} {'last':>12} {'updates':>8} {'age s':>6}"
            "  book (best bid / ask)\n",
        ]
        for symbol in sorted(set(self._rows) | set(self._books)):
            bid, offer, last, at, count = self._rows.get(symbol, (None, None, None, now, 0))
            age = f"{now - at:6.1f}" if count else f"{'-':>6}"
            lines.append(
                f"{symbol:<10} {_shown(bid):>12} {_shown(offer):>12} {_shown(last):>12}"
                f" {count:>8} {age}  {self._books.get(symbol, '')}\n"
            )
        lines.append("\nevents:\n")
        lines.extend(line + "\n" for line in self._events)
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


def _shown(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


__all__ = ["JsonLines", "add_arguments", "run_from_args"]
