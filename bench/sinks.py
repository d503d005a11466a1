"""Benchmark: what the sinks cost per tick, on the runner's side and end to end.

``python bench/sinks.py`` (``--json`` for one JSON object; ``--help`` for the knobs).
Needs ``nats-server`` (Debian: ``apt-get install nats-server``) for the NATS rows; it
is started here on 127.0.0.1 with a temporary store, and skipped with a note if absent.

Synthetic AllTick ticks (with ``turnover`` and ``trade_direction``) go in batches of
``--batch`` (the size of a busy feed's hand-off) through, each in a fresh Trio run:

stdout
    the runner's own ``JsonLines`` writer and its writer thread into ``/dev/null``: the
    baseline every run already pays with ``--format jsonl`` (``bench/stdout.py`` has the
    stdout path alone, before and after it moved to a thread).
jsonl
    ``open_jsonl_sink`` into a temporary directory, size rotation at 64 MiB: encoding,
    the hand-off to its writer thread, ``os.write`` of whole lines there, the rotation
    checks (and the fsyncs of the rotations), timed until the thread is done; and the
    bytes on disk per tick.
parquet
    ``open_parquet_sink`` into a temporary directory (needs pyarrow): the hand-off of each
    batch (``pump``: all the feed side waits for), then in its writer thread the columns,
    zstd and the row groups, timed until the sink is closed (every file finished: footer,
    fsync, rename); and the bytes on disk per tick. ``--row-groups 8192,65536`` repeats
    it for each row-group size (rows), ``--zstd-levels 1,3`` for each zstd level.
    Both file sinks are run on the ticks below and again on market-like ones
    (:func:`make_market_batches`), whose bytes on disk are the ones to believe: the
    regular ticks compress far better in Parquet than a market's would.
nats (pump)
    ``open_nats_sink(...).market(batch)`` while the publisher thread runs: the time the
    runner's pump spends per tick handing batches over, which is all the feed side ever
    waits for. Measured with the server up and with nothing listening (every batch then
    overflows the bounded buffer and is dropped and counted: still no wait).
nats (end to end)
    from the first hand-over until every tick is acknowledged by JetStream (the sink's
    close drains it): the publisher's throughput, and the process CPU per tick (both
    threads; the server runs in its own process), with and without ``Nats-Msg-Id``.

All numbers are per tick: microseconds of wall time (``time.perf_counter``) and of
process CPU (``time.process_time``), median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from tickactors import Tick
from tickactors._cli.fd_lines import open_fd_lines
from tickactors._cli.output import JsonLines
from tickactors.sinks import open_jsonl_sink, open_nats_sink, open_parquet_sink

PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def make_batches(ticks: int, batch: int) -> list[list[Tick]]:
    symbols = ("BTCUSDT", "ETHUSDT", "EURUSD", "700.HK")
    items = [
        Tick(
            symbol=symbols[n % 4],
            price=Decimal(f"{50_000 + n % 1000}.{n % 100:02d}"),
            volume=Decimal(f"0.{n % 10_000:04d}"),
            exchange_time=1_795_000_000.0 + n / 1000,
            seq=1_795_000_000_000_000 + n,
            received_at=float(n) / 1000,
            fields={"turnover": f"{n * 3}.125", "trade_direction": n % 3},
        )
        for n in range(ticks)
    ]
    return [items[i : i + batch] for i in range(0, ticks, batch)]


def make_market_batches(ticks: int, batch: int, seed: int = 1) -> list[list[Tick]]:
    """Ticks shaped like a market's, for bytes on disk (the regular ones of
    :func:`make_batches` compress unrealistically well in Parquet): 4 symbols whose
    prices walk by a tick size, random sizes, millisecond exchange times with random
    gaps, received a random 0.2-5 ms later at microsecond resolution, a batch sharing
    its ``received_at``, a sequence per symbol, ``turnover`` = price x volume."""
    rng = random.Random(seed)
    symbols = (("BTCUSDT", "0.01", 65_000), ("ETHUSDT", "0.01", 3_400), ("EURUSD", "0.00001", 1.08))
    symbols += (("700.HK", "0.2", 380),)
    prices = [Decimal(str(start)).quantize(Decimal(step)) for _, step, start in symbols]
    seqs = [rng.randrange(10**12) for _ in symbols]
    clock = 1_795_000_000_000  # ms
    out: list[list[Tick]] = []
    for _ in range(0, ticks, batch):
        clock += rng.randrange(1, 40)
        received = round((clock + rng.uniform(0.2, 5.0)) / 1000, 6) - 1e9
        items = []
        for _ in range(batch):
            clock += rng.choice((0, 0, 1, 1, 2, 5))
            k = rng.randrange(len(symbols))
            symbol, step, _ = symbols[k]
            prices[k] += Decimal(step) * rng.choice((-2, -1, 0, 0, 0, 1, 2))
            volume = Decimal(rng.randrange(1, 50_000)).scaleb(-4)
            seqs[k] += 1
            items.append(
                Tick(
                    symbol=symbol,
                    price=prices[k],
                    volume=volume,
                    exchange_time=clock / 1000,
                    seq=seqs[k],
                    received_at=received,
                    fields={"turnover": prices[k] * volume, "trade_direction": rng.randrange(3)},
                )
            )
        out.append(items)
    return out


def per_tick(seconds: float, ticks: int) -> float:
    return round(seconds / ticks * 1e6, 3)


async def bench_stdout(batches: list[list[Tick]]) -> dict[str, float]:
    """The runner's stdout path (its writer thread included: timed until it is done)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        async with open_fd_lines(devnull, close_timeout=60) as out:
            writer = JsonLines(out, clock_offset=1e9)
            for batch in batches:
                await writer.market(batch)
        return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    finally:
        os.close(devnull)


async def bench_jsonl(batches: list[list[Tick]]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        spec = f"jsonl:{directory}/ticks.jsonl?max_bytes=64M"
        async with open_jsonl_sink(spec, clock_offset=1e9) as sink:
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                sink.market(batch)
                await sink.wait_writable()
            await sink.flush()  # the writer thread's work is the sink's cost
            out = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        out["bytes"] = disk_bytes(directory)
        return out


def disk_bytes(directory: str) -> int:
    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


async def bench_parquet(
    batches: list[list[Tick]], row_group: int, zstd_level: int
) -> dict[str, float]:
    from tickactors.sinks import _parquet_files

    _parquet_files.ZSTD_LEVEL = zstd_level  # the module's constant, read at each file
    with tempfile.TemporaryDirectory() as directory:
        spec = f"parquet:{directory}?row_group={row_group}&max_rows=10000000&max_seconds=86400"
        pump = 0.0
        async with open_parquet_sink(spec, clock_offset=1e9) as sink:
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                t = time.perf_counter()
                sink.market(batch)
                pump += time.perf_counter() - t
                await sink.wait_writable()
        # closed: every row converted, compressed, written, fsynced and renamed
        out = {"pump": pump, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        out["bytes"] = disk_bytes(directory)
        return out


async def bench_stdout_with_nats(url: str, batches: list[list[Tick]]) -> dict[str, float]:
    """The stdout baseline with a NATS sink in the same process: how much the publisher
    thread (sharing the GIL) slows the pump down, counted until the pump is done."""
    ticks = sum(map(len, batches))
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        async with open_fd_lines(devnull) as stdout, open_nats_sink(
            f"{url}?buffer={ticks + 10}", venue="alltick", clock_offset=1e9
        ) as sink:
            writer = JsonLines(stdout, clock_offset=1e9)
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                await writer.market(batch)
                sink.market(batch)
                await trio.lowlevel.checkpoint()
            out = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    finally:
        os.close(devnull)
    return out


async def bench_nats(url: str, batches: list[list[Tick]], **options: str) -> dict[str, float]:
    ticks = sum(map(len, batches))
    query = "&".join(f"{k}={v}" for k, v in {"buffer": str(ticks + 10), **options}.items())
    closed: list[Any] = []
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    pump = 0.0
    async with open_nats_sink(
        f"{url}?{query}", venue="alltick", clock_offset=1e9, emit=closed.append
    ) as sink:
        for batch in batches:
            t = time.perf_counter()
            sink.market(batch)
            pump += time.perf_counter() - t
            await trio.lowlevel.checkpoint()  # a pump yields between batches
    stats = next(e.detail for e in closed if e.event == "sink_closed")
    return {
        "pump": pump,
        "wall": time.perf_counter() - start_wall,
        "cpu": time.process_time() - start_cpu,
        "published": stats["published"].get("tick", 0),
        "dropped": stats["dropped_total"],
    }


def start_nats_server(store: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("nats-server", path=PATH)
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if conn.recv(4).startswith(b"INFO"):
                    return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nats-server did not start within 15 s")


def median_runs(runs: int, once: Callable[[], dict[str, float]]) -> dict[str, float]:
    results = [once() for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/sinks.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--row-groups", default="65536", help="Parquet row-group sizes (rows), comma-separated"
    )
    parser.add_argument("--zstd-levels", default="1", help="Parquet zstd levels, comma-separated")
    parser.add_argument("--no-nats", action="store_true", help="skip the NATS rows")
    args = parser.parse_args(argv)
    batches = make_batches(args.ticks, args.batch)
    n = args.ticks
    rows: dict[str, dict[str, float]] = {}

    def row(name: str, result: dict[str, float]) -> None:
        rows[name] = {
            f"{key}_us_per_tick": per_tick(value, n)
            for key, value in result.items()
            if key in ("wall", "cpu", "pump")
        }
        if "wall" in result and name.startswith("nats end"):
            rows[name]["ticks_per_second"] = round(n / result["wall"])
        for key in ("published", "dropped"):
            if key in result:
                rows[name][key] = int(result[key])
        if "bytes" in result:
            rows[name]["bytes_per_tick"] = round(result["bytes"] / n, 2)
        print(f"{name:<34} {rows[name]}", file=sys.stderr)

    row(
        "stdout JsonLines (baseline)",
        median_runs(args.runs, lambda: trio.run(bench_stdout, batches)),
    )
    market = make_market_batches(args.ticks, args.batch)
    for data, label in ((batches, ""), (market, ", market-like ticks")):
        run = functools.partial(bench_jsonl, data)
        row(f"jsonl sink{label}", median_runs(args.runs, functools.partial(trio.run, run)))
        for level in map(int, args.zstd_levels.split(",")):
            for size in map(int, args.row_groups.split(",")):
                run = functools.partial(bench_parquet, data, size, level)
                row(
                    f"parquet sink, row_group={size}, zstd {level}{label}",
                    median_runs(args.runs, functools.partial(trio.run, run)),
                )
    with tempfile.TemporaryDirectory() as store:
        server = None if args.no_nats else start_nats_server(Path(store))
        if server is None and not args.no_nats:
            print("nats-server not found: NATS rows skipped", file=sys.stderr)
        elif server is None:
            pass
        else:
            process, url = server
            try:
                for name, options in (
                    ("nats end to end (Nats-Msg-Id)", {}),
                    ("nats end to end (dedup=0)", {"dedup": "0"}),
                ):
                    run = functools.partial(bench_nats, url, batches, **options)
                    row(name, median_runs(args.runs, functools.partial(trio.run, run)))
                run = functools.partial(bench_stdout_with_nats, url, batches)
                row(
                    "stdout + nats sink (pump)",
                    median_runs(args.runs, functools.partial(trio.run, run)),
                )
            finally:
                process.terminate()
                process.wait(timeout=10)
    if not args.no_nats:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            nowhere = f"nats://127.0.0.1:{sock.getsockname()[1]}"
        row(
            "nats pump, server unreachable",
            median_runs(
                args.runs,
                functools.partial(
                    trio.run,
                    functools.partial(bench_nats, nowhere, batches, buffer="10000", drain="0.1"),
                ),
            ),
        )
    report = {"ticks": n, "batch": args.batch, "runs": args.runs, "rows": rows}
    if args.json:
        print(json.dumps(report))
    else:
        for name, values in rows.items():
            print(f"{name:<34} " + "  ".join(f"{k}={v}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
