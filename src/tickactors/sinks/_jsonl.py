"""The JSON-lines sink: every tick, book, quote and health event into rotating files.

Theory of operation
-------------------
The sink is called from the Trio thread (the runner's pump), synchronously, with a batch:
it encodes the batch into whole lines (the runner's JSON shape, ``_json_lines``), asks
its :class:`~tickactors._core.sink_rotation.RotationPolicy` where the batch must be
cut, and appends each piece to the active file with ``os.write``. A cut retires the
active file (fsync, rename to ``<stem>.<UTC stamp>Z<suffix>``, fsync of the directory)
and opens a new one under the original name. A timer task retires an idle file when its
period ends. Closing the sink retires the active file too, so after a clean stop only
retired files remain; an active file found at start is a crash's leftover: its torn
tail, if any, is cut off (``sink_repaired``) and it is retired at once.

The writes block the Trio thread for as long as the kernel takes to copy the bytes to
its page cache (microseconds); an ``fsync`` happens only at a rotation (or after every
batch with ``fsync=batch``). A failed write (disk full) loses the lines of that batch,
counted and reported (``sink_error``); the next batch reopens the file, repairing it.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import trio

from .._core.sink_rotation import RotationPolicy
from .._json_lines import encode_line, event_dict, market_dict, status_dict
from .._values import HealthEvent, MarketData
from ._background import running
from ._events import Emit, SinkError, SinkEvents
from ._files import open_active, retire, write_all
from ._spec import JsonlSpec, parse_sink

__all__ = ["JsonlSink", "open_jsonl_sink"]


class JsonlSink:
    """Rotating JSON-lines files. Open it with :func:`open_jsonl_sink`."""

    def __init__(
        self, spec: JsonlSpec, *, clock_offset: float = 0.0, emit: Emit | None = None
    ) -> None:
        self.spec = spec
        self._offset = clock_offset
        self._events = SinkEvents(spec.display, emit)
        self._deferred: list[tuple[str, str, dict[str, Any]]] | None = None
        self._policy = RotationPolicy(max_bytes=spec.max_bytes, max_seconds=spec.max_seconds)
        self._fd: int | None = None
        self._file_lines = 0
        self._file_bytes = 0
        self._failing = False
        self.lines = 0
        self.bytes = 0
        self.files = 0
        self.repaired_bytes = 0
        self.lost_lines = 0
        self.write_errors = 0

    # -- the Writer interface (what the runner calls) ------------------------------------

    def market(self, batch: Sequence[MarketData]) -> None:
        offset = self._offset
        self._write([encode_line(market_dict(item, offset)) for item in batch])

    def event(self, event: HealthEvent) -> None:
        self._write([encode_line(event_dict(event, self._offset))])

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        line = status_dict(event, message, trio.current_time(), self._offset, detail)
        self._write([encode_line(line)])

    # -- life cycle ----------------------------------------------------------------------

    def open(self) -> None:
        """Open the active file; a leftover of an earlier run is repaired and retired."""
        now = self._now()
        with self._deferring():
            if self._open_file():
                self._retire("start", now)
            self._policy.started(now)

    def close(self) -> None:
        """Retire the active file (if it holds anything) and report ``sink_closed``."""
        with self._deferring():
            if self._fd is not None:
                try:
                    if self._file_bytes:
                        self._retire("close", self._now(), reopen=False)
                    else:  # nothing captured: leave no empty file behind
                        os.close(self._fd)
                        self.spec.path.unlink(missing_ok=True)
                except OSError as exc:
                    self._failed(exc, 0)
                self._fd = None
            self._say("sink_closed", "capture closed", **self.statistics())

    async def rotate_on_time(self) -> None:
        """Retire the active file whenever its period ends (runs until cancelled)."""
        while True:
            deadline = self._policy.next_deadline()
            if deadline is None:
                await trio.sleep_forever()
                return
            await trio.sleep_until(deadline - self._offset)
            now = max(self._now(), deadline)  # woken for the deadline: it has come
            # due() moves the period on either way (no file open after a failed write:
            # the next batch reopens it), so this loop never spins on a past deadline.
            if self._policy.due(now) and self._fd is not None:
                with self._deferring():
                    try:
                        self._retire("time", now)
                    except OSError as exc:
                        self._failed(exc, 0)

    def statistics(self) -> dict[str, Any]:
        return {
            "sink": self.spec.display,
            "lines": self.lines,
            "bytes": self.bytes,
            "files": self.files,
            "repaired_bytes": self.repaired_bytes,
            "lost_lines": self.lost_lines,
            "write_errors": self.write_errors,
        }

    # -- inside --------------------------------------------------------------------------

    def _now(self) -> float:
        return trio.current_time() + self._offset

    def _write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        now = self._now()
        written = 0
        with self._deferring():
            try:
                if self._fd is None:
                    self._policy.started(now, self._open_file())
                start = 0
                for cut in self._policy.cuts([len(line) for line in lines], now):
                    written = self._append(lines, start, cut.index)
                    self._retire(cut.reason, now)
                    start = cut.index
                written = self._append(lines, start, len(lines))
                if self.spec.fsync == "batch" and self._fd is not None:
                    os.fsync(self._fd)
            except OSError as exc:
                self._failed(exc, len(lines) - written)
                return
            if self._failing:
                self._failing = False
                self._say("sink_recovered", "writing again", lost_lines=self.lost_lines)

    def _append(self, lines: list[bytes], start: int, end: int) -> int:
        """Write ``lines[start:end]``; returns ``end`` (how many lines are now written)."""
        if end > start:
            assert self._fd is not None
            data = b"".join(lines[start:end])
            write_all(self._fd, data)
            self._file_lines += end - start
            self._file_bytes += len(data)
            self.lines += end - start
            self.bytes += len(data)
        return end

    def _open_file(self) -> int:
        fd, size, removed = open_active(self.spec.path)
        self._fd = fd
        self._file_lines = 0
        self._file_bytes = size
        if removed:
            self.repaired_bytes += removed
            self._say(
                "sink_repaired",
                "a torn last line (a crash mid-write) was cut off",
                file=str(self.spec.path),
                removed_bytes=removed,
            )
        return size

    def _retire(self, reason: str, now: float, *, reopen: bool = True) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        target = retire(fd, self.spec.path, now)
        self.files += 1
        self._say(
            "sink_rotated",
            f"file closed ({reason})",
            file=str(target),
            reason=reason,
            lines=self._file_lines,
            bytes=self._file_bytes,
        )
        if reopen:
            self._open_file()

    def _failed(self, exc: OSError, lost: int) -> None:
        self.write_errors += 1
        self.lost_lines += lost
        if self._fd is not None:
            with suppress(OSError):  # take back what reached the file of the failed piece
                os.ftruncate(self._fd, self._file_bytes)
            with suppress(OSError):
                os.close(self._fd)
            self._fd = None  # the next batch reopens the file (and repairs a torn tail)
        if not self._failing:
            self._failing = True
            self._say("sink_error", f"write failed: {exc}", lost_lines=lost)

    # Events raised while a batch is half written wait until it is done: the runner hands
    # them to every sink, this one included, and they must not land in the middle.

    def _say(self, event: str, message: str, **detail: Any) -> None:
        if self._deferred is None:
            self._events(event, message, **detail)
        else:
            self._deferred.append((event, message, detail))

    @contextmanager
    def _deferring(self) -> Iterator[None]:
        if self._deferred is not None:  # an outer block flushes
            yield
            return
        self._deferred = []
        try:
            yield
        finally:
            pending, self._deferred = self._deferred, None
            for event, message, detail in pending:
                self._events(event, message, **detail)


@asynccontextmanager
async def open_jsonl_sink(
    spec: JsonlSpec | str,
    *,
    clock_offset: float | None = None,
    emit: Emit | None = None,
) -> AsyncIterator[JsonlSink]:
    """A :class:`JsonlSink` for the ``async with``: ``open_jsonl_sink("jsonl:ticks.jsonl")``.

    ``clock_offset`` is added to the feed's clock for the lines' times and for the
    rotation periods (default: the offset to the epoch, measured now). ``emit`` receives
    the sink's health events (they are logged either way).
    """
    if isinstance(spec, str):
        parsed = parse_sink(spec if spec.startswith("jsonl:") else f"jsonl:{spec}")
        assert isinstance(parsed, JsonlSpec)
        spec = parsed
    if clock_offset is None:
        clock_offset = time.time() - trio.current_time()
    sink = JsonlSink(spec, clock_offset=clock_offset, emit=emit)
    try:
        sink.open()
    except OSError as exc:
        raise SinkError(f"{spec.display}: cannot open it: {exc.strerror or exc}") from exc
    try:
        async with running(sink.rotate_on_time, stop=_nothing):
            yield sink
    finally:
        sink.close()


def _nothing() -> None:
    pass
