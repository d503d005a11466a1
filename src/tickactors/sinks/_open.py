"""One way to open any sink from its ``--sink`` specification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._events import Emit
from ._jsonl import JsonlSink, open_jsonl_sink
from ._nats import NatsSink, open_nats_sink
from ._parquet import ParquetSink, open_parquet_sink
from ._spec import JsonlSpec, NatsSpec, ParquetSpec, parse_sink

__all__ = ["Sink", "open_sink"]

Sink = JsonlSink | ParquetSink | NatsSink


@asynccontextmanager
async def open_sink(
    spec: JsonlSpec | ParquetSpec | NatsSpec | str,
    *,
    venue: str,
    clock_offset: float | None = None,
    emit: Emit | None = None,
) -> AsyncIterator[Sink]:
    """The sink ``spec`` describes (``"jsonl:PATH?..."``, ``"parquet:DIR?..."`` or
    ``"nats://HOST:PORT?..."``)."""
    if isinstance(spec, str):
        spec = parse_sink(spec)
    if isinstance(spec, JsonlSpec):
        async with open_jsonl_sink(spec, clock_offset=clock_offset, emit=emit) as jsonl:
            yield jsonl
    elif isinstance(spec, ParquetSpec):
        async with open_parquet_sink(spec, clock_offset=clock_offset, emit=emit) as parquet:
            yield parquet
    else:
        async with open_nats_sink(spec, venue=venue, clock_offset=clock_offset, emit=emit) as nats:
            yield nats
