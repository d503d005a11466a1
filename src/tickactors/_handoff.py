"""A bounded batch hand-off between one producer task and one consumer task.

A Trio memory channel costs several microseconds per item; a market-data feed
moves hundreds of thousands of ticks a second. So the hot path never sends
ticks one by one: the connection's reader appends each decoded frame's ticks
to a :class:`BatchQueue`, and the consumer takes everything that has piled up
in one call (:meth:`BatchQueue.get_batch`). The cost per tick is a
``list.append``; the cost per batch is one wake-up.

The queue is bounded, with an explicit policy:

``block``
    the producer waits while ``capacity`` items are waiting (backpressure); one
    batch may overshoot the bound, never more.
``drop-oldest``
    the producer never waits; the oldest items are dropped and counted.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Policy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop-oldest"


class BatchQueue(Generic[T]):
    """One producer, one consumer, batches of items. See the module docstring."""

    def __init__(self, capacity: float = math.inf, policy: Policy = Policy.BLOCK) -> None:
        if capacity < 1:
            raise ValueError("capacity is at least 1")
        self.capacity = capacity
        self.policy = policy
        self._items: deque[T] = deque()
        self._not_empty = trio.lowlevel.ParkingLot()
        self._not_full = trio.lowlevel.ParkingLot()
        self._closed = False
        self.put_count = 0
        self.dropped = 0
        self.blocked = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """No more items will come: the consumer drains what is left, then gets ``EndOfChannel``."""
        self._closed = True
        self._not_empty.unpark_all()
        self._not_full.unpark_all()

    def put_nowait(self, items: Iterable[T]) -> int:
        """Append items without waiting; returns how many old items were dropped to make room.

        Under ``block`` this never drops (it may exceed the bound); use :meth:`put` there.
        """
        if self._closed:
            raise trio.ClosedResourceError("the queue is closed")
        before = len(self._items)
        self._items.extend(items)
        added = len(self._items) - before
        self.put_count += added
        dropped = 0
        if self.policy is Policy.DROP_OLDEST:
            while len(self._items) > self.capacity:
                self._items.popleft()
                dropped += 1
            self.dropped += dropped
        if added and self._not_empty:
            self._not_empty.unpark_all()
        return dropped

    async def put(self, items: Iterable[T]) -> int:
        """Append items; under ``block`` first wait while the queue is full."""
        if self.policy is Policy.BLOCK and len(self._items) >= self.capacity:
            self.blocked += 1
            while len(self._items) >= self.capacity and not self._closed:
                await self._not_full.park()
        return self.put_nowait(items)

    async def get_batch(self, max_items: int | None = None) -> list[T]:
        """Every waiting item (at most ``max_items``), waiting for at least one."""
        if self._items:
            await trio.lowlevel.checkpoint()
        while not self._items:
            if self._closed:
                raise trio.EndOfChannel
            await self._not_empty.park()
        items = self._items
        if max_items is None or len(items) <= max_items:
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft() for _ in range(max_items)]
        if self._not_full:
            self._not_full.unpark_all()
        return batch

    def statistics(self) -> dict[str, object]:
        return {
            "waiting": len(self._items),
            "capacity": self.capacity,
            "policy": self.policy.value,
            "put": self.put_count,
            "dropped": self.dropped,
            "producer_blocked": self.blocked,
        }
