"""The hand-off between the Trio thread and a publisher thread: bounded, never waits.

The Trio side (the runner's pump) calls :meth:`ThreadHandoff.put` with a whole batch:
under a lock, the batch is appended to a
:class:`~tickactors._core.sink_buffer.DropOldestBuffer` (which drops and counts the
oldest items beyond ``capacity``), and if the publisher is parked waiting for data, its
wake-up callback is called once. The cost is a lock and a ``deque.append`` per batch,
whatever its length; nothing ever blocks the Trio thread for longer than the other
side holds the lock (a take, a put-back: microseconds).

The publisher side (an asyncio loop in its own thread) takes up to ``max_items`` at a
time with :meth:`ThreadHandoff.take_nowait`, parks with :meth:`ThreadHandoff.park`
when there is nothing, and returns what it could not deliver with
:meth:`ThreadHandoff.put_back`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .._core.sink_buffer import DropOldestBuffer

__all__ = ["ThreadHandoff"]

T = TypeVar("T")


class ThreadHandoff(Generic[T]):
    """See the module docstring. Every method may be called from any thread."""

    def __init__(self, capacity: int, kind_of: Callable[[T], str]) -> None:
        self._lock = threading.Lock()
        self._buffer = DropOldestBuffer(capacity, kind_of)
        self._wake: Callable[[], None] | None = None
        self._on_close: Callable[[], None] | None = None
        self._closed = False
        self.high_water = 0

    @property
    def capacity(self) -> int:
        return self._buffer.capacity

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._buffer)

    # -- the feed side -------------------------------------------------------------------

    def put(self, batch: Sequence[T]) -> None:
        """Hand over ``batch`` (the caller must not change it afterwards); never waits."""
        if not batch:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the hand-off is closed")
            self._buffer.put(batch)
            if len(self._buffer) > self.high_water:
                self.high_water = len(self._buffer)
            wake, self._wake = self._wake, None
        if wake is not None:
            wake()

    def close(self) -> None:
        """No more batches: the publisher drains what is left, then stops."""
        with self._lock:
            self._closed = True
            callbacks = [self._wake, self._on_close]
            self._wake = self._on_close = None
        for callback in callbacks:
            if callback is not None:
                callback()

    # -- the publisher side --------------------------------------------------------------

    def take_nowait(self, max_items: int) -> list[T]:
        with self._lock:
            return self._buffer.take(max_items)

    def park(self, wake: Callable[[], None]) -> bool:
        """Have ``wake()`` called once at the next put or close; False (and no call) when
        there is something to take already or the hand-off is closed."""
        with self._lock:
            if len(self._buffer) or self._closed:
                return False
            self._wake = wake
            return True

    def on_close(self, callback: Callable[[], None]) -> None:
        """Have ``callback()`` called once when the hand-off closes (at once if it has)."""
        with self._lock:
            if not self._closed:
                self._on_close = callback
                return
        callback()

    def put_back(self, items: Sequence[T]) -> None:
        """Return undelivered items to the front; they are dropped first if need be."""
        with self._lock:
            self._buffer.put_back(items)

    def discard_all(self) -> int:
        """Drop (and count) everything left; returns how many items that was."""
        with self._lock:
            return self._buffer.discard_all()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "buffered": len(self._buffer),
                "capacity": self._buffer.capacity,
                "high_water": self.high_water,
                "accepted": self._buffer.accepted,
                "dropped": dict(self._buffer.dropped),
            }
