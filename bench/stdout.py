"""Benchmark: what the runner's stdout path costs per tick, and the two ways to keep it off
the Trio thread.

``python bench/stdout.py`` (``--json`` for one JSON object; ``--help`` for the knobs).

Synthetic AllTick ticks go in batches of ``--batch`` through, each in a fresh Trio run,
into ``/dev/null`` (the cost of the path itself) and into a pipe drained by ``cat`` (a
reader that keeps up):

blocking (before)
    what the runner did until issue 12: encode the batch, ``sys.stdout.write`` and
    ``flush`` on the Trio thread. Fast, and it freezes the process when nobody reads.
thread (now)
    ``JsonLines`` over ``FdLines``: encode on the Trio thread, hand the bytes to the
    writer thread, which writes them (into a pipe: in ``PIPE_BUF`` pieces cut at line
    ends). Timed until the thread has written everything.
fdstream
    the alternative: the same bytes through ``trio.lowlevel.FdStream.send_all`` on the
    Trio thread (non-blocking descriptor). Not chosen: see ``_cli/fd_lines.py``.

All numbers are per tick: microseconds of wall time (``time.perf_counter``) and of
process CPU (``time.process_time``, every thread), median of ``--runs`` runs.

``--pause S`` measures the other half, in real time: the runner's own path (``run_feed``,
JSON lines into a pipe) against the in-process simulator streaming about 40 trades/s and a
book, nobody reading the pipe for ``S`` seconds, then a reader that keeps up. To reach the
feed's queue within seconds, stdout's buffer is 64 KiB here (4 MiB in the runner) and the
feed's ``--buffer`` 500 items: stdout fills first, then the trade lane, then the reader
waits (``block``). A real venue (and the simulator, after 4,096 frames) drops a connection
whose reader waits too long: that is what ``block`` means, and why books conflate. It
reports the longest gap between two heartbeats as the simulator received them while
stdout was blocked, the reconnects and stale verdicts, the trade lane's waits, and how
long after reading resumed the first tick received after that moment reached the reader.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import trio

from tickactors import Tick
from tickactors._cli.fd_lines import open_fd_lines
from tickactors._cli.output import JsonLines
from tickactors._json_lines import dumps, encode_line, market_dict


def make_batches(ticks: int, batch: int) -> list[list[Tick]]:
    symbols = ("BTCUSDT", "ETHUSDT", "EURUSD", "700.HK")
    items = [
        Tick(
            symbols[n % 4],
            Decimal("57298.35") + n % 1000,
            Decimal("0.2553"),
            1_795_297_965.408 + n / 1000,
            1_795_297_965_000_001 + n,
            received_at=100.0 + n / 1000,
            fields={"turnover": Decimal("105539.954625"), "trade_direction": 2},
        )
        for n in range(ticks)
    ]
    return [items[i : i + batch] for i in range(0, ticks, batch)]


def per_tick(seconds: float, ticks: int) -> float:
    return round(seconds / ticks * 1e6, 3)


def timed(run: Callable[[], None]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def blocking(fd: int, batches: list[list[Tick]]) -> None:
    with os.fdopen(os.dup(fd), "w") as stream:  # the old JsonLines.market, as it was
        for batch in batches:
            stream.write("".join(dumps(market_dict(item, 1e9)) + "\n" for item in batch))
            stream.flush()


async def thread(fd: int, batches: list[list[Tick]]) -> None:
    async with open_fd_lines(fd, close_timeout=60) as out:
        writer = JsonLines(out, clock_offset=1e9)
        for batch in batches:
            await writer.market(batch)


async def fdstream(fd: int, batches: list[list[Tick]]) -> None:
    async with trio.lowlevel.FdStream(os.dup(fd)) as stream:
        for batch in batches:
            await stream.send_all(b"".join([encode_line(market_dict(i, 1e9)) for i in batch]))


def into(target: str, once: Callable[[int], None]) -> dict[str, float]:
    """Run ``once(fd)`` with ``fd`` open on ``target``: devnull, or a pipe ``cat`` drains."""
    if target == "devnull":
        fd = os.open(os.devnull, os.O_WRONLY)
        try:
            return timed(lambda: once(fd))
        finally:
            os.close(fd)
    read_end, write_end = os.pipe()
    cat = subprocess.Popen(["cat"], stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)
    try:
        return timed(lambda: once(write_end))
    finally:
        os.close(write_end)
        cat.wait(timeout=60)


async def blocked_reader(pause: float) -> dict[str, Any]:
    from tickactors._cli.run import run_feed
    from tickactors.sim import SimConfig, open_simulator
    from tickactors.venues import AllTick

    config = SimConfig(tokens={"bench"}, tick_interval=0.05)
    options = argparse.Namespace(
        symbols="BTCUSDT,ETHUSDT", book_symbols="BTCUSDT", duration=None, stale_after=None,
        symbol_stale_after=None, seed=1, policy=None, shard=None, sink=None, buffer=500,
    )  # fmt: skip
    read_end, write_end = os.pipe()
    seen: list[tuple[float, bytes]] = []
    feeds: list[Any] = []

    async def read_all(stream: trio.lowlevel.FdStream) -> None:
        while chunk := await stream.receive_some(1 << 20):
            seen.append((trio.current_time(), chunk))

    async with open_simulator("alltick", config=config, seed=5) as sim:
        stdout = open_fd_lines(write_end, close_timeout=1, capacity=64 * 1024)
        async with stdout as out, trio.open_nursery() as n:
            venue = AllTick(url=sim.url, token="bench")
            writer = JsonLines(out)
            n.start_soon(
                lambda: run_feed(venue, options, writer, extra=lambda f, _: feeds.append(f))
            )
            await trio.sleep(pause)
            (conn,) = sim.connections
            stalled = feeds[0].statistics()
            resumed = trio.current_time()
            reading = trio.lowlevel.FdStream(os.dup(read_end))
            n.start_soon(read_all, reading)
            await trio.sleep(5)
            after = feeds[0].statistics()
            n.cancel_scope.cancel()
        await reading.aclose()
    os.close(read_end)
    os.close(write_end)
    beats = [at for at, cmd, _ in conn.requests if cmd == 22000]
    fresh = next(
        at
        for at, chunk in seen
        if any(
            line.get("kind") == "tick" and line["received_at"] >= resumed
            for line in map(json.loads, chunk.split(b"\n")[1:-1])
        )
    )
    return {
        "pause_s": pause,
        "heartbeats": len(beats),
        "longest_heartbeat_gap_s": round(
            max((b - a for a, b in itertools.pairwise(beats)), default=0.0), 3
        ),
        "heartbeat_timeouts": sim.stats.closes.get("heartbeat_timeout", 0),
        "connects": after["connection"]["connects"],
        "stale": after["events"].get("stale", 0),
        "reader_blocked": stalled["queue"]["producer_blocked"],
        "backlog_items": stalled["queue"]["waiting"],
        "dropped_while_blocked": stalled["queue"]["dropped_by_symbol"],
        "fresh_data_after_s": round(fresh - resumed, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/stdout.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--pause", type=float, default=None, metavar="S",
        help="instead: leave the runner's stdout unread for S seconds (real time), then read",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.pause is not None:
        result = trio.run(blocked_reader, args.pause)
        print(json.dumps(result) if args.json else result)
        return 0
    batches = make_batches(args.ticks, args.batch)
    paths: dict[str, Callable[[int], None]] = {
        "blocking (before)": lambda fd: blocking(fd, batches),
        "thread (now)": lambda fd: trio.run(thread, fd, batches),
        "fdstream": lambda fd: trio.run(fdstream, fd, batches),
    }
    rows: dict[str, Any] = {}
    for target in ("devnull", "pipe"):
        for name, once in paths.items():
            runs = [into(target, once) for _ in range(args.runs)]
            row = {
                f"{key}_us_per_tick": per_tick(statistics.median(r[key] for r in runs), args.ticks)
                for key in ("wall", "cpu")
            }
            rows[f"{target}: {name}"] = row
            print(f"{target + ': ' + name:<28} {row}", file=sys.stderr)
    if args.json:
        print(json.dumps({"ticks": args.ticks, "batch": args.batch, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
