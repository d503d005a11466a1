"""How the runner writes ticks and health events: JSON lines, or a line of text each."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any, Protocol, TextIO

import orjson
import trio

from .._values import BookSnapshot, HealthEvent, MarketData, Quote, Tick


class Writer(Protocol):
    """Where the runner sends ticks, health events and its own status lines."""

    def market(self, batch: list[MarketData]) -> None: ...

    def event(self, event: HealthEvent) -> None: ...

    def status(self, event: str, message: str = "", **detail: Any) -> None: ...


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside a Trio run
        return 0.0


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
        "bids": [[str(level.price), str(level.volume)] for level in item.bids],
        "asks": [[str(level.price), str(level.volume)] for level in item.asks],
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


def dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj, default=_default).decode()


class JsonLines:
    """One JSON object per line on stdout, flushed per batch.

    Times (``received_at``, ``time``) are the feed's clock plus ``clock_offset``:
    the runner sets it so that they are seconds since the epoch.
    """

    def __init__(self, stream: TextIO | None = None, *, clock_offset: float = 0.0) -> None:
        self._stream = stream or sys.stdout
        self._offset = clock_offset

    def market(self, batch: list[MarketData]) -> None:
        offset = self._offset
        self._stream.write("".join(dumps(market_dict(item, offset)) + "\n" for item in batch))
        self._stream.flush()

    def event(self, event: HealthEvent) -> None:
        line = event.to_dict()
        line["time"] = round(event.time + self._offset, 6)
        self._stream.write(dumps(line) + "\n")
        self._stream.flush()

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        """The runner's own status line, shaped like a feed's health event."""
        detail = {"time": round(_now() + self._offset, 6), "connection": 0, **detail}
        self._stream.write(
            dumps({"kind": "status", "event": event, "message": message, **detail}) + "\n"
        )
        self._stream.flush()


def _printable(value: object) -> str:
    """``value`` as text, control characters escaped: what a venue sent (a ghost's code,
    a close reason, a bad frame) must not drive the user's terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TextLines:
    """A human-readable line per tick and per event."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def market(self, batch: list[MarketData]) -> None:
        lines = []
        for item in batch:
            if isinstance(item, Tick):
                lines.append(f"tick  {item.symbol:<12} {item.price} x {item.volume}\n")
            elif isinstance(item, Quote):
                bid = "-" if item.bid is None else item.bid
                offer = "-" if item.offer is None else item.offer
                last = "-" if item.last is None else item.last
                lines.append(
                    f"quote {item.symbol:<12} {bid} / {offer} last {last} x {item.last_size}\n"
                )
            else:
                bid = item.bids[0].price if item.bids else "-"
                ask = item.asks[0].price if item.asks else "-"
                lines.append(f"book  {item.symbol:<12} {bid} / {ask}\n")
        self._stream.write("".join(lines))
        self._stream.flush()

    def event(self, event: HealthEvent) -> None:
        detail = " ".join(f"{k}={_printable(v)}" for k, v in event.detail.items())
        message = _printable(event.message)
        self._stream.write(f"[{event.event}] conn {event.connection} {message} {detail}\n")
        self._stream.flush()

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        extra = " ".join(f"{k}={_printable(v)}" for k, v in detail.items())
        self._stream.write(f"[{event}] {_printable(message)} {extra}\n")
        self._stream.flush()
