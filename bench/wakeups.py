"""Instructions per wake-up below full speed: the feed's two deliveries, Trio's floor, picows.

At low rates every frame is a wake-up of its own, and a wake-up's latency follows what it
executes (docs/performance.md, "Below full speed"). This counts it with callgrind, which
counts instructions, not seconds: the same figure on a busy or a quiet host. The replay
server (``bench/_server.py``, its own process, not counted) paces one frame per write at
``--rate`` ticks/s; each contender runs under ``valgrind --tool=callgrind`` for ``--short``
and then ``--long`` seconds, and the difference of the two totals over the difference of
the ticks is the cost per tick with start-up and shutdown cancelled out. User space only:
the kernel's side of ``epoll_wait``, ``read`` and the wake-up is not in the count.

Contenders:

feed
    ``open_feed`` with ``await feed.get_batch()`` in the user's task.
feed_callback
    ``open_feed(on_batch=...)``: the reader calls user code, no consumer task.
trio_framed
    one Trio task on the batched transport: ``receive_many``, no decode (Trio plus our
    framing).
trio_raw
    one Trio task: ``wait_readable`` then ``os.read``; nothing else (Trio's floor).
picows_decode
    the fair peer of ``bench/peers.py`` (picows in asyncio, the same decode and filter).

``python bench/wakeups.py`` (about 3 minutes; needs valgrind) prints one line per
contender; ``--json`` one object. A contender run alone (``--one NAME URL SECONDS``) is
what runs under callgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import DEFAULT_SYMBOLS, TOKEN, start_server, subscribe_request

CONTENDERS = ("feed", "feed_callback", "trio_framed", "trio_raw", "picows_decode")


def _feed(url: str, symbols: list[str], seconds: float, callback: bool) -> int:
    import trio

    import tickactors
    from tickactors.venues import AllTick

    count = 0

    def on_batch(batch: list[tickactors.MarketData]) -> None:
        nonlocal count
        count += len(batch)

    async def main() -> None:
        nonlocal count
        venue = AllTick(url=url, token=TOKEN)
        extra: dict[str, Any] = {"on_batch": on_batch} if callback else {}
        async with tickactors.open_feed(venue, stale_after=600, **extra) as feed:
            feed.subscribe(*symbols)
            with trio.move_on_after(seconds):
                if callback:
                    await trio.sleep_forever()
                while True:
                    count += len(await feed.get_batch())

    trio.run(main)
    return count


def _trio(url: str, symbols: list[str], seconds: float, framed: bool) -> int:
    import trio

    from tickactors import connect_batched
    from tickactors._net.batched import BatchedTransport

    count = 0

    async def main() -> None:
        nonlocal count
        async with trio.open_nursery() as nursery:
            transport = await connect_batched(nursery, f"{url}&token={TOKEN}", None, None, 10)
            assert isinstance(transport, BatchedTransport)
            await transport.send(subscribe_request(symbols))
            with trio.move_on_after(seconds):
                if framed:
                    while True:
                        count += len(await transport.receive_many(128))
                sock = transport._socket
                assert sock is not None
                fd = sock.fileno()
                while True:
                    await trio.lowlevel.wait_readable(fd)
                    if os.read(fd, 65536):
                        count += 1  # one frame per write at these rates
            await transport.aclose(polite=False)

    trio.run(main)
    return count


def _picows(url: str, symbols: list[str], seconds: float) -> int:
    from peers import PEERS

    count = 0

    def on_tick(tick: Any) -> bool:
        nonlocal count
        count += 1
        return False

    async def main() -> None:
        try:
            async with asyncio.timeout(seconds):
                await PEERS["picows_decode"](f"{url}&token={TOKEN}", symbols, on_tick)
        except TimeoutError:
            pass

    asyncio.run(main())
    return count


def one(name: str, url: str, seconds: float) -> int:
    """Run ``name`` against ``url`` for ``seconds``; the ticks (or reads) it counted."""
    symbols = DEFAULT_SYMBOLS.split(",")
    if name in ("feed", "feed_callback"):
        return _feed(url, symbols, seconds, callback=name == "feed_callback")
    if name in ("trio_framed", "trio_raw"):
        return _trio(url, symbols, seconds, framed=name == "trio_framed")
    if name == "picows_decode":
        return _picows(url, symbols, seconds)
    raise SystemExit(f"unknown contender {name!r}; one of {', '.join(CONTENDERS)}")


def counted(name: str, url: str, seconds: float, out: Path) -> tuple[int, int]:
    """(ticks, instructions) of one run of ``name`` under callgrind."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--one",
            name,
            url,
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    ticks = re.search(r"^TICKS (\d+)$", done.stdout, re.M)
    total = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or ticks is None or total is None:
        raise SystemExit(f"{name} under callgrind failed:\n{done.stderr[-2000:]}")
    return int(ticks.group(1)), int(total.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--rate", type=float, default=200.0, help="ticks/s, one per write")
    parser.add_argument("--short", type=float, default=4.0, help="seconds of the short run")
    parser.add_argument("--long", type=float, default=12.0, help="seconds of the long run")
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument(
        "--one", nargs=3, metavar=("NAME", "URL", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        name, url, seconds = args.one
        print(f"TICKS {one(name, url, float(seconds))}", flush=True)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/wakeups.py needs valgrind (Debian: apt-get install valgrind)")
    names = args.only.split(",") if args.only else list(CONTENDERS)
    server = start_server("replay", DEFAULT_SYMBOLS.split(","), 0)
    url = f"{server.url}?rate={args.rate:g}&stamp=1"
    result: dict[str, Any] = {"rate": args.rate, "instructions_per_tick": {}, "ticks": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                t1, i1 = counted(name, url, args.short, Path(tmp) / f"{name}.short")
                t2, i2 = counted(name, url, args.long, Path(tmp) / f"{name}.long")
                per = round((i2 - i1) / (t2 - t1)) if t2 > t1 else None
                result["instructions_per_tick"][name] = per
                result["ticks"][name] = t2 - t1
                print(
                    f"{name:<14} {per:>10,} instructions per tick ({t2 - t1} ticks)",
                    file=sys.stderr,
                )
    finally:
        server.stop()
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
