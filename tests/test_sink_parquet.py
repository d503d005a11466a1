"""The Parquet sink: what the feed delivered is what pyarrow and DuckDB read back, row for row;
rotation by rows, time and date; crash leftovers; write errors; the schema's exactness.

Under the autojump clock, with ``clock_offset`` chosen so that the sink's clock reads exact
epoch seconds. The simulators run in-process (real loopback sockets, virtual time).
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trio

import tickactors
from tickactors import BOOK, QUOTES, BookSnapshot, HealthEvent, Quote, Tick
from tickactors._values import BookLevel
from tickactors.sim import SimConfig, open_simulator
from tickactors.sinks import ParquetSpec, SinkError, SinkSpecError, open_parquet_sink, parse_sink
from tickactors.sinks import _parquet_stream as stream_module
from tickactors.venues import AllTick, Tradovate

DOCS = Path(tickactors.__file__).parents[2] / "docs"
EPOCH = 1_700_000_000.0  # the sink's clock at trio time 0 (2023-11-14T22:13:20Z)
TV_TOKEN = "tv-parquet-token-1f1f"


def offset() -> float:
    return EPOCH - trio.current_time()


# -- what a row must hold, computed here from the values, independently of the sink -------


def us(seconds: float | None, plus: float = 0.0) -> int | None:
    """The double's exact value in microseconds, rounded half-even (as ``round(x, 6)``)."""
    if seconds is None:
        return None
    exact = Decimal(seconds + plus).quantize(Decimal("1e-6"), rounding=ROUND_HALF_EVEN)
    return int(exact.scaleb(6))


def text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def extras(fields: dict[str, Any]) -> dict[str, Any] | None:
    if not fields:
        return None
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()}


def levels(side: Sequence[BookLevel]) -> list[tuple[str, str | None]]:
    return [(str(level.price), text(level.volume)) for level in side]


def expected(item: Tick | BookSnapshot | Quote, plus: float) -> tuple[Any, ...]:
    common = (us(item.exchange_time), us(item.received_at, plus), extras(dict(item.fields)))
    if isinstance(item, Tick):
        return (item.symbol, str(item.price), text(item.volume), item.seq, *common)
    if isinstance(item, BookSnapshot):
        return (item.symbol, levels(item.bids), levels(item.asks), item.seq, *common)
    prices = (item.bid, item.bid_size, item.offer, item.offer_size, item.last, item.last_size)
    return (
        item.symbol,
        item.contract_id,
        *map(text, prices),
        text(item.total_volume),
        *common,
    )


# -- what the files hold, read back two ways ----------------------------------------------

_COLUMNS = {
    "trades": ["symbol", "price", "volume", "seq"],
    "book": ["symbol", "bids", "asks", "seq"],
    "quotes": [
        *("symbol", "contract_id", "bid", "bid_size", "offer", "offer_size", "last"),
        *("last_size", "total_volume"),
    ],
}


def leftovers(root: Path) -> list[Path]:
    return list(root.rglob(".part-*"))


def files_of(root: Path, kind: str) -> list[Path]:
    return sorted(root.glob(f"{kind}/date=*/*.parquet"))


def _row(record: dict[str, Any], kind: str, ns: tuple[int | None, int]) -> tuple[Any, ...]:
    values = [record[name] for name in _COLUMNS[kind]]
    if kind == "book":
        values[1:3] = [[(lv["price"], lv["volume"]) for lv in side] for side in values[1:3]]
    exchange, received = ns
    fields = None if record["fields"] is None else json.loads(record["fields"])
    assert exchange is None or exchange % 1000 == 0  # whole microseconds
    assert received % 1000 == 0
    return (*values, None if exchange is None else exchange // 1000, received // 1000, fields)


def read_pyarrow(root: Path, kind: str) -> list[tuple[Any, ...]]:
    """Every row of every finished file, files in name order (the order they were written)."""
    out = []
    for path in files_of(root, kind):
        table = pq.read_table(path, page_checksum_verification=True)
        assert table.schema.field("exchange_time").type == pa.timestamp("ns", tz="UTC")
        assert pa.types.is_dictionary(table.schema.field("symbol").type)
        exchange = table.column("exchange_time").cast(pa.int64()).to_pylist()
        received = table.column("received_at").cast(pa.int64()).to_pylist()
        for record, e, r in zip(table.to_pylist(), exchange, received, strict=True):
            out.append(_row(record, kind, (e, r)))
    return out


def read_duckdb(root: Path, kind: str) -> list[tuple[Any, ...]]:
    """The same through DuckDB's reader, hive partitions on; checks ``date`` on the way."""
    names = ", ".join(_COLUMNS[kind])
    query = (
        f"SELECT {names}, epoch_ns(exchange_time), epoch_ns(received_at), fields, date "
        f"FROM read_parquet('{root}/{kind}/*/*.parquet', hive_partitioning = true, "
        "filename = true, file_row_number = true) ORDER BY filename, file_row_number"
    )
    relation = duckdb.sql(query)
    out = []
    for values in relation.fetchall():
        record = dict(zip([*_COLUMNS[kind], "e", "r", "fields", "date"], values, strict=True))
        received = datetime.fromtimestamp(record["r"] // 10**9, UTC).date()
        assert record["date"] == received  # the partition is the UTC date of received_at
        out.append(_row(record, kind, (record["e"], record["r"])))
    return out


def assert_read_back(root: Path, kind: str, items: Sequence[Any], plus: float) -> None:
    want = [expected(item, plus) for item in items]
    assert read_pyarrow(root, kind) == want
    assert read_duckdb(root, kind) == want


# -- end to end, against the simulators ---------------------------------------------------


async def test_alltick_trades_and_books_read_back_row_for_row(tmp_path: Path, autojump_clock):
    delivered: list[Any] = []
    events: list[HealthEvent] = []
    config = SimConfig(default_depth=5)
    # files cut by rows and at close only: the first hourly boundary is 2,800 s after EPOCH,
    # far beyond this test's virtual time (the default 300 s period's came 100 s in, and a
    # slow-enough run crossed it)
    spec = f"parquet:{tmp_path}?max_rows=50&row_group=16&max_seconds=3600"
    plus, start = offset(), trio.current_time()
    async with open_simulator("alltick", config=config, seed=21) as sim:
        async with (
            tickactors.open_feed(AllTick(url=sim.url, token="t")) as feed,
            open_parquet_sink(spec, clock_offset=plus, emit=events.append) as sink,
        ):
            feed.subscribe("BTCUSDT", "700.HK", "X_Y-Z")
            feed.subscribe("BTCUSDT", "ETHUSDT", kind=BOOK)
            async for batch in feed.batches():
                delivered.extend(batch)
                sink.market(batch)
                await sink.wait_writable()
                trades = sum(type(item) is Tick for item in delivered)
                if trades >= 120 and len(delivered) - trades >= 60:
                    break
            sink.event(HealthEvent("connected", trio.current_time(), 1, "up", {"url": "u"}))
    trades = [item for item in delivered if type(item) is Tick]
    books = [item for item in delivered if type(item) is BookSnapshot]
    assert any(len(book.bids) > 1 for book in books)
    assert_read_back(tmp_path, "trades", trades, plus)
    assert_read_back(tmp_path, "book", books, plus)
    stats = sink.statistics()
    assert stats["rows"]["trades"] == len(trades) and stats["rows"]["book"] == len(books)
    assert stats["lost_rows"] == 0 and stats["skipped"] == 0
    rotated = [e.detail for e in events if e.event == "sink_rotated"]
    assert trio.current_time() - start < 2800  # the files' hour did not end: no "time" cut
    assert {r["reason"] for r in rotated} == {"rows", "close"}
    assert all(r["rows"] <= 50 for r in rotated)
    assert sorted(r["file"] for r in rotated) == sorted(
        str(p) for kind in ("trades", "book", "events") for p in files_of(tmp_path, kind)
    )
    assert not leftovers(tmp_path)  # closed: every file finished


async def test_tradovate_quotes_read_back_row_for_row(tmp_path: Path, autojump_clock):
    delivered: list[Quote] = []
    plus = offset()
    async with open_simulator("tradovate", config=SimConfig(tokens={TV_TOKEN}), seed=5) as sim:
        async with (
            tickactors.open_feed(Tradovate(url=sim.url, token=TV_TOKEN)) as feed,
            open_parquet_sink(f"parquet:{tmp_path}", clock_offset=plus) as sink,
        ):
            feed.subscribe("ESZ6", "NQZ6")
            async for batch in feed.batches(kind=QUOTES):
                delivered.extend(batch)
                sink.market(batch)
                if len(delivered) >= 80:
                    break
    assert {q.symbol for q in delivered} == {"ESZ6", "NQZ6"}
    assert any(q.last is not None for q in delivered) and any(q.bid for q in delivered)
    assert_read_back(tmp_path, "quotes", delivered, plus)


# -- exactness ----------------------------------------------------------------------------

_LONG = "1." + "0" * 61 + "1"  # 64 characters, AllTick's longest decimal text
_EXTREMES = [
    Decimal("1E-30"),  # MIN_PRICE
    Decimal("9" * 30 + ".5"),  # just under MAX_NUMBER
    Decimal(_LONG),
    Decimal(repr(5e-324)),  # a Tradovate size: any double below 1e30
    Decimal("1.50"),  # the venue's trailing zero
]


def test_no_parquet_decimal_holds_what_the_dialects_accept():
    """Why prices are strings: every decimal128 scale loses one of the extremes, and
    DuckDB reads decimal256 as DOUBLE."""
    for scale in range(0, 39):
        with pytest.raises(pa.ArrowInvalid):
            pa.array(_EXTREMES[:3], pa.decimal128(38, scale))
    for scale in range(0, 77):
        with pytest.raises(pa.ArrowInvalid):
            pa.array(_EXTREMES[:4], pa.decimal256(76, scale))


async def test_extreme_values_come_back_exactly(tmp_path: Path, autojump_clock):
    at = trio.current_time()
    ticks = [
        Tick("E", price, price, exchange_time=t, seq=seq, received_at=at, fields=fields)
        for price, t, seq, fields in zip(
            _EXTREMES,
            [None, 0.0, 1e15, -1e9, 1_700_000_000.123456],  # 1e15 s is past 2262
            [0, 2**64 - 1, None, 2**63, 7],
            [{}, {"turnover": _EXTREMES[1]}, {"a": [1, 2]}, {"x": None}, {"s": {"b", "a"}}],
            strict=True,
        )
    ]
    book = BookSnapshot("B", (BookLevel(Decimal("1E-30"), None),), (), received_at=at)
    plus = offset()
    async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=plus) as sink:
        sink.market([*ticks, book])
    table = pq.read_table(files_of(tmp_path, "trades")[0])
    assert table.column("price").to_pylist() == [str(d) for d in _EXTREMES]
    assert [Decimal(v) for v in table.column("volume").to_pylist()] == _EXTREMES
    assert table.column("seq").to_pylist() == [0, 2**64 - 1, None, 2**63, 7]
    stamps = table.column("exchange_time").cast(pa.int64()).to_pylist()
    assert stamps == [None, 0, None, -(10**18), 1_700_000_000_123_456_000]
    assert stamps[4] // 1000 / 1e6 == 1_700_000_000.123456  # the double, exactly

    fields = [None if f is None else json.loads(f) for f in table.column("fields").to_pylist()]
    assert fields == [
        None,
        {"turnover": str(_EXTREMES[1])},
        {"a": [1, 2], "exchange_time": 1e15},  # out of timestamp range: kept here
        {"x": None},
        {"s": ["a", "b"]},
    ]
    assert read_pyarrow(tmp_path, "book") == [expected(book, plus)]
    prices = duckdb.sql(
        f"SELECT price FROM read_parquet('{tmp_path}/trades/*/*.parquet') "
        "WHERE TRY_CAST(price AS DECIMAL(38, 30)) = 1e-30"  # the others do not fit in it
    ).fetchall()
    assert prices == [("1E-30",)]


def test_microseconds_are_the_doubles_exact_value_rounded_not_a_rounded_product():
    from tickactors.sinks._parquet_columns import micros

    value = 1_700_000_000.0 + 2**-22 * 6  # 1700000000.000001430..., its product by 1e6
    assert value * 1e6 % 1 == 0.5  # rounds to a false tie, which half-even takes up
    assert micros(value) == us(value) == 1_700_000_000_000_001 != round(value * 1e6)
    rng = random.Random(7)
    values = [1.7e9 + rng.random() * 1e8 for _ in range(20_000)] + [-1.5, 0.0, 1e-7]
    stamps = pq_stamps(values)
    assert stamps == [us(v) for v in values] == [micros(v) for v in values]


def pq_stamps(values: list[float]) -> list[int]:
    from tickactors.sinks._parquet_columns import _stamps

    column, bad = _stamps(values)
    assert not bad
    return [ns // 1000 for ns in column.cast(pa.int64()).to_pylist()]


# -- rotation -----------------------------------------------------------------------------


def tick(n: int) -> Tick:
    return Tick("700.HK", Decimal(f"{n}.10"), Decimal(1), seq=n, received_at=trio.current_time())


async def test_time_rotation_at_the_period_boundaries_and_an_idle_file_on_time(
    tmp_path: Path, autojump_clock
):
    events: list[HealthEvent] = []
    start = trio.current_time()
    spec = f"parquet:{tmp_path}?max_seconds=60"
    async with open_parquet_sink(spec, clock_offset=offset(), emit=events.append) as sink:
        sink.market([tick(0)])  # at 22:13:20 UTC: this minute's file ends at 22:14:00
        await trio.sleep(19.5)
        sink.market([tick(1)])
        for n in range(2, 100):
            await trio.sleep(1)
            sink.market([tick(n)])
        await trio.sleep(200)  # idle: finished at 22:16:00, nothing after
    rotated = [e for e in events if e.event == "sink_rotated"]
    assert [e.time - start for e in rotated] == [40.0, 100.0, 160.0]
    assert [e.detail["reason"] for e in rotated] == ["time", "time", "time"]
    assert [e.detail["rows"] for e in rotated] == [22, 60, 18]
    assert [p.name for p in files_of(tmp_path, "trades")] == [
        "part-20231114T221320.000000Z.parquet",  # named after each file's first row
        "part-20231114T221400.500000Z.parquet",
        "part-20231114T221500.500000Z.parquet",
    ]
    assert [r[3] for r in read_pyarrow(tmp_path, "trades")] == list(range(100))


async def test_a_new_file_and_directory_at_utc_midnight(tmp_path: Path, autojump_clock):
    events: list[HealthEvent] = []
    midnight = 1_700_006_400.0  # 2023-11-15T00:00:00Z
    plus = midnight - 10.5 - trio.current_time()
    async with open_parquet_sink(  # periods of 7000 s: none ends at midnight
        f"parquet:{tmp_path}?max_seconds=7000", clock_offset=plus, emit=events.append
    ) as sink:
        for n in range(20):  # a tick a second from 23:59:49.5 to 00:00:08.5
            sink.market([tick(n)])
            await trio.sleep(1)
        # a batch that straddles midnight on its own (rows received before and after)
        late = Tick("A", Decimal(1), received_at=trio.current_time() - 20)
        sink.market([late, tick(99)])
    assert [p.parent.name for p in files_of(tmp_path, "trades")] == [
        "date=2023-11-14",
        "date=2023-11-14",
        "date=2023-11-15",
        "date=2023-11-15",
    ]
    reasons = [e.detail["reason"] for e in events if e.event == "sink_rotated"]
    assert reasons == ["date", "date", "date", "close"]
    assert [r[3] for r in read_duckdb(tmp_path, "trades")] == [*range(11), None, *range(11, 20), 99]


# -- crashes, locks, failures ---------------------------------------------------------------


async def test_crash_leftovers_are_removed_or_finished_at_start(tmp_path: Path):
    directory = tmp_path / "trades" / "date=2023-11-14"
    directory.mkdir(parents=True)
    torn = directory / ".part-20231114T221320.000000Z.parquet.tmp"
    torn.write_bytes(b"PAR1" + b"\x15\x04" * 500)  # row-group bytes, no footer
    whole = directory / ".part-20231114T221321.000000Z.parquet.tmp"
    pq.write_table(pa.table({"x": [1, 2, 3]}), whole, write_page_checksum=True)
    events: list[HealthEvent] = []
    async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=0.0, emit=events.append):
        pass
    repaired = [e.detail for e in events if e.event == "sink_repaired"]
    assert repaired[0] == {"sink": f"parquet:{tmp_path}", "file": str(torn), "removed_bytes": 1004}
    assert repaired[1]["recovered_rows"] == 3
    assert not torn.exists() and not whole.exists()
    assert pq.read_table(directory / "part-20231114T221321.000000Z.parquet").num_rows == 3


async def test_a_second_capture_into_the_same_directory_is_refused(tmp_path: Path):
    async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=0.0):
        with pytest.raises(SinkError, match="another capture is writing into this directory"):
            async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=0.0):
                pass
    async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=0.0):
        pass  # released at close


async def test_a_failed_write_loses_that_file_only_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock
):
    events: list[HealthEvent] = []
    real = stream_module.PartFile.write
    calls = []

    def write(self: Any, table: pa.Table) -> None:
        calls.append(table.num_rows)
        if len(calls) == 2:  # the first file's second row group
            raise OSError(28, "No space left on device")
        real(self, table)

    monkeypatch.setattr(stream_module.PartFile, "write", write)
    spec = f"parquet:{tmp_path}?max_rows=10&row_group=4"
    async with open_parquet_sink(spec, clock_offset=offset(), emit=events.append) as sink:
        for n in range(0, 40, 2):
            sink.market([tick(n), tick(n + 1)])
            await trio.sleep(0.01)
    names = [e.event for e in events]
    assert names.count("sink_error") == 1 and names.count("sink_recovered") == 1
    error = next(e for e in events if e.event == "sink_error")
    assert "No space left on device" in error.message
    stats = sink.statistics()
    # the first file, whole: its first row group (written) and its second (refused)
    assert stats["write_errors"] == 1 and stats["lost_rows"] == 8
    assert error.detail["lost_rows"] == 8
    assert [r[3] for r in read_pyarrow(tmp_path, "trades")] == list(range(8, 40))
    assert not leftovers(tmp_path)


async def test_events_status_lines_and_values_of_other_kinds(tmp_path: Path, autojump_clock):
    async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=offset()) as sink:
        sink.event(HealthEvent("stale", trio.current_time(), 2, "quiet", {"after": 10.0}))
        await trio.sleep(1.5)
        sink.status("stopped", "bye", sinks=[{"a": Decimal("1.5")}])
        sink.market([object(), tick(1)])  # type: ignore[list-item]  # e.g. an account record
        broken = Tick("700.HK", Decimal(1), received_at=float("nan"))
        sink.market([broken, broken])  # no day to file it under: lost, counted, survived
        sink.market([tick(2)])
    stats = sink.statistics()
    assert stats["skipped"] == 1 and stats["rows"]["trades"] == 2
    assert stats["lost_rows"] == 2 and stats["write_errors"] == 1
    rows = duckdb.sql(
        f"SELECT epoch_ns(time) // 1000, source, event, connection, message, detail "
        f"FROM read_parquet('{tmp_path}/events/*/*.parquet') ORDER BY time"
    ).fetchall()
    assert rows == [
        (1_700_000_000_000_000, "event", "stale", 2, "quiet", '{"after":10.0}'),
        (1_700_000_001_500_000, "status", "stopped", 0, "bye", '{"sinks":[{"a":"1.5"}]}'),
    ]


# -- opening ------------------------------------------------------------------------------


async def test_without_pyarrow_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in list(sys.modules):
        if name.startswith("tickactors.sinks._parquet_") or name.split(".")[0] == "pyarrow":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow: ImportError
    with pytest.raises(SinkError) as caught:
        async with open_parquet_sink(f"parquet:{tmp_path}"):
            pass
    assert "pip install 'tickactors[parquet]'" in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("parquet:", "parquet: needs a directory"),
        ("parquet:d?max_rows=0", "parquet: max_rows must be a whole number >= 1, got '0'"),
        ("parquet:d?row_group=x", "parquet: row_group must be a whole number >= 1"),
        ("parquet:d?max_seconds=-5", "parquet: max_seconds must be a number of seconds > 0"),
        ("parquet:d?max_bytes=1M", "parquet: unknown option 'max_bytes'"),
    ],
)
def test_bad_specs_are_one_clear_line(spec: str, message: str):
    with pytest.raises(SinkSpecError) as caught:
        parse_sink(spec)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_spec_defaults_and_options():
    assert parse_sink("parquet:cap") == ParquetSpec(Path("cap"), 300.0, 1_000_000, 65_536)
    assert parse_sink("parquet:a/b?max_seconds=3600&max_rows=5&row_group=2") == ParquetSpec(
        Path("a/b"), 3600.0, 5, 2
    )


async def test_the_duckdb_query_of_the_docs_runs(tmp_path: Path, autojump_clock):
    """docs/sinks.md's DuckDB example and the README's one-liner, as written, on a capture."""
    docs = (DOCS / "sinks.md").read_text()
    (query,) = re.findall(r"```sql\n(.*?)```", docs, re.S)
    async with open_parquet_sink(f"parquet:{tmp_path}", clock_offset=offset()) as sink:
        at = trio.current_time()
        sink.market([tick(1), tick(2), Tick("A", Decimal("0.5"), received_at=at)])
    rows = duckdb.sql(query.replace("capture/", f"{tmp_path}/")).fetchall()
    day = date(2023, 11, 14)
    assert [row[:4] for row in rows] == [
        (day, "700.HK", 2, Decimal("2.1")),
        (day, "A", 1, Decimal("0.5")),
    ]
    # and the README's one-liner (for its day)
    readme = (DOCS.parent / "README.md").read_text()
    (line,) = re.findall(r'duckdb -c "(.*?)"', readme, re.S)
    line = line.replace("capture/", f"{tmp_path}/").replace("2026-03-01", "2023-11-14")
    assert sorted(duckdb.sql(line).fetchall()) == [("700.HK", 2), ("A", 1)]
