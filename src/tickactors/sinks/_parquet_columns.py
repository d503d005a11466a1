"""The Parquet sink's tables: one Arrow schema per stream, and the values turned into columns.

Theory of operation
-------------------
Four tables, one per stream: ``trades`` (:class:`~tickactors.Tick`), ``book``
(:class:`~tickactors.BookSnapshot`), ``quotes`` (:class:`~tickactors.Quote`) and
``events`` (health events and the runner's status lines). ``docs/sinks.md`` has the
schema table; the choices, and why:

Prices and sizes are **strings**: ``str(Decimal)``, the venue's exact decimal text,
the same as the JSON lines'. No Parquet decimal holds every value the dialects accept
(``venues/_dialect.py``): a price lies anywhere in ``[1e-30, 1e30)`` and AllTick sends
up to 64 digits of text, Tradovate's sizes are any double below ``1e30`` (down to
``5e-324``). ``decimal128`` has 38 digits, so a fixed scale either drops the small end
or cannot reach the large one (pyarrow refuses: "would cause data loss"); ``decimal256``
(76 digits) still misses the long ones, and DuckDB reads it as a DOUBLE (lossy). A
decimal column would also lose the venue's exponent (``1.50`` reads back ``1.500...``).
A string loses nothing, compresses well (Parquet's dictionary encoding, then zstd) and
casts in a query: ``price::DECIMAL(18, 8)``, ``price::DOUBLE``.

Times are ``timestamp[ns, UTC]`` holding whole **microseconds**. ``exchange_time`` is
the venue's time (a float of epoch seconds); ``received_at`` (the feed's clock,
``trio.current_time()``) is stored with the sink's ``clock_offset`` added, the offset
to the epoch measured once when the capture starts, as the JSON lines do: a wall-clock
time that a clock step during the run does not move. A double of epoch seconds resolves
about 0.24 µs today, and every source of these times is whole milli- or microseconds
(AllTick sends milliseconds, Tradovate ISO text in microseconds at most), so rounding to
the microsecond gives back exactly the double the feed held (``us / 1e6``), with no
noise in the nanoseconds. An ``exchange_time`` outside what ``timestamp[ns]`` can hold
(1677-09-21 to 2262-04-11, or not finite) is stored as null and its double kept in the
row's ``fields`` JSON under ``"exchange_time"``.

``symbol`` (and an event's ``event`` and ``source``) are dictionary-encoded strings;
``seq`` is ``uint64`` (the dialects accept any sequence number below 2**64);
``fields``/``detail`` hold the value's other entries as a JSON object (Decimals as
their exact strings), null when there are none. Book sides are
``list<struct<price: string, volume: string>>``.

Building a table is columnar: one list comprehension per column over the rows, then
``pa.array`` and ``pyarrow.compute`` for the times, once per group of rows (thousands),
never once per row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._values import BookLevel, BookSnapshot, Quote, Tick

__all__ = [
    "BOOK",
    "EVENTS",
    "KINDS",
    "QUOTES",
    "SCHEMAS",
    "TRADES",
    "EventRow",
    "build",
    "day_of",
    "encodings",
    "micros",
]

TRADES: Final = "trades"
BOOK: Final = "book"
QUOTES: Final = "quotes"
EVENTS: Final = "events"
KINDS: Final = (TRADES, BOOK, QUOTES, EVENTS)

#: microseconds in a day, and the largest |µs| a timestamp[ns] holds
_DAY_US: Final = 86_400_000_000
_MAX_US: Final = (2**63 - 1) // 1000

_STAMP = pa.timestamp("ns", tz="UTC")
_SYMBOL = pa.dictionary(pa.int32(), pa.string())
_LEVEL = pa.struct(
    [pa.field("price", pa.string(), nullable=False), pa.field("volume", pa.string())]
)
_LEVELS = pa.list_(pa.field("item", _LEVEL, nullable=False))

# (time, source, event, connection, message, detail): a health event ("event") or a
# runner's status line ("status"), time on the feed's clock
EventRow = tuple[float, str, str, int, str, Mapping[str, Any]]

SCHEMAS: Final[dict[str, pa.Schema]] = {
    TRADES: pa.schema(
        [
            pa.field("symbol", _SYMBOL, nullable=False),
            pa.field("price", pa.string(), nullable=False),
            pa.field("volume", pa.string()),
            pa.field("exchange_time", _STAMP),
            pa.field("seq", pa.uint64()),
            pa.field("received_at", _STAMP, nullable=False),
            pa.field("fields", pa.string()),
        ]
    ),
    BOOK: pa.schema(
        [
            pa.field("symbol", _SYMBOL, nullable=False),
            pa.field("bids", _LEVELS, nullable=False),
            pa.field("asks", _LEVELS, nullable=False),
            pa.field("exchange_time", _STAMP),
            pa.field("seq", pa.uint64()),
            pa.field("received_at", _STAMP, nullable=False),
            pa.field("fields", pa.string()),
        ]
    ),
    QUOTES: pa.schema(
        [
            pa.field("symbol", _SYMBOL, nullable=False),
            pa.field("contract_id", pa.int64()),
            pa.field("bid", pa.string()),
            pa.field("bid_size", pa.string()),
            pa.field("offer", pa.string()),
            pa.field("offer_size", pa.string()),
            pa.field("last", pa.string()),
            pa.field("last_size", pa.string()),
            pa.field("total_volume", pa.string()),
            pa.field("exchange_time", _STAMP),
            pa.field("received_at", _STAMP, nullable=False),
            pa.field("fields", pa.string()),
        ]
    ),
    EVENTS: pa.schema(
        [
            pa.field("time", _STAMP, nullable=False),
            pa.field("source", _SYMBOL, nullable=False),
            pa.field("event", _SYMBOL, nullable=False),
            pa.field("connection", pa.int64(), nullable=False),
            pa.field("message", pa.string(), nullable=False),
            pa.field("detail", pa.string()),
        ]
    ),
}


#: columns of (nearly) increasing integers: delta-encoded, not dictionary-encoded (the
#: dictionary of unique values is a copy of the column); every other column is dictionary-
#: encoded (Parquet falls back to plain by itself when a column's dictionary grows too big)
_DELTA: Final = frozenset({"exchange_time", "received_at", "seq", "time"})


def encodings(schema: pa.Schema) -> tuple[list[str], dict[str, str]]:
    """``(use_dictionary, column_encoding)`` for ``pq.ParquetWriter``: every leaf column
    (nested ones by their Parquet path) but the :data:`_DELTA` ones gets a dictionary."""
    dictionary: list[str] = []
    delta: dict[str, str] = {}
    for field in schema:
        if field.name in _DELTA:
            delta[field.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_list(field.type):
            item = field.type.value_type
            dictionary.extend(f"{field.name}.list.element.{child.name}" for child in item)
        else:
            dictionary.append(field.name)
    return dictionary, delta


def micros(seconds: float, offset: float = 0.0) -> int:
    """``seconds + offset`` in whole microseconds, as the stored column has it: the double's
    exact value rounded half-even, which is what ``round(x, 6)`` (the JSON lines') gives.

    Not ``round(x * 1e6)``: at 1.7e9 s the product keeps a quarter of a microsecond, and a
    quarter of all values would land on a false tie. The whole seconds and the fraction
    are scaled apart, each exactly (the fraction of a double of epoch seconds is a multiple
    of 2**-22, so its product lands no nearer a half than 2**-16 unless it is one). Exact
    while the whole seconds times 1e6 are below 2**53: up to the year 2255.
    """
    value = seconds + offset
    whole = math.floor(value)
    return whole * 1_000_000 + round((value - whole) * 1e6)


def day_of(seconds: float, offset: float = 0.0) -> int:
    """The UTC day (days since the epoch) of the stored time of ``seconds + offset``."""
    return micros(seconds, offset) // _DAY_US


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    return str(value)  # never refuse a row for an odd extra: keep its text


def _json(value: Mapping[str, Any]) -> str | None:
    if not value:
        return None
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _text(values: Iterable[Decimal | None]) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def _symbols(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string()).dictionary_encode()


def _stamps(values: list[float | None], offset: float = 0.0) -> tuple[pa.Array, list[int]]:
    """Epoch seconds (plus ``offset``) as timestamp[ns, UTC] of whole microseconds, and
    the indices of the values that do not fit (stored as null)."""
    floats = pa.array(values, pa.float64())
    if offset:
        floats = pc.add(floats, offset)
    whole = pc.floor(floats)  # as micros() does, column-wise
    us = pc.add(pc.multiply(whole, 1e6), pc.round(pc.multiply(pc.subtract(floats, whole), 1e6)))
    fits = pc.and_kleene(pc.is_finite(us), pc.less(pc.abs(us), float(_MAX_US)))
    bad: list[int] = []
    if pc.sum(pc.invert(fits)).as_py():  # null-safe: nulls count as neither
        bad = [i for i, ok in enumerate(fits.to_pylist()) if ok is False]
        us = pc.if_else(fits, us, pa.scalar(None, pa.float64()))
    stamps = pc.cast(us, pa.int64()).cast(pa.timestamp("us", tz="UTC")).cast(_STAMP)
    return stamps, bad


def _extras(items: Sequence[Tick | BookSnapshot | Quote], bad: list[int]) -> pa.Array:
    """The ``fields`` column; rows whose exchange_time did not fit keep it there."""
    if not bad:
        return pa.array([_json(item.fields) for item in items], pa.string())
    texts = []
    out_of_range = set(bad)
    for index, item in enumerate(items):
        fields = item.fields
        if index in out_of_range:
            fields = {**fields, "exchange_time": item.exchange_time}
        texts.append(_json(fields))
    return pa.array(texts, pa.string())


def _trades(items: Sequence[Any], offset: float) -> pa.RecordBatch:
    exchange, bad = _stamps([t.exchange_time for t in items])
    received, _ = _stamps([t.received_at for t in items], offset)
    return pa.RecordBatch.from_arrays(
        [
            _symbols([t.symbol for t in items]),
            pa.array([str(t.price) for t in items], pa.string()),
            _text([t.volume for t in items]),
            exchange,
            pa.array([t.seq for t in items], pa.uint64()),
            received,
            _extras(items, bad),
        ],
        schema=SCHEMAS[TRADES],
    )


def _levels(sides: Iterable[tuple[BookLevel, ...]]) -> pa.Array:
    offsets = [0]
    prices: list[str] = []
    volumes: list[str | None] = []
    for side in sides:
        prices.extend([str(level.price) for level in side])
        volumes.extend([None if level.volume is None else str(level.volume) for level in side])
        offsets.append(len(prices))
    values = pa.StructArray.from_arrays(
        [pa.array(prices, pa.string()), pa.array(volumes, pa.string())],
        fields=list(_LEVEL),
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=_LEVELS)


def _books(items: Sequence[Any], offset: float) -> pa.RecordBatch:
    exchange, bad = _stamps([b.exchange_time for b in items])
    received, _ = _stamps([b.received_at for b in items], offset)
    return pa.RecordBatch.from_arrays(
        [
            _symbols([b.symbol for b in items]),
            _levels(b.bids for b in items),
            _levels(b.asks for b in items),
            exchange,
            pa.array([b.seq for b in items], pa.uint64()),
            received,
            _extras(items, bad),
        ],
        schema=SCHEMAS[BOOK],
    )


def _quotes(items: Sequence[Any], offset: float) -> pa.RecordBatch:
    exchange, bad = _stamps([q.exchange_time for q in items])
    received, _ = _stamps([q.received_at for q in items], offset)
    return pa.RecordBatch.from_arrays(
        [
            _symbols([q.symbol for q in items]),
            pa.array([q.contract_id for q in items], pa.int64()),
            _text([q.bid for q in items]),
            _text([q.bid_size for q in items]),
            _text([q.offer for q in items]),
            _text([q.offer_size for q in items]),
            _text([q.last for q in items]),
            _text([q.last_size for q in items]),
            _text([q.total_volume for q in items]),
            exchange,
            received,
            _extras(items, bad),
        ],
        schema=SCHEMAS[QUOTES],
    )


def _events(rows: Sequence[Any], offset: float) -> pa.RecordBatch:
    times, bad = _stamps([row[0] for row in rows], offset)
    if bad:  # a feed clock beyond 2262: not this sink's to invent a time
        raise ValueError("an event time out of the timestamp range")
    return pa.RecordBatch.from_arrays(
        [
            times,
            _symbols([row[1] for row in rows]),
            _symbols([row[2] for row in rows]),
            pa.array([row[3] for row in rows], pa.int64()),
            pa.array([row[4] for row in rows], pa.string()),
            pa.array([_json(row[5]) for row in rows], pa.string()),
        ],
        schema=SCHEMAS[EVENTS],
    )


_BUILDERS: Final[dict[str, Callable[[Sequence[Any], float], pa.RecordBatch]]] = {
    TRADES: _trades,
    BOOK: _books,
    QUOTES: _quotes,
    EVENTS: _events,
}


def build(kind: str, rows: Sequence[Any], offset: float) -> pa.RecordBatch:
    """The rows of one stream (its values, or :data:`EventRow` tuples) as a record batch
    of its schema; ``offset`` is added to ``received_at`` (events: to ``time``)."""
    return _BUILDERS[kind](rows, offset)
