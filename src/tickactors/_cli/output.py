"""How the runner writes ticks, account updates and health events: JSON lines, or a line
of text each."""

from __future__ import annotations

import time
from typing import Any, Protocol, TextIO

import trio

from .._json_lines import (
    account_dict,
    dumps,
    encode_line,
    event_dict,
    market_dict,
    status_dict,
)
from .._values import (
    AccountUpdate,
    EventName,
    HealthEvent,
    MarketData,
    Quote,
    StatusName,
    SyncSnapshot,
    Tick,
)
from .request_outcome import RequestOutcome


class Writer(Protocol):
    """Where the runner sends ticks, health events and its own status lines.

    ``market`` and ``account`` may wait (that is how a slow reader of stdout paces the
    feed: its queue fills behind the waiting pump and the stream's policy applies);
    ``event`` and ``status`` never wait.
    """

    async def market(self, batch: list[MarketData]) -> None: ...

    async def account(self, batch: list[AccountUpdate]) -> None: ...

    def event(self, event: HealthEvent) -> None: ...

    def status(self, event: StatusName, message: str = "", **detail: Any) -> None: ...

    def request_outcome(self, outcome: RequestOutcome) -> None:
        """How a stdin ``request`` ended (``request_outcome.py``); never waits."""


class Lines(Protocol):
    """Where a writer's encoded lines go: :class:`~.fd_lines.FdLines` (stdout, stderr)."""

    @property
    def blocked(self) -> bool: ...

    @property
    def failed(self) -> bool: ...

    async def write(self, data: bytes) -> None: ...

    def write_nowait(self, data: bytes) -> bool: ...


class MemoryLines:
    """Lines kept in memory (tests, benchmarks): never blocked, never full."""

    blocked = False
    failed = False

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data

    def write_nowait(self, data: bytes) -> bool:
        self.data += data
        return True

    def text(self) -> str:
        return self.data.decode()


class StreamLines:
    """Lines to a Python text stream that has no file descriptor (``sys.stdout`` replaced
    by an embedding program or a test's capture): written on the caller's thread, as such
    a stream is in-memory."""

    blocked = False
    failed = False

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    async def write(self, data: bytes) -> None:
        self.write_nowait(data)

    def write_nowait(self, data: bytes) -> bool:
        self._stream.write(data.decode())
        self._stream.flush()
        return True


def wall_clock_offset() -> float:
    """Seconds to add to the feed's clock (``trio.current_time()``) to get epoch seconds."""
    return time.time() - trio.current_time()


def _now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside a Trio run
        return 0.0


class _Lines:
    """What both formats share: lines that must not wait, and what happens when they
    cannot be taken (stdout not read for ``capacity + reserve`` bytes).

    Such a line is dropped and counted; the first drop of a spell says so on stderr, and
    once stdout takes lines again a ``stdout_loss`` status line says how many went. A
    ``gap`` event (the feed dropped data for a slow reader) is repeated on stderr while
    stdout is the one not being read, so a person watching the terminal hears of it.
    """

    def __init__(self, out: Lines, errors: Lines | None) -> None:
        self._out = out
        self._errors = errors
        self.lost_lines = 0
        self._unreported = 0

    def _line(self, data: bytes, *, mirror: str | None = None) -> None:
        out = self._out
        if self._unreported and self._report_loss():
            self._unreported = 0
        if mirror is not None and out.blocked and self._errors is not None:
            self._errors.write_nowait(f"tickactors: {_printable(mirror)}\n".encode())
        if out.write_nowait(data) or out.failed:  # failed: nobody reads (``| head``)
            return
        self.lost_lines += 1
        if not self._unreported and self._errors is not None:
            self._errors.write_nowait(
                b"tickactors: stdout is not being read: status lines are dropped "
                b"(counted; a stdout_loss line follows when it is read again)\n"
            )
        self._unreported += 1

    def _report_loss(self) -> bool:
        return self._out.write_nowait(
            self._format_status(
                StatusName.STDOUT_LOSS,
                "status lines dropped while stdout was not read",
                {"lines": self._unreported, "total": self.lost_lines},
            )
        )

    def _format_status(self, event: StatusName, message: str, detail: dict[str, Any]) -> bytes:
        raise NotImplementedError


class JsonLines(_Lines):
    """One JSON object per line.

    Times (``received_at``, ``time``) are the feed's clock plus ``clock_offset``:
    the runner sets it so that they are seconds since the epoch.
    """

    def __init__(
        self,
        out: Lines,
        *,
        clock_offset: float = 0.0,
        errors: Lines | None = None,
        feed: str | None = None,
    ) -> None:
        super().__init__(out, errors)
        self._offset = self.clock_offset = clock_offset
        #: ``run --config``: the name of the feed whose lines these are (a ``"feed"`` key)
        self.feed = feed

    async def market(self, batch: list[MarketData]) -> None:
        offset = self._offset
        feed = self.feed
        if feed is None:
            lines = [encode_line(market_dict(item, offset)) for item in batch]
        else:
            lines = [encode_line(_labelled(market_dict(item, offset), feed)) for item in batch]
        await self._out.write(b"".join(lines))

    async def account(self, batch: list[AccountUpdate]) -> None:
        """A ``sync`` or ``props`` line per update (``_json_lines.account_dict``)."""
        offset = self._offset
        await self._out.write(b"".join([encode_line(account_dict(item, offset)) for item in batch]))

    def event(self, event: HealthEvent) -> None:
        mirror = _text_event(event) if event.event == EventName.GAP else None
        line = event_dict(event, self._offset)
        if self.feed is not None:
            line["feed"] = self.feed
            mirror = None if mirror is None else f"{self.feed}: {mirror}"
        self._line(encode_line(line), mirror=mirror)

    def status(self, event: StatusName, message: str = "", **detail: Any) -> None:
        """The runner's own status line, shaped like a feed's health event."""
        self._line(self._format_status(event, message, detail))

    def _format_status(self, event: StatusName, message: str, detail: dict[str, Any]) -> bytes:
        line = status_dict(event, message, _now(), self._offset, detail)
        if self.feed is not None:
            line["feed"] = self.feed
        return encode_line(line)

    def request_outcome(self, outcome: RequestOutcome) -> None:
        """Its own kind of line (``answer``, ``request_failed``), offered like a status line."""
        line = outcome.line(_now() + self._offset)
        if self.feed is not None:
            line["feed"] = self.feed
        self._line(encode_line(line))


def _labelled(line: dict[str, Any], feed: str) -> dict[str, Any]:
    line["feed"] = feed
    return line


def _printable(value: object) -> str:
    """``value`` as text, control characters escaped: what a venue sent (a ghost's code,
    a close reason, a bad frame) must not drive the user's terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text_event(event: HealthEvent) -> str:
    detail = " ".join(f"{k}={_printable(v)}" for k, v in event.detail.items())
    return f"[{event.event}] conn {event.connection} {_printable(event.message)} {detail}"


def text_account(item: AccountUpdate) -> str:
    """One account update as a line of text (no newline): a snapshot's counts, or an
    event's entity type, event type and the entity's ``id`` and status, if any."""
    if isinstance(item, SyncSnapshot):
        counts = " ".join(f"{name}={len(items)}" for name, items in item.entities.items() if items)
        return f"sync  user {item.user_id} conn {item.connection} {counts}"
    entity = item.entity
    status = entity.get("ordStatus") or entity.get("execType") or entity.get("status")
    extra = "" if status is None else f" {_printable(status)}"
    return (
        f"props {_printable(item.entity_type)} {_printable(item.event_type)} "
        f"id={_printable(entity.get('id'))}{extra}"
    )


def _text_quote(item: Quote) -> str:
    bid = "-" if item.bid is None else item.bid
    offer = "-" if item.offer is None else item.offer
    last = "-" if item.last is None else item.last
    return f"quote {item.symbol:<12} {bid} / {offer} last {last} x {item.last_size}\n"


class TextLines(_Lines):
    """A human-readable line per tick and per event (``feed``: each starts ``[feed] ``)."""

    def __init__(
        self, out: Lines, *, errors: Lines | None = None, feed: str | None = None
    ) -> None:
        super().__init__(out, errors)
        self.feed = feed
        self._prefix = "" if feed is None else f"[{_printable(feed)}] "

    async def market(self, batch: list[MarketData]) -> None:
        lines = []
        for item in batch:
            if isinstance(item, Tick):
                lines.append(f"tick  {item.symbol:<12} {item.price} x {item.volume}\n")
            elif isinstance(item, Quote):
                lines.append(_text_quote(item))
            else:
                bid = item.bids[0].price if item.bids else "-"
                ask = item.asks[0].price if item.asks else "-"
                lines.append(f"book  {item.symbol:<12} {bid} / {ask}\n")
        if self._prefix:
            lines = [self._prefix + line for line in lines]
        await self._out.write("".join(lines).encode())

    async def account(self, batch: list[AccountUpdate]) -> None:
        await self._out.write("".join(f"{text_account(item)}\n" for item in batch).encode())

    def event(self, event: HealthEvent) -> None:
        text = self._prefix + _text_event(event)
        self._line(f"{text}\n".encode(), mirror=text if event.event == EventName.GAP else None)

    def status(self, event: StatusName, message: str = "", **detail: Any) -> None:
        self._line(self._format_status(event, message, detail))

    def _format_status(self, event: StatusName, message: str, detail: dict[str, Any]) -> bytes:
        extra = " ".join(f"{k}={_printable(v)}" for k, v in detail.items())
        return f"{self._prefix}[{event}] {_printable(message)} {extra}\n".encode()

    def request_outcome(self, outcome: RequestOutcome) -> None:
        detail = outcome.detail()
        if "data" in detail:
            detail["data"] = dumps(detail["data"])
        name = outcome.name  # answer / request_failed
        self._line(self._format_status(name, outcome.message, detail))
