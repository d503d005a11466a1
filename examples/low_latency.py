"""React to each trade as soon as it is read: ``open_feed(on_batch=...)``.

The connection's reader calls ``on_trades`` with every read's trades, in its own step, with
no queue and no consumer task between (the README's "Latency"). The function is plain and
quick: it keeps the last price per symbol and, here, prints the trades that moved it by
more than ``--move`` (a fraction); slow work belongs in a task or a thread. Before it
runs, it freezes what the process holds (``gc.freeze()``) so that full garbage collections
skip it.

Against the simulator: ``python -m tickactors sim --port 8765``, then
``python examples/low_latency.py --duration 10``. ``--url`` (or ``TICKACTORS_URL``) and
``--token`` (or ``TICKACTORS_TOKEN``) point it elsewhere.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
from decimal import Decimal

import trio

import tickactors
from tickactors.venues import AllTick


class Mover:
    """The last price per symbol; says which trades moved it by more than ``move``."""

    def __init__(self, move: Decimal) -> None:
        self.move = move
        self.last: dict[str, Decimal] = {}
        self.ticks = 0
        self.calls = 0

    def on_trades(self, batch: list[tickactors.MarketData]) -> None:
        self.calls += 1
        for tick in batch:
            if not isinstance(tick, tickactors.Tick):
                continue  # only trades are subscribed here
            self.ticks += 1
            before = self.last.get(tick.symbol)
            self.last[tick.symbol] = tick.price
            if before is not None and abs(tick.price - before) > before * self.move:
                print(f"move {tick.symbol} {before} -> {tick.price}")


async def main(url: str, token: str, move: Decimal) -> None:
    mover = Mover(move)
    venue = AllTick(url=url, token=token)
    try:
        async with tickactors.open_feed(venue, on_batch=mover.on_trades) as feed:
            feed.subscribe("BTCUSDT", "ETHUSDT", "EURUSD")
            async for event in feed.events():  # the task's own work: here, the health events
                print(f"event {event.event} {event.message}")
    finally:
        print(f"handled {mover.ticks} trades in {mover.calls} calls")
        for symbol, price in sorted(mover.last.items()):
            print(f"last {symbol} {price}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = "ws://127.0.0.1:8765/quote-b-ws-api"
    parser.add_argument("--url", default=os.environ.get("TICKACTORS_URL", default_url))
    parser.add_argument("--token", default=os.environ.get("TICKACTORS_TOKEN", "anything"))
    parser.add_argument("--move", type=Decimal, default=Decimal("0.0005"), help="a fraction")
    parser.add_argument("--duration", type=float, default=math.inf, help="seconds, then exit")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    with trio.move_on_after(args.duration):
        await main(args.url, args.token, args.move)


if __name__ == "__main__":
    args = arguments()
    # Everything imported so far lives as long as the process: keep it out of full garbage
    # collections, which would otherwise walk it and pause the reader (README, "Pauses").
    gc.freeze()
    try:
        trio.run(run, args)
    except tickactors.FeedError as exc:
        sys.exit(f"feed failed: {exc}")
    except KeyboardInterrupt:
        pass
