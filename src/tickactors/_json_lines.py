"""The JSON form of what a feed hands out: one object per tick, book, quote or health event.

The runner's ``--format jsonl`` (``_cli/output.py``) and the sinks (``tickactors.sinks``)
write the same objects, built here: prices stay exact (decimal strings), times are the
feed's clock plus a ``clock_offset`` (the runner passes the offset to the epoch, so the
lines carry wall-clock seconds).

The user's account (``feed.account()``, a trading socket) has one form too, for stdout,
the JSONL sink and NATS alike (:func:`account_dict`)::

    {"kind":"sync","user_id":N,"connection":C,"time":T,"entities":{"orders":[...],...}}
    {"kind":"props","entity_type":"order","event_type":"Updated","entity":{...},
     "connection":C,"time":T}

The entities are the venue's objects as it sent them (numbers stay JSON numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from ._values import AccountUpdate, BookSnapshot, HealthEvent, MarketData, Quote, SyncSnapshot, Tick


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    if isinstance(value, Mapping):  # an entity or snapshot built from another mapping
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def market_dict(item: MarketData, clock_offset: float = 0.0) -> dict[str, Any]:
    """One tick, book update or quote as the runner prints it. Prices stay exact (strings).

    ``received_at`` is the feed's clock plus ``clock_offset`` (the runner passes the
    offset to the epoch, so the line carries wall-clock seconds).
    """
    if isinstance(item, Tick):
        out: dict[str, Any] = {
            "kind": "tick",
            "symbol": item.symbol,
            "price": str(item.price),
            "volume": None if item.volume is None else str(item.volume),
            "exchange_time": item.exchange_time,
            "seq": item.seq,
            "received_at": round(item.received_at + clock_offset, 6),
        }
        out.update(item.fields)
        return out
    if isinstance(item, Quote):
        return _quote_dict(item, clock_offset)
    assert isinstance(item, BookSnapshot)
    return {
        "kind": "book",
        "symbol": item.symbol,
        "bids": [[str(level.price), _text(level.volume)] for level in item.bids],
        "asks": [[str(level.price), _text(level.volume)] for level in item.asks],
        "exchange_time": item.exchange_time,
        "seq": item.seq,
        "received_at": round(item.received_at + clock_offset, 6),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _quote_dict(item: Quote, clock_offset: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "quote",
        "symbol": item.symbol,
        "price": _text(item.last),
        "bid": _text(item.bid),
        "bid_size": _text(item.bid_size),
        "offer": _text(item.offer),
        "offer_size": _text(item.offer_size),
        "last_size": _text(item.last_size),
        "total_volume": _text(item.total_volume),
        "contract_id": item.contract_id,
        "exchange_time": item.exchange_time,
        "received_at": round(item.received_at + clock_offset, 6),
    }
    for key, value in item.fields.items():  # the venue's other entries (HighPrice, ...),
        out.setdefault(key, value)  # never in place of ours: an entry named "symbol"
    return out


def account_dict(item: AccountUpdate, clock_offset: float = 0.0) -> dict[str, Any]:
    """A sync snapshot (``"kind": "sync"``) or an entity event (``"kind": "props"``); see the
    module docstring. ``time`` is ``received_at`` plus ``clock_offset``."""
    if isinstance(item, SyncSnapshot):
        return {
            "kind": "sync",
            "user_id": item.user_id,
            "connection": item.connection,
            "time": round(item.received_at + clock_offset, 6),
            "entities": item.entities,
        }
    return {
        "kind": "props",
        "entity_type": item.entity_type,
        "event_type": item.event_type,
        "entity": item.entity,
        "connection": item.connection,
        "time": round(item.received_at + clock_offset, 6),
    }


def event_dict(event: HealthEvent, clock_offset: float = 0.0) -> dict[str, Any]:
    """A health event as a status line: :meth:`HealthEvent.to_dict`, ``time`` offset."""
    line = event.to_dict()
    line["time"] = round(event.time + clock_offset, 6)
    return line


def status_dict(
    event: str, message: str, time: float, clock_offset: float, detail: Mapping[str, Any]
) -> dict[str, Any]:
    """The runner's own status line (``time`` on the feed's clock), shaped like a health event."""
    return {
        "kind": "status",
        "event": event,
        "message": message,
        "time": round(time + clock_offset, 6),
        "connection": 0,
        **detail,
    }


def dumps(obj: dict[str, Any]) -> str:
    """``obj`` as one line of JSON text (no newline)."""
    return orjson.dumps(obj, default=_default).decode()


def encode_line(obj: dict[str, Any]) -> bytes:
    """``obj`` as one line of JSON, UTF-8, ending with ``\\n``."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_APPEND_NEWLINE)


def encode(obj: dict[str, Any]) -> bytes:
    """``obj`` as JSON, UTF-8, no newline (a message payload)."""
    return orjson.dumps(obj, default=_default)
