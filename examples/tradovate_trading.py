"""A Tradovate trading bot: keep the account in sync, place one order, print what follows.

Against the simulator: ``python -m tickactors sim --venue tradovate --port 8766``, then
``TRADOVATE_USERNAME=me TRADOVATE_PASSWORD=pw TRADOVATE_APP_ID=app TRADOVATE_APP_VERSION=1
TRADOVATE_CID=1 TRADOVATE_SEC=s python examples/tradovate_trading.py --duration 10`` (the
simulator takes any credentials and fills a market order at once). ``--url`` (or
``TICKACTORS_URL``) and ``--rest-url`` (or ``TICKACTORS_REST_URL``) point it elsewhere:
``Tradovate.DEMO_URL`` and ``https://demo.tradovateapi.com/v1`` for Tradovate's demo.
Careful: against a real venue this places a real order (on the demo: a simulated one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import trio

import tickactors
from tickactors import EntityEvent, SyncSnapshot
from tickactors.venues import Tradovate, TradovateCredentials, TradovateTokenSource


async def main(url: str, rest_url: str, symbol: str) -> None:
    credentials = TradovateCredentials.from_env()  # the TRADOVATE_* variables
    # The trading sockets authorize with the access token, not the market-data token.
    source = TradovateTokenSource(rest_url, credentials, which="access")
    venue = Tradovate(url=url, token=source)
    async with source, tickactors.open_feed(venue, sync=True) as feed:
        placed = False
        async for update in feed.account():  # a snapshot per connection, events after it
            if isinstance(update, SyncSnapshot):
                orders = update.entities.get("orders", ())
                positions = update.entities.get("positions", ())
                print("sync", update.user_id, "orders", len(orders), "positions", len(positions))
                if not placed:
                    placed = True
                    await place_one_order(feed, update, symbol)
            else:
                print_event(update)


async def place_one_order(feed: tickactors.Feed, snapshot: SyncSnapshot, symbol: str) -> None:
    account = snapshot.entities["accounts"][0]
    order = {
        "accountSpec": account["name"],
        "accountId": account["id"],
        "action": "Buy",
        "symbol": symbol,
        "orderQty": 1,
        "orderType": "Market",
        "isAutomated": True,
    }
    try:
        answer = await feed.request("order/placeorder", body=order)
    except tickactors.ConnectionLostError:
        # Never sent again: a resent order could be a second order. Whether this one
        # exists, the next snapshot (the next connection's) tells.
        print("order: its connection dropped; the next sync shows whether it exists")
        return
    print("placed", answer.get("orderId"), answer.get("failureText", ""))


def print_event(event: EntityEvent) -> None:
    entity = event.entity
    status = entity.get("ordStatus") or entity.get("execType") or ""
    print("event", event.entity_type, event.event_type, entity.get("id"), status)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    url = os.environ.get("TICKACTORS_URL", "ws://127.0.0.1:8766/v1/websocket")
    rest_url = os.environ.get("TICKACTORS_REST_URL", "http://127.0.0.1:8766/v1")
    parser.add_argument("--url", default=url)
    parser.add_argument("--rest-url", default=rest_url)
    parser.add_argument("--symbol", default="ESZ6", help="the contract to buy one of")
    parser.add_argument("--duration", type=float, default=math.inf, help="seconds, then exit")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    with trio.move_on_after(args.duration):
        await main(args.url, args.rest_url, args.symbol)


if __name__ == "__main__":
    try:
        trio.run(run, arguments())
    except (tickactors.FeedError, ValueError) as exc:  # ValueError: TRADOVATE_* missing
        sys.exit(f"feed failed: {exc}")
    except KeyboardInterrupt:
        pass
