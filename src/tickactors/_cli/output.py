"""How the runner writes ticks and health events: JSON lines, or a line of text each."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

import trio

from .._json_lines import dumps, event_dict, market_dict, status_dict
from .._values import HealthEvent, MarketData, Quote, Tick


class Writer(Protocol):
    """Where the runner sends ticks, health events and its own status lines."""

    def market(self, batch: list[MarketData]) -> None: ...

    def event(self, event: HealthEvent) -> None: ...

    def status(self, event: str, message: str = "", **detail: Any) -> None: ...


def wall_clock_offset() -> float:
    """Seconds to add to the feed's clock (``trio.current_time()``) to get epoch seconds."""
    return time.time() - trio.current_time()


def _now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside a Trio run
        return 0.0


class JsonLines:
    """One JSON object per line on stdout, flushed per batch.

    Times (``received_at``, ``time``) are the feed's clock plus ``clock_offset``:
    the runner sets it so that they are seconds since the epoch.
    """

    def __init__(self, stream: TextIO | None = None, *, clock_offset: float = 0.0) -> None:
        self._stream = stream or sys.stdout
        self._offset = self.clock_offset = clock_offset

    def market(self, batch: list[MarketData]) -> None:
        offset = self._offset
        self._stream.write("".join(dumps(market_dict(item, offset)) + "\n" for item in batch))
        self._stream.flush()

    def event(self, event: HealthEvent) -> None:
        self._stream.write(dumps(event_dict(event, self._offset)) + "\n")
        self._stream.flush()

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        """The runner's own status line, shaped like a feed's health event."""
        line = status_dict(event, message, _now(), self._offset, detail)
        self._stream.write(dumps(line) + "\n")
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
