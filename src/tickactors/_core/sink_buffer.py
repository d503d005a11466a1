"""What a sink drops when it cannot keep up: a bounded buffer of batches, oldest out first.

Theory of operation
-------------------
A sink that publishes somewhere slow (a message bus across the network) sits behind a
buffer that the feed side fills and a publisher empties. The feed side must never wait,
so the buffer has a bound (``capacity`` items) and one policy for when the bound is
reached: the oldest items go, and every one of them is counted, by kind (``kind_of``
names an item's kind: ``"tick"``, ``"book"``, ``"status"``, ...).

Items arrive in batches and are kept as those batches: putting a batch costs one
``deque.append`` whatever its length, and taking costs one slice per batch. A drop
removes whole batches from the front and, when the bound falls inside one, the head of
that batch. :meth:`DropOldestBuffer.put_back` returns items the publisher took but
could not deliver to the front, where they are the first to go if the bound is
reached again: they are the oldest.

The buffer keeps the sequences it is given: the caller must not change a batch after
putting it. It is not thread-safe (the NATS sink's hand-off holds a lock around every
call), never blocks and never reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Generic, TypeVar

__all__ = ["DropOldestBuffer"]

T = TypeVar("T")


class DropOldestBuffer(Generic[T]):
    """At most ``capacity`` items in batches; beyond that the oldest are dropped and counted."""

    def __init__(self, capacity: int, kind_of: Callable[[T], str]) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        self.capacity = capacity
        self._kind_of = kind_of
        self._batches: deque[Sequence[T]] = deque()
        self._offset = 0  # items of the first batch already taken or dropped
        self._len = 0
        #: items put (``put``; not ``put_back``), and items dropped, by kind
        self.accepted = 0
        self.dropped: dict[str, int] = {}

    def __len__(self) -> int:
        return self._len

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def put(self, batch: Sequence[T]) -> int:
        """Append ``batch``; returns how many of the oldest items were dropped to make room."""
        if not batch:
            return 0
        self._batches.append(batch)
        self._len += len(batch)
        self.accepted += len(batch)
        return self._trim() if self._len > self.capacity else 0

    def put_back(self, items: Sequence[T]) -> int:
        """Return undelivered items to the front (oldest first); returns how many were dropped."""
        if not items:
            return 0
        if self._offset:
            first = self._batches.popleft()
            self._batches.appendleft(first[self._offset :])
            self._offset = 0
        self._batches.appendleft(items)
        self._len += len(items)
        return self._trim() if self._len > self.capacity else 0

    def take(self, max_items: int) -> list[T]:
        """Up to ``max_items`` of the oldest items, removed from the buffer (oldest first)."""
        out: list[T] = []
        while self._batches and len(out) < max_items:
            first = self._batches[0]
            want = max_items - len(out)
            end = min(len(first), self._offset + want)
            out.extend(first[self._offset : end] if self._offset or end < len(first) else first)
            if end == len(first):
                self._batches.popleft()
                self._offset = 0
            else:
                self._offset = end
        self._len -= len(out)
        return out

    def discard_all(self) -> int:
        """Drop (and count) everything still waiting; returns how many items that was."""
        return self._drop(self._len)

    def _trim(self) -> int:
        return self._drop(self._len - self.capacity)

    def _drop(self, count: int) -> int:
        left = count
        while left > 0:
            first = self._batches[0]
            available = len(first) - self._offset
            n = min(available, left)
            self._count(islice(first, self._offset, self._offset + n))
            left -= n
            if n == available:
                self._batches.popleft()
                self._offset = 0
            else:
                self._offset += n
        self._len -= count
        return count

    def _count(self, items: Iterable[T]) -> None:
        kind_of = self._kind_of
        dropped = self.dropped
        for item in items:
            kind = kind_of(item)
            dropped[kind] = dropped.get(kind, 0) + 1
