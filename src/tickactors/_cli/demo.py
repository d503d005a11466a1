"""``python -m tickactors``: the demo a newcomer runs first.

It starts the simulated exchange on loopback, connects a feed to it, and
within the first minute makes the simulator commit every fault the feed
exists for: a silent stall, a drop without a close frame, one symbol going
silent, ghost data after an unsubscribe, malformed frames, lost acks and a
rate-limit kick, then random faults. On a terminal it shows a live view of
prices, connection health and events; piped, it writes JSON lines.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from decimal import Decimal
from typing import Any

import trio

from .._feed import Feed
from .._values import BookSnapshot, HealthEvent, MarketData, Tick
from ..sim import SimConfig, open_simulator
from ..venues import AllTick
from .output import JsonLines, Writer
from .run import add_feed_arguments, make_writer, run_feed, symbols_of

DEMO_SYMBOLS = "BTCUSDT,ETHUSDT,EURUSD,XAUUSD"
DEMO_TOKEN = "demo-token"

#: (seconds after start, what the simulator does, a line for the viewer)
SCRIPT: list[tuple[float, str]] = [
    (6.0, "stall"),
    (16.0, "drop"),
    (24.0, "silence"),
    (32.0, "ghost"),
    (40.0, "malformed"),
    (46.0, "lose_acks"),
    (52.0, "kick"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_feed_arguments(parser)
    parser.set_defaults(
        symbols=DEMO_SYMBOLS,
        book_symbols="BTCUSDT",
        stale_after=4.0,
        symbol_stale_after=3.0,
    )
    parser.add_argument(
        "--random-faults",
        type=float,
        default=12.0,
        metavar="S",
        help="after the scripted faults, one random fault every S seconds on average (0: off)",
    )
    parser.add_argument("--no-script", action="store_true", help="skip the scripted faults")


async def run_from_args(args: argparse.Namespace) -> int:
    config = SimConfig(random_faults=0.0, tokens=frozenset({DEMO_TOKEN}))
    async with open_simulator("alltick", config=config, seed=args.seed or 0) as sim:
        venue = AllTick(url=sim.url, token=DEMO_TOKEN)
        fmt = args.format or ("live" if sys.stdout.isatty() else "jsonl")
        writer: Writer = LiveView() if fmt == "live" else make_writer(fmt)

        def extra(feed: Feed, nursery: trio.Nursery) -> None:
            if not args.no_script:
                nursery.start_soon(_script, sim, feed, writer, args.random_faults)
            if isinstance(writer, LiveView):
                nursery.start_soon(writer.refresh_forever, feed)

        return await run_feed(venue, args, writer, extra=extra)


async def _script(sim: Any, feed: Feed, writer: Any, random_every: float) -> None:
    start = trio.current_time()
    symbols = symbols_of(DEMO_SYMBOLS)
    for at, fault in SCRIPT:
        await trio.sleep_until(start + at)
        if fault == "stall":
            _say(writer, "stall", "the exchange goes silent, socket open (false-alive)")
            sim.faults.stall(8.0)
        elif fault == "drop":
            _say(writer, "drop", "the exchange drops TCP without a close frame")
            sim.faults.drop()
        elif fault == "silence":
            _say(writer, "silence", f"{symbols[2]} alone goes silent while others flow")
            sim.faults.silence_symbol(symbols[2], 6.0)
        elif fault == "ghost":
            _say(writer, "ghost", f"we unsubscribe {symbols[1]}; the exchange keeps sending it")
            sim.faults.ghost([symbols[1]], duration=7.0)
            feed.unsubscribe(symbols[1])
        elif fault == "malformed":
            feed.subscribe(symbols[1])
            _say(writer, "malformed", "the exchange sends garbage frames")
            sim.faults.malformed(3)
        elif fault == "lose_acks":
            _say(writer, "lose_acks", "the exchange swallows the next answers")
            sim.faults.lose_acks(2)
            feed.subscribe("SOLUSDT")
        elif fault == "kick":
            _say(writer, "kick", "the exchange kicks us (606)")
            sim.faults.kick()
    if random_every > 0:
        _say(writer, "random", f"from now on a random fault every ~{random_every:g} s")
        await sim.run_random_faults(random_every)


def _say(writer: Any, fault: str, message: str) -> None:
    writer.status("demo_fault", message, fault=fault)


class LiveView:
    """A live terminal view: prices, connection health, the latest events."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Decimal, float, int]] = {}
        self._books: dict[str, str] = {}
        self._events: deque[str] = deque(maxlen=14)
        self._start = trio.current_time()

    def market(self, batch: list[MarketData]) -> None:
        for item in batch:
            if isinstance(item, Tick):
                _, _, count = self._last.get(item.symbol, (item.price, 0.0, 0))
                self._last[item.symbol] = (item.price, item.received_at, count + 1)
            elif isinstance(item, BookSnapshot) and item.bids and item.asks:
                self._books[item.symbol] = f"{item.bids[0].price} / {item.asks[0].price}"

    def event(self, event: HealthEvent) -> None:
        detail = " ".join(f"{k}={v}" for k, v in event.detail.items() if k != "url")
        self._events.append(
            f"{event.time:8.2f}  #{event.connection:<3} {event.event:<15} {event.message} {detail}"[
                :118
            ]
        )

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        now = trio.current_time() - self._start
        self._events.append(f"{now:7.2f}s --   {event:<15} {message}"[:118])
        if event in ("stopped", "fatal"):
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
            "tickactors demo: a feed against the simulated exchange, with faults (Ctrl-C ends)\n",
            f"connection #{conn['connection']} {conn['state']:<10}  connects {conn['connects']}"
            f"  ticks {conn['ticks_delivered']}  ghosts filtered {conn['ghost_ticks']}"
            f"  bad frames {conn['decode_errors']}\n",
            f"desired {sorted(feed.desired())}  confirmed {sorted(feed.confirmed())}\n\n",
            f"{'symbol':<10} {'last':>14} {'ticks':>7} {'age s':>7}\n",
        ]
        for symbol in sorted(set(self._last) | set(self._books)):
            price, at, count = self._last.get(symbol, (Decimal(0), now, 0))
            book = self._books.get(symbol, "")
            lines.append(f"{symbol:<10} {price!s:>14} {count:>7} {now - at:7.1f}  {book}\n")
        lines.append("\nevents:\n")
        lines.extend(line + "\n" for line in self._events)
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


__all__ = ["JsonLines", "add_arguments", "run_from_args"]
