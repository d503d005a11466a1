"""Capture every tick, book and health event to rotating JSON-lines files.

Against the simulator: ``python -m tickactors sim --port 8765``, then
``python examples/jsonl_capture.py --path capture/ticks.jsonl --duration 10``: one JSON
object per line, in the runner's shape (``python -m tickactors run --format jsonl``). A
file cut or closed is renamed beside ``--path`` with its time (``ticks.<UTC time>.jsonl``).
``--url`` (or ``TICKACTORS_URL``) and ``--token`` (or ``TICKACTORS_TOKEN``) point it
elsewhere.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import trio

import tickactors
from tickactors import BOOK
from tickactors.venues import AllTick


async def main(url: str, token: str, path: str) -> None:
    venue = AllTick(url=url, token=token)
    # A new file past 64 MiB or every hour; the sink writes from a thread of its own.
    spec = f"jsonl:{path}?max_bytes=64M&max_seconds=3600"
    async with tickactors.open_jsonl_sink(spec) as sink, tickactors.open_feed(venue) as feed:
        feed.subscribe("BTCUSDT", "ETHUSDT")
        feed.subscribe("BTCUSDT", kind=BOOK)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(capture_events, feed, sink)
            async for batch in feed.batches():  # every kind, as it arrives
                sink.market(batch)  # never waits
                await sink.wait_writable()  # a disk 8 MiB behind holds us here, no more


async def capture_events(feed: tickactors.Feed, sink: tickactors.JsonlSink) -> None:
    async for event in feed.events():
        sink.event(event)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = "ws://127.0.0.1:8765/quote-b-ws-api"
    parser.add_argument("--url", default=os.environ.get("TICKACTORS_URL", default_url))
    parser.add_argument("--token", default=os.environ.get("TICKACTORS_TOKEN", "anything"))
    parser.add_argument("--path", default="capture/ticks.jsonl")
    parser.add_argument("--duration", type=float, default=math.inf, help="seconds, then exit")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> None:
    with trio.move_on_after(args.duration):
        await main(args.url, args.token, args.path)


if __name__ == "__main__":
    try:
        trio.run(run, arguments())
    except tickactors.FeedError as exc:  # SinkError too: a directory that cannot be written
        sys.exit(f"feed failed: {exc}")
    except KeyboardInterrupt:
        pass
