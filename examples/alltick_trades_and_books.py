"""AllTick trades and order books, each kind in a task of its own, and the feed's health.

Against the simulator: ``python -m tickactors sim --port 8765``, then
``python examples/alltick_trades_and_books.py --duration 10``. ``--url`` (or
``TICKACTORS_URL``) and ``--token`` (or ``TICKACTORS_TOKEN``) point it elsewhere.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import trio

import tickactors
from tickactors import BOOK, TRADES
from tickactors.venues import AllTick


async def main(url: str, token: str) -> None:
    # AllTick.MARKETS_URL (forex, crypto, metals) or AllTick.STOCK_URL for the real venue;
    # by default here: the simulator started with `python -m tickactors sim --port 8765`.
    async with tickactors.open_feed(AllTick(url=url, token=token)) as feed:
        feed.subscribe("BTCUSDT", "EURUSD")  # checked now, reconciled later
        feed.subscribe("BTCUSDT", kind=BOOK)  # order book (AllTick 22002 / 22999)
        with trio.fail_after(10):
            await feed.wait_confirmed("BTCUSDT", "EURUSD")  # VenueRejectedError if refused

        async with trio.open_nursery() as nursery:
            nursery.start_soon(print_books, feed)
            nursery.start_soon(watch_health, feed)
            async for tick in feed.ticks(kind=TRADES):  # Tick values, desired symbols only
                print("trade", tick.symbol, tick.price, tick.volume)


async def print_books(feed: tickactors.Feed) -> None:
    async for book in feed.ticks(kind=BOOK):  # BookSnapshot values
        best_bid = book.bids[0].price if book.bids else None
        best_ask = book.asks[0].price if book.asks else None
        print("book", book.symbol, best_bid, best_ask)


async def watch_health(feed: tickactors.Feed) -> None:
    async for event in feed.events():  # connected, stale, reconnecting, ...
        print("event", event.event, event.message, dict(event.detail))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = "ws://127.0.0.1:8765/quote-b-ws-api"
    parser.add_argument("--url", default=os.environ.get("TICKACTORS_URL", default_url))
    parser.add_argument("--token", default=os.environ.get("TICKACTORS_TOKEN", "anything"))
    parser.add_argument("--duration", type=float, default=math.inf, help="seconds, then exit")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    with trio.move_on_after(args.duration):
        await main(args.url, args.token)


if __name__ == "__main__":
    try:
        trio.run(run, arguments())
    except tickactors.FeedError as exc:  # everything the feed raises on purpose
        sys.exit(f"feed failed: {exc}")
    except KeyboardInterrupt:
        pass
