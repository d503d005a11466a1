"""Sinks: where a runner (or your code) sends every tick and health event besides stdout.

- :func:`open_jsonl_sink` (``--sink jsonl:PATH``): rotating JSON-lines files, safe
  against a crash mid-write;
- :func:`open_parquet_sink` (``--sink parquet:DIR``): typed Parquet files, a table per
  stream, partitioned by date, each file appearing whole by rename (needs
  ``pip install 'tickactors[parquet]'``);
- :func:`open_nats_sink` (``--sink nats://HOST:PORT``): NATS JetStream, from a thread of
  its own behind a bounded buffer, so that a slow or absent server never holds up the feed
  (needs ``pip install 'tickactors[nats]'``).

All take batches with ``market(batch)``, health events with ``event(event)`` and
status lines with ``status(event, message, **detail)``, and never raise on the hot path.
``docs/sinks.md`` describes the options, subjects, guarantees and costs.

>>> async with tickactors.open_feed(venue) as feed, \\
...         open_nats_sink("nats://127.0.0.1:4222", venue="alltick") as sink:  # doctest: +SKIP
...     feed.subscribe("BTCUSDT")
...     async for batch in feed.batches():
...         sink.market(batch)
"""

from __future__ import annotations

from ._events import SinkError as SinkError
from ._jsonl import JsonlSink as JsonlSink
from ._jsonl import open_jsonl_sink as open_jsonl_sink
from ._nats import NatsSink as NatsSink
from ._nats import open_nats_sink as open_nats_sink
from ._open import Sink as Sink
from ._open import open_sink as open_sink
from ._parquet import ParquetSink as ParquetSink
from ._parquet import open_parquet_sink as open_parquet_sink
from ._spec import JsonlSpec as JsonlSpec
from ._spec import NatsSpec as NatsSpec
from ._spec import ParquetSpec as ParquetSpec
from ._spec import SinkSpecError as SinkSpecError
from ._spec import parse_sink as parse_sink
from ._subjects import decode_symbol_token as decode_symbol_token
from ._subjects import encode_symbol_token as encode_symbol_token

__all__ = [
    "JsonlSink",
    "JsonlSpec",
    "NatsSink",
    "NatsSpec",
    "ParquetSink",
    "ParquetSpec",
    "Sink",
    "SinkError",
    "SinkSpecError",
    "decode_symbol_token",
    "encode_symbol_token",
    "open_jsonl_sink",
    "open_nats_sink",
    "open_parquet_sink",
    "open_sink",
    "parse_sink",
]
