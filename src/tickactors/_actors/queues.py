"""Bounded batch hand-offs: :class:`BatchQueue` (one kind of item) and :class:`MarketQueue`.

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

:class:`MarketQueue` is the feed's: one lane per stream kind, each with its own policy
(``block``, ``conflate`` or ``drop-oldest``; ``_core/lanes.py`` decides, this only
waits), several readers, and one consumer of every kind (:meth:`MarketQueue.get_batch`) or
one per kind (:meth:`MarketQueue.get_kind_batch`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Generic, TypeVar

import trio

from .._core.lanes import DEFAULT_POLICIES, Lanes, Policy
from .._core.loss_report import LossReport, LossReporter
from .._values import MarketData, StreamKind

__all__ = ["BatchQueue", "MarketQueue", "Policy"]

#: Seconds between two ``gap`` events of a feed (the first drop is announced at once).
GAP_REPORT_INTERVAL = 1.0

T = TypeVar("T")


class _Waiters:
    """Tasks waiting for one condition: ``trio.lowlevel.ParkingLot`` reduced to what the
    queues use (park, wake everyone, is anyone there).

    A consumer waits here once per batch, and below full speed a batch is one frame or
    two: ``ParkingLot``'s ordered dict, its generator of tasks to wake and its statistics
    cost more than the wake-up they organise. This keeps a plain list and calls
    ``trio.lowlevel.reschedule`` on each task; a cancelled waiter takes itself out.
    """

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: list[trio.lowlevel.Task] = []

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    async def park(self) -> None:
        """Wait until :meth:`unpark_all` (a checkpoint: cancellation ends the wait)."""
        task = trio.lowlevel.current_task()
        tasks = self._tasks
        tasks.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            tasks.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def unpark_all(self) -> None:
        """Wake every waiting task (in the order they came)."""
        tasks = self._tasks
        if tasks:
            self._tasks = []
            reschedule = trio.lowlevel.reschedule
            for task in tasks:
                reschedule(task)


class _Parking:
    """What both queues share: closing, and where their producers and consumer wait."""

    def __init__(self) -> None:
        self._not_empty = _Waiters()
        self._not_full = _Waiters()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """No more items will come: the consumer drains what is left, then gets ``EndOfChannel``."""
        self._closed = True
        self._not_empty.unpark_all()
        self._not_full.unpark_all()

    async def _until_items(self, waiting: Sized) -> None:
        """Return once ``waiting`` holds an item (a checkpoint if it does already)."""
        if waiting:
            await trio.lowlevel.checkpoint()
        while not waiting:
            if self._closed:
                raise trio.EndOfChannel
            await self._not_empty.park()

    def _taken(self) -> None:
        if self._not_full:
            self._not_full.unpark_all()


class BatchQueue(_Parking, Generic[T]):
    """One consumer, batches of items. See the module docstring.

    ``drop_key``: under ``drop-oldest``, count the dropped items by ``drop_key(item)``
    (``drops``; the account queue counts them by entity type).
    """

    def __init__(
        self,
        capacity: float = math.inf,
        policy: Policy = Policy.BLOCK,
        *,
        drop_key: Callable[[T], str] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity is at least 1")
        if policy is Policy.CONFLATE:
            raise ValueError("a BatchQueue does not conflate: that takes symbols (MarketQueue)")
        super().__init__()
        self.capacity = capacity
        self.policy = policy
        self._items: deque[T] = deque()
        self.put_count = 0
        self.dropped = 0
        self.blocked = 0
        self._drop_key = drop_key
        #: Items dropped so far by ``drop_key`` (only grows; empty without one).
        self.drops: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """Whether :meth:`put` would wait now (``block``, ``capacity`` items waiting)."""
        return self.policy is Policy.BLOCK and len(self._items) >= self.capacity

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
            key, drops = self._drop_key, self.drops
            while len(self._items) > self.capacity:
                item = self._items.popleft()
                dropped += 1
                if key is not None:
                    name = key(item)
                    drops[name] = drops.get(name, 0) + 1
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
        await self._until_items(self._items)
        items = self._items
        if max_items is None or len(items) <= max_items:
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft() for _ in range(max_items)]
        self._taken()
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


class MarketQueue(_Parking):
    """The feed's hand-off: a lane per stream kind (``Lanes``), readers that may wait, one consumer.

    Readers call :meth:`put_nowait` when :meth:`would_block` says no, else :meth:`put`,
    which waits while a ``block`` lane their items go to is full. ``put_nowait`` and
    ``put`` return the items dropped to make room (``conflate``, ``drop-oldest``);
    ``lanes.drops`` has the totals by kind and symbol.
    """

    def __init__(
        self, capacity: int, policies: Mapping[StreamKind, Policy] = DEFAULT_POLICIES
    ) -> None:
        super().__init__()
        self.lanes = Lanes(capacity, policies)
        self.capacity = capacity
        self._gaps = LossReporter(interval=GAP_REPORT_INTERVAL)
        self._gaps_reported = 0
        self.blocked = 0

    def __len__(self) -> int:
        return len(self.lanes)

    def __bool__(self) -> bool:
        return bool(self.lanes)

    def would_block(self, groups: Iterable[tuple[StreamKind, Sequence[MarketData]]]) -> bool:
        full = self.lanes.full
        for kind, items in groups:  # noqa: SIM110 (no generator on the hot path)
            if items and full((kind,)):
                return True
        return False

    def put_nowait(self, groups: Iterable[tuple[StreamKind, Sequence[MarketData]]]) -> int:
        """Add each group to its kind's lane now (a ``block`` lane may overshoot by a batch)."""
        if self._closed:
            raise trio.ClosedResourceError("the queue is closed")
        dropped = 0
        put = self.lanes.put
        for kind, items in groups:
            if items:
                dropped += put(kind, items)
        if self._not_empty:
            self._not_empty.unpark_all()
        return dropped

    async def put(self, groups: Sequence[tuple[StreamKind, Sequence[MarketData]]]) -> int:
        """As :meth:`put_nowait`, after waiting while a ``block`` lane of these groups is full."""
        if self.would_block(groups):
            self.blocked += 1
            while self.would_block(groups) and not self._closed:
                await self._not_full.park()
        return self.put_nowait(groups)

    async def get_batch(self, max_items: int | None = None) -> list[MarketData]:
        """Every waiting item (at most ``max_items``), waiting for at least one."""
        await self._until_items(self.lanes)
        batch = self.lanes.take(max_items)
        self._taken()
        return batch

    async def get_kind_batch(
        self, kind: StreamKind, max_items: int | None = None
    ) -> list[MarketData]:
        """Every waiting item of ``kind`` (at most ``max_items``), waiting for at least one;
        the other kinds' lanes stay as they are, for their own consumer."""
        await self._until_items(self.lanes.lane(kind))
        batch = self.lanes.take_kind(kind, max_items)
        self._taken()
        return batch

    @property
    def gaps_unreported(self) -> bool:
        """Whether items were dropped since the last :meth:`gap_report` that returned one."""
        return self.lanes.dropped != self._gaps_reported

    def gap_report(self, now: float) -> LossReport | None:
        """The drops to announce now, by ``"<kind>:<symbol>"``: at once, then once per
        ``GAP_REPORT_INTERVAL`` with everything dropped in between."""
        report = self._gaps.observe(self.lanes.drops, now)
        if report is not None:
            self._gaps_reported = self.lanes.dropped
        return report

    def statistics(self) -> dict[str, object]:
        return {
            **self.lanes.statistics(),
            "producer_blocked": self.blocked,
            "dropped_by_symbol": dict(self.lanes.drops),
        }
