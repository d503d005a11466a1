"""A worker thread that does blocking writes for the Trio thread, behind a bounded hand-off.

Theory of operation
-------------------
A write to a pipe, a terminal or a file can block for as long as the other end likes: a
pipe whose reader stopped reading fills up in 64 KiB, a terminal stops on Ctrl-S, a disk
stalls. Done on the Trio thread, such a write freezes every task of the process:
heartbeats stop going out, staleness clocks run on, and the venue drops the connection.
So the Trio thread never writes there itself. It hands items to a :class:`WriterThread`,
whose thread calls ``handle(items)`` with everything queued since its last call and may
block in it as long as it must.

The hand-off is bounded by size: each item comes with a size (bytes, for the runner's
stdout), and ``queued`` counts the sizes of the items put and not yet handled (the ones
the thread is writing included). Two ways in, for two kinds of producer:

- :meth:`WriterThread.put` never refuses and never waits; a producer that must not
  lose its items (the runner's market pump) then awaits :meth:`WriterThread.wait_room`,
  which returns once ``queued`` is below ``capacity``. That producer is paced by the
  other end: while stdout is not read, the pump waits there, the feed's queue fills
  behind it and the feed's policy per stream kind applies (``block``: the reader waits,
  heartbeats go on; ``conflate`` and ``drop-oldest``: drops counted and announced), exactly
  as for a slow consumer in the library. ``queued`` exceeds ``capacity`` by at most one
  such producer's item.
- :meth:`WriterThread.offer` takes an item only while ``queued`` is below
  ``capacity + reserve`` and says whether it did: for lines that must never wait (health
  events, status lines), and that a blocked output cannot take forever. ``queued``
  exceeds ``capacity + reserve`` by at most one offered item.

:meth:`WriterThread.wait_idle` waits until everything put so far is handled (a sink's
``flush``).

Wake-ups cost a thread switch each, so they happen only when someone sleeps: ``put``
notifies the thread's condition (free when the thread is busy), and the thread sets the
Trio side's event (through ``TrioToken.run_sync_soon``, the one thread-safe way in) only
when a task waits for room.

An exception from ``handle`` (a broken pipe, a full disk the handler did not absorb)
ends the thread: it is kept in :attr:`WriterThread.error`, every waiter is woken, and
later items are discarded and counted. :meth:`WriterThread.aclose` lets the thread
write what is queued, waiting at most ``timeout`` seconds of real time; what a reader that never
reads again leaves behind is abandoned (``abandoned`` says how much), and the thread, a
daemon blocked in a write, ends with the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Generic, TypeVar

import trio

__all__ = ["WriterThread"]

T = TypeVar("T")


class WriterThread(Generic[T]):
    """See the module docstring. ``put``/``offer``/``wait_room``/``aclose`` belong to the
    Trio thread; ``handle`` runs in the writer's own thread."""

    def __init__(
        self,
        handle: Callable[[list[T]], None],
        *,
        capacity: int,
        reserve: int = 0,
        name: str = "tickactors-writer",
    ) -> None:
        if capacity < 1 or reserve < 0:
            raise ValueError(f"capacity must be >= 1 and reserve >= 0: {capacity}, {reserve}")
        self._handle = handle
        self.capacity = capacity
        self.reserve = reserve
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._items: list[T] = []
        self._sizes = 0  # of self._items
        self._closing = False
        self._room: trio.Event | None = None
        self._idle: trio.Event | None = None
        self._busy = False
        self._done = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: threading.Thread | None = None
        #: sizes put and not yet handled (those being handled included)
        self.queued = 0
        self.high_water = 0
        #: items handled, and items ``offer`` refused or that came after an error
        self.handled = 0
        self.refused = 0
        self.discarded = 0
        #: size left unwritten when ``aclose`` stopped waiting
        self.abandoned = 0
        self.error: BaseException | None = None

    # -- the Trio side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (from the Trio thread: it keeps the run's token)."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    @property
    def full(self) -> bool:
        """``queued`` has reached ``capacity``: the other end is not keeping up."""
        return self.queued >= self.capacity

    def put(self, item: T, size: int) -> None:
        """Queue ``item`` whatever the fill (await :meth:`wait_room` after it)."""
        with self._lock:
            if self.error is not None or self._closing:
                self.discarded += 1
                return
            self._queue(item, size)

    def offer(self, item: T, size: int) -> bool:
        """Queue ``item`` while ``queued`` is below ``capacity + reserve``; False if not
        (or if the writer failed or is closing)."""
        with self._lock:
            if self.error is not None or self._closing:
                self.discarded += 1
                return False
            if self.queued >= self.capacity + self.reserve:
                self.refused += 1
                return False
            self._queue(item, size)
            return True

    async def wait_room(self) -> None:
        """Return once ``queued`` is below ``capacity`` (at once if it is), or the writer
        failed or ended."""
        while True:
            with self._lock:
                if self.queued < self.capacity or self.error is not None or self._done.is_set():
                    return
                if self._room is None:
                    self._room = trio.Event()
                room = self._room
            await room.wait()

    async def wait_idle(self) -> None:
        """Return once every item put so far is handled, or the writer failed or ended."""
        while True:
            with self._lock:
                idle = not self._items and not self._busy
                if idle or self.error is not None or self._done.is_set():
                    return
                if self._idle is None:
                    self._idle = trio.Event()
                event = self._idle
            await event.wait()

    @property
    def running(self) -> bool:
        """The thread was started and has not ended (it may be stuck in a write)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def closing(self) -> bool:
        """``aclose`` was called: items are no longer taken."""
        return self._closing

    async def aclose(self, timeout: float) -> bool:  # noqa: ASYNC109 (real seconds)
        """No more items: let the thread write what is queued, for at most ``timeout``
        seconds of real time (the bound is on the reader or the disk, not on the feed's
        clock). True when everything was handled (or nothing was ever started)."""
        with self._lock:
            self._closing = True
            self._work.notify()
        thread = self._thread
        if thread is None:
            return True
        ended = await trio.to_thread.run_sync(_join, thread, timeout, abandon_on_cancel=True)
        with self._lock:
            if not ended:
                self.abandoned = self.queued
            return ended and self.error is None

    def statistics(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "capacity": self.capacity,
            "high_water": self.high_water,
            "handled": self.handled,
            "refused": self.refused,
            "discarded": self.discarded,
            "abandoned": self.abandoned,
            "error": None if self.error is None else repr(self.error),
        }

    # -- inside (the lock is held by the caller) -------------------------------------------

    def _queue(self, item: T, size: int) -> None:
        self._items.append(item)
        self._sizes += size
        self.queued += size
        if self.queued > self.high_water:
            self.high_water = self.queued
        self._work.notify()

    # -- the writer's thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._items and not self._closing:
                        self._work.wait()
                    if not self._items:
                        return
                    items, self._items = self._items, []
                    size, self._sizes = self._sizes, 0
                    self._busy = True
                try:
                    self._handle(items)
                except BaseException as exc:
                    with self._lock:
                        self.error = exc
                        self.discarded += len(items) + len(self._items)
                        self._items = []
                        self._sizes = 0
                    return
                with self._lock:
                    self._busy = False
                    self.handled += len(items)
                    self.queued -= size
                    wake = []
                    if self._room is not None and self.queued < self.capacity:
                        wake.append(self._room)
                        self._room = None
                    if self._idle is not None and not self._items:
                        wake.append(self._idle)
                        self._idle = None
                for event in wake:
                    self._to_trio(event.set)
        finally:
            with self._lock:
                self._busy = False
                waiting = [e for e in (self._room, self._idle) if e is not None]
                self._room = self._idle = None
            for event in waiting:
                self._to_trio(event.set)
            self._to_trio(self._done.set)

    def _to_trio(self, callback: Callable[[], Any]) -> None:
        assert self._token is not None
        with suppress(trio.RunFinishedError):  # the run ended without waiting for us
            self._token.run_sync_soon(callback)


def _join(thread: threading.Thread, timeout: float) -> bool:
    thread.join(timeout)
    return not thread.is_alive()
