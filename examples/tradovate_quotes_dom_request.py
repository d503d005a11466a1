"""Tradovate quotes and the DOM, a request of your own, and a token renewed over REST.

Against the simulator: ``python -m tickactors sim --venue tradovate --port 8766``, then
``TRADOVATE_USERNAME=me TRADOVATE_PASSWORD=pw TRADOVATE_APP_ID=app TRADOVATE_APP_VERSION=1
TRADOVATE_CID=1 TRADOVATE_SEC=s python examples/tradovate_quotes_dom_request.py
--duration 10`` (the simulator takes any credentials). ``--url`` (or ``TICKACTORS_URL``)
and ``--rest-url`` (or ``TICKACTORS_REST_URL``) point it elsewhere.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import trio

import tickactors
from tickactors import BOOK, QUOTES
from tickactors.venues import Tradovate, TradovateCredentials, TradovateTokenSource


async def main(url: str, rest_url: str) -> None:
    # Tradovate.DEMO_URL and "https://demo.tradovateapi.com/v1" for the real venue; by
    # default here: the simulator (`python -m tickactors sim --venue tradovate --port 8766`).
    credentials = TradovateCredentials.from_env()  # the TRADOVATE_* variables
    source = TradovateTokenSource(rest_url, credentials)  # renews the token before it expires
    async with source, tickactors.open_feed(Tradovate(url=url, token=source)) as feed:
        feed.subscribe("ESZ6", "NQZ6")  # quotes: Tradovate's main stream
        feed.subscribe("ESZ6", kind=BOOK)  # DOM
        contract = await feed.request("contract/find", "name=ESZ6")  # waits for a connection
        print("contract", contract["name"], contract["id"])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(print_dom, feed)
            async for quote in feed.ticks(kind=QUOTES):  # Quote values: bid, offer, last, ...
                print("quote", quote.symbol, quote.bid, quote.offer, quote.price)


async def print_dom(feed: tickactors.Feed) -> None:
    async for book in feed.ticks(kind=BOOK):  # BookSnapshot values
        best_bid = book.bids[0].price if book.bids else None
        best_ask = book.asks[0].price if book.asks else None
        print("dom", book.symbol, best_bid, best_ask)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    url = os.environ.get("TICKACTORS_URL", "ws://127.0.0.1:8766/v1/websocket")
    rest_url = os.environ.get("TICKACTORS_REST_URL", "http://127.0.0.1:8766/v1")
    parser.add_argument("--url", default=url)
    parser.add_argument("--rest-url", default=rest_url)
    parser.add_argument("--duration", type=float, default=math.inf, help="seconds, then exit")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    with trio.move_on_after(args.duration):
        await main(args.url, args.rest_url)


if __name__ == "__main__":
    try:
        trio.run(run, arguments())
    except (tickactors.FeedError, ValueError) as exc:  # ValueError: TRADOVATE_* missing
        sys.exit(f"feed failed: {exc}")
    except KeyboardInterrupt:
        pass
