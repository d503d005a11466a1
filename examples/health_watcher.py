"""Watch a feed's health: one line per event, and what the feed counted at the end.

Against the simulator: ``python -m tickactors sim --port 8765 --random-faults 5``, then
``python examples/health_watcher.py --duration 30``: stalls, drops and ghosts come and go,
and each is noticed, repaired and reported. ``--url`` (or ``TICKACTORS_URL``) and
``--token`` (or ``TICKACTORS_TOKEN``) point it elsewhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import trio

import tickactors
from tickactors.venues import AllTick

WORRYING = {"stale", "disconnected", "rejected", "ghost", "gap", "request_timeout"}


async def main(url: str, token: str) -> None:
    venue = AllTick(url=url, token=token)
    async with tickactors.open_feed(venue, stale_after=5.0) as feed:  # a busy market
        feed.subscribe("BTCUSDT", "ETHUSDT", "EURUSD")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, feed)  # data must be consumed, or the feed waits
                await watch(feed)
        finally:
            print("counted", json.dumps(feed.statistics()["events"], sort_keys=True))


async def watch(feed: tickactors.Feed) -> None:
    async for event in feed.events():
        mark = "!" if event.event in WORRYING else " "
        print(f"{mark} {event.time:9.3f} #{event.connection} {event.event}: {event.message}")
        if event.event == "subscribed":
            state = "converged" if feed.is_converged() else "converging"
            print(f"  {state}: confirmed {sorted(feed.confirmed())}")


async def drain(feed: tickactors.Feed) -> None:
    async for batch in feed.batches():
        del batch  # a real consumer would use it


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
    except tickactors.FeedError as exc:
        sys.exit(f"feed failed: {exc}")
    except KeyboardInterrupt:
        pass
