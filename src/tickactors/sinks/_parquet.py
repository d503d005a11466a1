"""The Parquet sink: every trade, book, quote and health event into typed, partitioned files.

Theory of operation
-------------------
``parquet:DIR`` writes each stream to its own files,
``DIR/<trades|book|quotes|events>/date=YYYY-MM-DD/part-<stamp>.parquet``
(hive-style partitions by the UTC date of each row's ``received_at``, or an event's
``time``), with the schemas of ``_parquet_columns`` (exact decimal strings,
``timestamp[ns, UTC]``, dictionary-encoded symbols, zstd).

The sink is called from the Trio thread (the runner's pump), synchronously. It does
nothing there but hand the batch itself (the frozen values, in a tuple) to a
:class:`~tickactors.sinks._writer_thread.WriterThread`, weighed in rows plus book
levels: turning values into columns, compressing and writing all happen in the writer
thread, so a stalled disk stalls only that thread. The runner awaits
:meth:`ParquetSink.wait_writable` after each batch, which waits while the thread is
``buffer`` behind (the feed's queue and its policies take over, as for a slow stdout);
code that never awaits it loses what it offers beyond ``2 x buffer``, counted in
``lost_rows`` and announced (``sink_loss``).

In the writer thread, a batch is split by kind (values of other types are skipped and
counted: this sink captures market data and events only) and each part goes to its
:class:`~tickactors.sinks._parquet_stream.Stream`, which cuts files by date,
``max_rows`` and ``max_seconds`` (``_core/part_rotation.py``) and writes row groups of
``row_group`` rows. A timer task on the Trio side hands the thread a ``time`` command
at every period boundary and at UTC midnight, so an idle stream's file is finished on
time. Closing finishes every file; after a clean stop only finished files remain.

A finished file appears by rename, so a reader never sees a torn one
(``_parquet_files``). A crash loses each stream's unfinished file (at most
``max_rows`` rows or ``max_seconds`` of data): its temporary file has no footer yet,
and the next start removes it (``sink_repaired``), or finishes it when the crash came
after its footer. The thread's events reach ``emit`` on the Trio thread, stamped with
the feed time of the work that caused them.

pyarrow is imported only when the sink opens: ``tickactors.sinks`` imports without it,
and a missing pyarrow is a :class:`~tickactors.sinks.SinkError` naming the extra.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .._core.part_rotation import PartPolicy, next_boundary
from .._values import (
    AccountUpdate,
    BookSnapshot,
    EventName,
    HealthEvent,
    MarketData,
    Quote,
    Tick,
)
from ._background import file_sink_life
from ._events import Emit, SinkError, SinkEvents
from ._spec import ParquetSpec, parse_sink
from ._writer_thread import WriterThread

if TYPE_CHECKING:
    from ._parquet_stream import Stream

__all__ = ["ParquetSink", "open_parquet_sink"]

#: rows (a book: one plus one per level) the writer thread may fall behind before
#: ``wait_writable`` waits
BUFFER = 100_000
#: how long closing waits for the writer thread to finish what is queued
CLOSE_TIMEOUT = 60.0

# (what, feed clock, epoch seconds, payload): "market" with a tuple of values, "event"
# with an event row (``_parquet_columns.EventRow``), "time" and "close" with None.
_Command = tuple[str, float, float, Any]


class ParquetSink:
    """Typed, partitioned Parquet files. Open it with :func:`open_parquet_sink`."""

    def __init__(
        self,
        spec: ParquetSpec,
        *,
        clock_offset: float = 0.0,
        emit: Emit | None = None,
        buffer: int = BUFFER,
    ) -> None:
        self.spec = spec
        self._offset = clock_offset
        self._events = SinkEvents(spec.display, emit)
        self._thread: WriterThread[_Command] = WriterThread(
            self._handle, capacity=buffer, reserve=buffer, name="tickactors-parquet"
        )
        self._token: trio.lowlevel.TrioToken | None = None
        self._at = 0.0  # the feed's clock at the command the writer thread works on
        self._lock: int | None = None
        self._streams: dict[str, Stream] = {}
        self._by_class: dict[type, Stream] = {}
        self._day_of: Callable[[float, float], int] = _no_day
        self._failing = False
        self._refused = 0  # rows offered beyond the buffer (the Trio side's count)
        self._lost = 0  # rows of commands that failed before reaching a stream
        self.skipped = 0
        self.write_errors = 0
        self.recovered_files = 0
        self.removed_files = 0
        self.removed_bytes = 0

    # -- the Writer interface (what the runner calls, on the Trio thread) ----------------

    def market(self, batch: Sequence[MarketData]) -> None:
        if not batch:
            return
        items = tuple(batch)
        weight = len(items) + sum(
            len(item.bids) + len(item.asks) for item in items if item.__class__ is BookSnapshot
        )
        self._submit("market", items, weight)

    def account(self, batch: Sequence[AccountUpdate]) -> None:
        """The account's snapshots and entity events (``--sync``) have no table here: they
        are counted in ``skipped`` (a ``jsonl:`` sink beside this one keeps them)."""
        self.skipped += len(batch)

    def event(self, event: HealthEvent) -> None:
        detail = dict(event.detail)
        row = (event.time, "event", str(event.event), event.connection, event.message, detail)
        self._submit("event", row, 1)

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        self._submit("event", (trio.current_time(), "status", str(event), 0, message, detail), 1)

    async def wait_writable(self) -> None:
        """Wait while the writer thread is ``buffer`` rows or more behind."""
        await self._thread.wait_room()

    async def flush(self) -> None:
        """Wait until everything handed over so far is taken by the writer thread (rows
        are in files only once their row group is written, all of them once closed)."""
        await self._thread.wait_idle()

    # -- life cycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Take the directory's lock, settle a crash's leftovers, start the writer thread.
        Raises :class:`SinkError` (pyarrow missing, another capture in the directory)
        and ``OSError`` (the directory)."""
        try:
            from ._parquet_stream import Stream
        except ImportError:
            raise SinkError(
                f"{self.spec.display}: the Parquet sink needs pyarrow: "
                "pip install 'tickactors[parquet]'"
            ) from None
        self._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(self._open_at, trio.current_time())
        from ._parquet_columns import day_of

        self._day_of = day_of
        self._make_streams(Stream)
        self._thread.start()

    async def close(self) -> None:
        """Finish every file, report ``sink_closed``, release the directory; waits at
        most ``CLOSE_TIMEOUT`` for a stalled disk."""
        self._thread.put(("close", trio.current_time(), self._now(), None), 0)
        try:
            if not await self._thread.aclose(CLOSE_TIMEOUT):
                self._events(
                    EventName.SINK_ERROR,
                    f"the files did not take the last {self._thread.abandoned} rows in "
                    f"{CLOSE_TIMEOUT:g} s: left behind",
                    lost_rows=self._thread.abandoned,
                )
        finally:
            # a writer stuck in a stalled disk keeps the directory: it may still finish
            if self._lock is not None and not self._thread.running:
                os.close(self._lock)
                self._lock = None

    async def rotate_on_time(self) -> None:
        """Hand the writer thread a ``time`` command at every period boundary and at UTC
        midnight (runs until cancelled)."""
        last = -math.inf
        while True:
            # after a boundary, from the boundary itself: the clock read back may fall a
            # rounding error short of it, and the same deadline must not come round again
            deadline = next_boundary(max(self._now(), last), self.spec.max_seconds)
            await trio.sleep_until(deadline - self._offset)
            last = deadline
            now = max(self._now(), deadline)
            self._thread.put(("time", trio.current_time(), now, None), 0)

    def statistics(self) -> dict[str, Any]:
        streams = self._streams.values()
        return {
            "sink": self.spec.display,
            "rows": {stream.kind: stream.rows for stream in streams},
            "files": sum(stream.files for stream in streams),
            "bytes": sum(stream.bytes for stream in streams),
            "lost_rows": sum(s.lost_rows for s in streams) + self._refused + self._lost,
            "skipped": self.skipped,
            "write_errors": self.write_errors,
            "recovered_files": self.recovered_files,
            "removed_files": self.removed_files,
            "removed_bytes": self.removed_bytes,
            "writer": self._thread.statistics(),
        }

    def _now(self) -> float:
        return trio.current_time() + self._offset

    def _submit(self, what: str, payload: Any, weight: int) -> None:
        clock = trio.current_time()
        if self._thread.offer((what, clock, clock + self._offset, payload), weight):
            return
        if self._thread.closing:  # closed: nothing more can be written (counted there)
            return
        first = not self._refused
        self._refused += len(payload) if what == "market" else 1
        if first:
            self._events(
                EventName.SINK_LOSS,
                "the files are behind by twice the buffer and nobody waits for them "
                "(await wait_writable()): rows dropped",
                lost_rows=self._refused,
            )

    def _make_streams(self, stream_class: type[Stream]) -> None:
        from ._parquet_columns import BOOK, EVENTS, KINDS, QUOTES, TRADES

        time_of: dict[str, Callable[[Any], float]] = {
            kind: _received_at for kind in (TRADES, BOOK, QUOTES)
        }
        time_of[EVENTS] = _event_time
        for kind in KINDS:
            self._streams[kind] = stream_class(
                kind,
                self.spec.directory,
                PartPolicy(max_rows=self.spec.max_rows, max_seconds=self.spec.max_seconds),
                row_group=self.spec.row_group,
                offset=self._offset,
                time_of=time_of[kind],
                failed=self._failed,
                wrote=self._wrote,
                finished=self._finished,
            )
        self._by_class = {
            Tick: self._streams[TRADES],
            BookSnapshot: self._streams[BOOK],
            Quote: self._streams[QUOTES],
        }

    # -- the writer thread ---------------------------------------------------------------

    def _open_at(self, clock: float) -> None:
        from ._parquet_files import lock_directory, settle_leftovers

        self._at = clock
        directory = self.spec.directory
        try:
            self._lock = lock_directory(directory)
        except BlockingIOError:
            raise SinkError(
                f"{self.spec.display}: another capture is writing into this directory "
                f"(it holds {directory / '.lock'})"
            ) from None
        try:
            settled = settle_leftovers(directory)
        except BaseException:
            os.close(self._lock)
            self._lock = None
            raise
        for path, outcome, amount in settled:
            if outcome == "recovered":
                self.recovered_files += 1
                self._say(
                    EventName.SINK_REPAIRED,
                    "a file left unfinished by a crash was whole: finished",
                    file=str(path),
                    recovered_rows=amount,
                )
            else:
                self.removed_files += 1
                self.removed_bytes += amount
                self._say(
                    EventName.SINK_REPAIRED,
                    "a file left unfinished by a crash (no footer) was removed",
                    file=str(path),
                    removed_bytes=amount,
                )

    def _handle(self, commands: list[_Command]) -> None:
        for what, clock, now, payload in commands:
            self._at = clock
            try:
                if what == "market":
                    self._market(payload, now)
                elif what == "event":
                    self._add(self._streams["events"], (payload,), _event_time, now)
                elif what == "time":
                    for stream in self._streams.values():
                        stream.on_time(now)
                else:
                    for stream in self._streams.values():
                        stream.close()
            except Exception as exc:  # a value no stream could take (a time that is NaN,
                # say): the streams absorb their own failures, and the thread never ends
                lost = len(payload) if what == "market" else int(what == "event")
                self._lost += lost
                self._failed(exc, lost)
            if what == "close":
                self._say(EventName.SINK_CLOSED, "capture closed", **self.statistics())

    def _market(self, items: tuple[MarketData, ...], now: float) -> None:
        classes = {item.__class__ for item in items}
        by_class = self._by_class
        for cls in classes:
            stream = by_class.get(cls)
            if stream is None:
                self.skipped += sum(1 for item in items if item.__class__ is cls)
                continue
            rows = items if len(classes) == 1 else [i for i in items if i.__class__ is cls]
            self._add(stream, rows, _received_at, now)

    def _add(
        self, stream: Stream, rows: Sequence[Any], time_of: Callable[[Any], float], now: float
    ) -> None:
        day_of = self._day_of
        offset = self._offset
        times = [time_of(row) for row in rows]
        first = day_of(min(times), offset)
        if first == day_of(max(times), offset):
            days: Sequence[int] = [first] * len(rows)
        else:
            days = [day_of(t, offset) for t in times]
        stream.add(rows, days, now)

    # -- the streams' reports (writer thread) ---------------------------------------------

    def _failed(self, exc: Exception, lost: int) -> None:
        self.write_errors += 1
        if not self._failing:
            self._failing = True
            self._say(EventName.SINK_ERROR, f"write failed: {exc}", lost_rows=lost)

    def _wrote(self) -> None:
        if self._failing:
            self._failing = False
            lost = sum(stream.lost_rows for stream in self._streams.values())
            self._say(EventName.SINK_RECOVERED, "writing again", lost_rows=lost)

    def _finished(
        self, kind: str, path: Path, reason: str, rows: int, groups: int, size: int
    ) -> None:
        self._say(
            EventName.SINK_ROTATED,
            f"file finished ({reason})",
            file=str(path),
            stream=kind,
            reason=reason,
            rows=rows,
            row_groups=groups,
            bytes=size,
        )

    def _say(self, event: EventName, message: str, **detail: Any) -> None:
        """Hand the event to the Trio thread (``emit`` runs there), stamped with the feed
        time of the work that caused it."""
        assert self._token is not None
        report = functools.partial(self._events.at, self._at, event, message, **detail)
        with suppress(trio.RunFinishedError):  # nobody left to tell
            self._token.run_sync_soon(report)


def _no_day(seconds: float, offset: float) -> int:
    raise RuntimeError("the sink is not open")


def _received_at(item: Any) -> float:
    return float(item.received_at)


def _event_time(row: Any) -> float:
    return float(row[0])


@asynccontextmanager
async def open_parquet_sink(
    spec: ParquetSpec | str,
    *,
    clock_offset: float | None = None,
    emit: Emit | None = None,
    buffer: int = BUFFER,
) -> AsyncIterator[ParquetSink]:
    """A :class:`ParquetSink` for the ``async with``: ``open_parquet_sink("parquet:capture")``.

    ``clock_offset`` is added to the feed's clock for ``received_at``, event times, the
    date partitions and the rotation periods (default: the offset to the epoch, measured
    now). ``emit`` receives the sink's health events (they are logged either way).
    ``buffer``: rows (plus book levels) the writer thread may fall behind before
    :meth:`ParquetSink.wait_writable` waits (100,000). Raises :class:`SinkError` without
    pyarrow (``pip install 'tickactors[parquet]'``), when another capture holds the
    directory, or when the directory cannot be created or written.
    """
    if isinstance(spec, str):
        parsed = parse_sink(spec if spec.startswith("parquet:") else f"parquet:{spec}")
        assert isinstance(parsed, ParquetSpec)
        spec = parsed
    if clock_offset is None:
        clock_offset = time.time() - trio.current_time()
    sink = ParquetSink(spec, clock_offset=clock_offset, emit=emit, buffer=buffer)
    async with file_sink_life(sink, spec.display):  # its close: bounded by CLOSE_TIMEOUT
        yield sink
