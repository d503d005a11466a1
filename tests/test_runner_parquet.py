"""``python -m tickactors run --sink parquet:DIR`` as a subprocess against the AllTick
simulator: what the runner printed is what the Parquet files hold; a SIGKILL mid-write leaves
only whole files behind once the next run has started.

Real time (a child process); every wait is under ``trio.fail_after``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import trio

from tickactors.sim import SimConfig, open_simulator

from .test_runner import TOKEN, start
from .test_runner_sinks import events, of_kind, read_to_end, sink_stats

SYMBOLS = "BTCUSDT,700.HK,X_Y-Z"
_STANDARD = {"kind", "symbol", "price", "volume", "exchange_time", "seq", "received_at"}


def us(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e6)


def finished(root: Path, kind: str) -> list[Path]:
    return sorted(root.glob(f"{kind}/date=*/part-*.parquet"))


def temporaries(root: Path) -> list[Path]:
    return sorted(root.glob("*/date=*/.part-*.parquet.tmp"))


def trades_read_back(root: Path) -> list[tuple[Any, ...]]:
    """(symbol, price, volume, seq, exchange µs, received µs, extras) of every finished file
    in the order written, read with pyarrow; DuckDB must read the same."""
    out = []
    for path in finished(root, "trades"):
        table = pq.read_table(path, page_checksum_verification=True)
        exchange = table.column("exchange_time").cast(pa.int64()).to_pylist()
        received = table.column("received_at").cast(pa.int64()).to_pylist()
        for row, e, r in zip(table.to_pylist(), exchange, received, strict=True):
            extras = json.loads(row["fields"]) if row["fields"] else {}
            values = (row["symbol"], row["price"], row["volume"], row["seq"])
            out.append((*values, e // 1000, r // 1000, extras))
    rows = duckdb.sql(
        "SELECT symbol, price, volume, seq, epoch_ns(exchange_time) // 1000, "
        "epoch_ns(received_at) // 1000, fields "
        f"FROM read_parquet('{root}/trades/*/*.parquet', hive_partitioning = true, "
        "filename = true, file_row_number = true) ORDER BY filename, file_row_number"
    ).fetchall()
    assert [(*row[:6], json.loads(row[6]) if row[6] else {}) for row in rows] == out
    return out


def printed(tick: dict[str, Any]) -> tuple[Any, ...]:
    extras = {k: v for k, v in tick.items() if k not in _STANDARD}
    return (
        tick["symbol"],
        tick["price"],
        tick["volume"],
        tick["seq"],
        us(tick["exchange_time"]),
        us(tick["received_at"]),
        extras,
    )


async def test_the_files_hold_what_the_runner_printed(tmp_path: Path):
    capture = tmp_path / "capture"
    sink = f"parquet:{capture}?max_rows=40&row_group=8"
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=31) as sim:
        child = await start(
            sim.url,
            *("--symbols", SYMBOLS, "--book-symbols", "BTCUSDT", "--duration", "3"),
            *("--sink", sink),
        )
        async with child:
            lines, code = await read_to_end(child)
    assert code == 0
    ticks = of_kind(lines, "tick")
    assert len(ticks) > 40
    assert trades_read_back(capture) == [printed(t) for t in ticks]

    books = of_kind(lines, "book")
    assert books
    table = pa.concat_tables(pq.read_table(p) for p in finished(capture, "book"))
    assert [
        [[level["price"], level["volume"]] for level in side]
        for row in table.to_pylist()
        for side in (row["bids"], row["asks"])
    ] == [side for book in books for side in (book["bids"], book["asks"])]

    stats = sink_stats(lines, "parquet:")
    assert stats["rows"]["trades"] == len(ticks) and stats["rows"]["book"] == len(books)
    assert stats["lost_rows"] == 0 and stats["files"] == len(events(lines, "sink_rotated"))
    status = [
        line for line in lines if line["kind"] == "status" and line.get("sink") != stats["sink"]
    ]
    captured = duckdb.sql(
        f"SELECT event FROM read_parquet('{capture}/events/*/*.parquet') ORDER BY time"
    ).fetchall()
    # every status line before the last (the final `stopped` comes after the sink closed)
    assert [name for (name,) in captured] == [line["event"] for line in status[:-1]]
    assert not temporaries(capture)


async def test_a_crash_mid_write_leaves_finished_files_whole_and_the_next_start_clears_the_rest(
    tmp_path: Path,
):
    capture = tmp_path / "capture"
    sink = f"parquet:{capture}?max_rows=30&row_group=5&max_seconds=3600"
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=32) as sim:
        child = await start(sim.url, "--symbols", SYMBOLS, "--sink", sink)
        async with child:
            await child.wait_for(lambda o: o.get("event") == "sink_rotated")
            # kill while a file is being written: row groups on disk, no footer yet
            with trio.fail_after(15):
                while not [p for p in temporaries(capture) if p.stat().st_size > 100]:  # noqa: ASYNC110
                    await trio.sleep(0.005)  # another process's file: nothing to wait on
            child.process.send_signal(signal.SIGKILL)
            with trio.fail_after(10):
                await child.process.wait()
        left = temporaries(capture)
        assert left  # the file being written at the kill
        before = {path: path.read_bytes() for path in finished(capture, "trades")}
        assert before
        crashed = trades_read_back(capture)  # every finished file reads, both ways
        assert len(crashed) == 30 * len(before)

        child = await start(sim.url, "--symbols", SYMBOLS, "--duration", "1.5", "--sink", sink)
        async with child:
            lines, code = await read_to_end(child)
    assert code == 0
    repaired = events(lines, "sink_repaired")
    assert sorted(r["file"] for r in repaired) == sorted(map(str, left))
    assert all(r["removed_bytes"] > 0 for r in repaired)
    assert sink_stats(lines, "parquet:")["removed_files"] == len(left)
    assert not temporaries(capture)
    assert all(path.read_bytes() == data for path, data in before.items())  # untouched
    after = trades_read_back(capture)
    assert after[: len(crashed)] == crashed
    assert after[len(crashed) :] == [printed(t) for t in of_kind(lines, "tick")]


async def test_a_bad_parquet_sink_is_a_usage_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = {
        "parquet:x?max_rows=0": "--sink: parquet: max_rows must be a whole number >= 1",
        f"parquet:{blocker}/under": "cannot open",
    }
    for spec, expected in cases.items():
        child = await start("ws://127.0.0.1:9/quote-b-ws-api", "--symbols", "A", "--sink", spec)
        async with child:
            lines, code = await read_to_end(child)
        assert code == 2, spec
        assert lines[-1]["event"] == "error" and expected in lines[-1]["message"], lines
