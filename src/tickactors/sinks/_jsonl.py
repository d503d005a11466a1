"""The JSON-lines sink: every tick, book, quote, account update and health event into
rotating files.

Theory of operation
-------------------
The sink is called from the Trio thread (the runner's pump), synchronously, with a batch:
it encodes the batch into whole lines (the runner's JSON shape, ``_json_lines``) and
hands them, with the feed's time, to a
:class:`~tickactors.sinks._writer_thread.WriterThread`. Nothing on the Trio thread
touches the file: a disk that stalls (a network mount, a full write-back queue, an
``fsync`` that takes seconds) stalls only that thread. The runner awaits
:meth:`JsonlSink.wait_writable` after each batch, so a file that falls
``buffer`` bytes behind paces the runner's pump exactly like a stdout nobody reads
(the feed's queue and its policies take over); code that never awaits it loses the
batches offered beyond ``2 x buffer`` instead, counted in ``lost_lines`` and announced
(``sink_loss``).

In the writer thread, for each batch, the
:class:`~tickactors._core.sink_rotation.RotationPolicy` says where it must be cut, and
each piece is appended to the active file with ``os.write``. A cut retires the active
file (fsync, rename to ``<stem>.<UTC stamp>Z<suffix>``, fsync of the directory) and
opens a new one under the original name. A timer task on the Trio side hands the thread
a ``time`` command at every period boundary, and the thread retires an idle file whose
period ended. Closing the sink retires the active file too, so after a clean stop only
retired files remain; an active file found at start is a crash's leftover: its torn
tail, if any, is cut off (``sink_repaired``) and it is retired at once.

An ``fsync`` happens only at a rotation (or after every batch with ``fsync=batch``). A
failed write (disk full) loses the lines of that batch, counted and reported
(``sink_error``); the next batch reopens the file, repairing it. The thread's events
reach ``emit`` on the Trio thread, stamped with the feed time of the work that caused
them.
"""

from __future__ import annotations

import functools
import math
import os
import time
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import trio

from .._core.sink_rotation import RotationPolicy
from .._json_lines import account_dict, encode_line, event_dict, market_dict, status_dict
from .._values import AccountUpdate, EventName, HealthEvent, MarketData
from ._background import file_sink_life
from ._events import Emit, SinkEvents
from ._files import open_active, retire, write_all
from ._spec import JsonlSpec, parse_sink
from ._writer_thread import WriterThread

__all__ = ["JsonlSink", "open_jsonl_sink"]

#: bytes of encoded lines the writer thread may fall behind before ``wait_writable`` waits
BUFFER = 8 * 1024 * 1024
#: how long closing waits for the writer thread to finish what is queued
CLOSE_TIMEOUT = 60.0

# What the Trio side hands the writer thread: (what, feed clock, epoch seconds, the lines
# joined, their sizes). One bytes object a batch, not a list of lines: the thread then
# touches one object the Trio thread made, not one per line (objects freed by another
# thread than the one that made them cost a cross-core round trip each).
_Command = tuple[str, float, float, bytes, "array[int]"]
_NO_SIZES: array[int] = array("L")


class JsonlSink:
    """Rotating JSON-lines files. Open it with :func:`open_jsonl_sink`."""

    def __init__(
        self,
        spec: JsonlSpec,
        *,
        clock_offset: float = 0.0,
        emit: Emit | None = None,
        buffer: int = BUFFER,
    ) -> None:
        self.spec = spec
        self._offset = clock_offset
        self._events = SinkEvents(spec.display, emit)
        self._deferred: list[tuple[EventName, str, dict[str, Any]]] | None = None
        self._policy = RotationPolicy(max_bytes=spec.max_bytes, max_seconds=spec.max_seconds)
        self._thread: WriterThread[_Command] = WriterThread(
            self._handle, capacity=buffer, reserve=buffer, name="tickactors-jsonl"
        )
        self._token: trio.lowlevel.TrioToken | None = None
        self._at = 0.0  # the feed's clock at the command the writer thread works on
        self._fd: int | None = None
        self._file_lines = 0
        self._file_bytes = 0
        self._failing = False
        self._refused_lines = 0  # the Trio side's count; the thread keeps the others
        self.lines = 0
        self.bytes = 0
        self.files = 0
        self.repaired_bytes = 0
        self.lost_lines = 0
        self.write_errors = 0

    # -- the Writer interface (what the runner calls, on the Trio thread) ----------------

    def market(self, batch: Sequence[MarketData]) -> None:
        offset = self._offset
        lines = [encode_line(market_dict(item, offset)) for item in batch]
        self._submit(b"".join(lines), array("L", map(len, lines)))

    def account(self, batch: Sequence[AccountUpdate]) -> None:
        """Sync snapshots and entity events (``feed.account_batches()``), a line each."""
        offset = self._offset
        lines = [encode_line(account_dict(item, offset)) for item in batch]
        self._submit(b"".join(lines), array("L", map(len, lines)))

    def event(self, event: HealthEvent) -> None:
        line = encode_line(event_dict(event, self._offset))
        self._submit(line, array("L", (len(line),)))

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        line = status_dict(event, message, trio.current_time(), self._offset, detail)
        data = encode_line(line)
        self._submit(data, array("L", (len(data),)))

    async def wait_writable(self) -> None:
        """Wait while the writer thread is ``buffer`` bytes or more behind."""
        await self._thread.wait_room()

    async def flush(self) -> None:
        """Wait until everything handed over so far is written (or failed)."""
        await self._thread.wait_idle()

    # -- life cycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the active file (a leftover of an earlier run is repaired and retired),
        then start the writer thread."""
        self._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(self._open_at, trio.current_time(), self._now())
        self._thread.start()

    async def close(self) -> None:
        """Write what is queued, retire the active file (if it holds anything) and report
        ``sink_closed``; waits at most ``CLOSE_TIMEOUT`` for a stalled disk."""
        self._thread.put(("close", trio.current_time(), self._now(), b"", _NO_SIZES), 0)
        if not await self._thread.aclose(CLOSE_TIMEOUT):
            self._events(
                EventName.SINK_ERROR,
                f"the file did not take the last {self._thread.abandoned} bytes in "
                f"{CLOSE_TIMEOUT:g} s: left behind",
                lost_bytes=self._thread.abandoned,
            )

    async def rotate_on_time(self) -> None:
        """Hand the writer thread a ``time`` command at every period boundary (runs until
        cancelled); the thread retires the active file if it holds anything."""
        last = -math.inf
        while True:
            # after a boundary, from the boundary itself: the clock read back may fall a
            # rounding error short of it, and the same deadline must not come round again
            deadline = self._policy.end_of_period(max(self._now(), last))
            if deadline is None:
                await trio.sleep_forever()
                return
            await trio.sleep_until(deadline - self._offset)
            last = deadline
            now = max(self._now(), deadline)  # woken for the deadline: it has come
            self._thread.put(("time", trio.current_time(), now, b"", _NO_SIZES), 0)

    def statistics(self) -> dict[str, Any]:
        return {
            "sink": self.spec.display,
            "lines": self.lines,
            "bytes": self.bytes,
            "files": self.files,
            "repaired_bytes": self.repaired_bytes,
            "lost_lines": self.lost_lines + self._refused_lines,
            "write_errors": self.write_errors,
            "writer": self._thread.statistics(),
        }

    def _now(self) -> float:
        return trio.current_time() + self._offset

    def _submit(self, data: bytes, sizes: array[int]) -> None:
        if not sizes:
            return
        clock = trio.current_time()
        command = ("lines", clock, clock + self._offset, data, sizes)
        if self._thread.offer(command, len(data)):
            return
        if self._thread.closing:  # closed: nothing more can be written (counted there)
            return
        first = not self._refused_lines
        self._refused_lines += len(sizes)
        if first:
            self._events(
                EventName.SINK_LOSS,
                "the file is behind by twice its buffer and nobody waits for it "
                "(await wait_writable()): lines dropped",
                lost_lines=self._refused_lines,
            )

    # -- the writer thread ---------------------------------------------------------------

    def _handle(self, commands: list[_Command]) -> None:
        for what, clock, now, data, sizes in commands:
            self._at = clock
            if what == "lines":
                self._write(data, sizes, now)
            elif what == "time":
                self._on_time(now)
            else:
                self._close_at(now)

    def _open_at(self, clock: float, now: float) -> None:
        self._at = clock
        with self._deferring():
            if self._open_file():
                self._retire("start", now)
            self._policy.started(now)

    def _on_time(self, now: float) -> None:
        # due() moves the period on either way (no file open after a failed write: the
        # next batch reopens it), so the timer never has a past deadline to wake for.
        if self._policy.due(now) and self._fd is not None:
            with self._deferring():
                try:
                    self._retire("time", now)
                except OSError as exc:
                    self._failed(exc, 0)

    def _close_at(self, now: float) -> None:
        with self._deferring():
            if self._fd is not None:
                try:
                    if self._file_bytes:
                        self._retire("close", now, reopen=False)
                    else:  # nothing captured: leave no empty file behind
                        os.close(self._fd)
                        self.spec.path.unlink(missing_ok=True)
                except OSError as exc:
                    self._failed(exc, 0)
                self._fd = None
            self._say(EventName.SINK_CLOSED, "capture closed", **self.statistics())

    # -- inside the writer thread ---------------------------------------------------------

    def _write(self, data: bytes, sizes: array[int], now: float) -> None:
        """Append the lines (``data``, of ``sizes``), cutting files where the policy says."""
        written = 0  # lines
        offset = 0  # bytes
        with self._deferring():
            try:
                if self._fd is None:
                    self._policy.started(now, self._open_file())
                for cut in self._policy.cuts(sizes, now):
                    offset = self._append(data, sizes, written, cut.index, offset)
                    written = cut.index
                    self._retire(cut.reason, now)
                self._append(data, sizes, written, len(sizes), offset)
                written = len(sizes)
                if self.spec.fsync == "batch" and self._fd is not None:
                    os.fsync(self._fd)
            except OSError as exc:
                self._failed(exc, len(sizes) - written)
                return
            if self._failing:
                self._failing = False
                self._say(EventName.SINK_RECOVERED, "writing again", lost_lines=self.lost_lines)

    def _append(self, data: bytes, sizes: array[int], start: int, end: int, offset: int) -> int:
        """Write lines ``start`` to ``end`` of ``data``, the first at byte ``offset``;
        returns the offset after them."""
        if end <= start:
            return offset
        assert self._fd is not None
        size = len(data) if start == 0 and end == len(sizes) else sum(sizes[start:end])
        write_all(self._fd, data if size == len(data) else memoryview(data)[offset : offset + size])
        self._file_lines += end - start
        self._file_bytes += size
        self.lines += end - start
        self.bytes += size
        return offset + size

    def _open_file(self) -> int:
        fd, size, removed = open_active(self.spec.path)
        self._fd = fd
        self._file_lines = 0
        self._file_bytes = size
        if removed:
            self.repaired_bytes += removed
            self._say(
                EventName.SINK_REPAIRED,
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
            EventName.SINK_ROTATED,
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
            self._say(EventName.SINK_ERROR, f"write failed: {exc}", lost_lines=lost)

    # Events raised while a batch is half written wait until it is done: the runner hands
    # them to every sink, this one included, and they must not land in the middle.

    def _say(self, event: EventName, message: str, **detail: Any) -> None:
        if self._deferred is None:
            self._report(event, message, detail)
        else:
            self._deferred.append((event, message, detail))

    def _report(self, event: EventName, message: str, detail: dict[str, Any]) -> None:
        """Hand the event to the Trio thread (``emit`` runs there), stamped with the feed
        time of the work that caused it."""
        assert self._token is not None
        report = functools.partial(self._events.at, self._at, event, message, **detail)
        with suppress(trio.RunFinishedError):  # nobody left to tell
            self._token.run_sync_soon(report)

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
                self._report(event, message, detail)


@asynccontextmanager
async def open_jsonl_sink(
    spec: JsonlSpec | str,
    *,
    clock_offset: float | None = None,
    emit: Emit | None = None,
    buffer: int = BUFFER,
) -> AsyncIterator[JsonlSink]:
    """A :class:`JsonlSink` for the ``async with``: ``open_jsonl_sink("jsonl:ticks.jsonl")``.

    ``clock_offset`` is added to the feed's clock for the lines' times and for the
    rotation periods (default: the offset to the epoch, measured now). ``emit`` receives
    the sink's health events (they are logged either way). ``buffer``: bytes of encoded
    lines the writer thread may fall behind before :meth:`JsonlSink.wait_writable` waits
    (8 MiB).
    """
    if isinstance(spec, str):
        parsed = parse_sink(spec if spec.startswith("jsonl:") else f"jsonl:{spec}")
        assert isinstance(parsed, JsonlSpec)
        spec = parsed
    if clock_offset is None:
        clock_offset = time.time() - trio.current_time()
    sink = JsonlSink(spec, clock_offset=clock_offset, emit=emit, buffer=buffer)
    async with file_sink_life(sink, spec.display):  # its close: bounded by CLOSE_TIMEOUT
        yield sink
