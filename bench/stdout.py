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
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/stdout.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
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
