"""The paced streamer loop both venues share: a heap of due pushes over a shared market.

Theory of operation
-------------------
The market is shared, as at a real venue: each key (an AllTick code, a
Tradovate contract id) has a fast stream (:data:`FAST`: trades / quotes,
every ``tick_interval``) and a book stream (:data:`BOOK`: depth / DOM, every
``book_interval``), both jittered x0.5..1.5, whoever listens; the venue's
``_push`` fans one event out to every connection that streams the key.

A heap holds ``(due, n, key, stream)``. A key enters it when some
connection starts streaming it (first push uniformly within one interval;
``_rescan``, run after :meth:`PacedStreamer.notify`) and leaves when its
entry falls due with no listener. While a stall holds the loop waits; it
yields to trio every :data:`YIELD_EVERY` pushes. Subclasses supply
``connections`` (via ``_kind``), ``_push`` and, if the rescan order must
not be the set's own, ``_ordered``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar, cast

import trio

from ._faults import Faults
from ._hub import Hub

FAST = 0
BOOK = 1
YIELD_EVERY = 64

KeyT = TypeVar("KeyT", str, int)


class _Streams(Protocol):
    def streamed(self, now: float) -> tuple[set[Any], set[Any]]: ...


ConnT = TypeVar("ConnT", bound=_Streams)


class PacedStreamer(Generic[KeyT, ConnT]):
    """Schedules every streamed key's pushes; the venue subclass makes the pushes."""

    _kind: type[ConnT]

    def __init__(self, hub: Hub, faults: Faults, rng_name: str) -> None:
        self._hub, self._faults = hub, faults
        self._rng = hub.rng(rng_name)
        self._heap: list[tuple[float, int, KeyT, int]] = []
        self._scheduled: set[tuple[KeyT, int]] = set()
        self._counter = 0
        self._dirty = True
        self._wake = trio.Event()
        hub.on_subscriptions_changed(self.notify)

    @property
    def connections(self) -> list[ConnT]:
        kind = self._kind
        return cast(list[ConnT], [c for c in self._hub.connections.values() if isinstance(c, kind)])

    def notify(self) -> None:
        """Some subscription changed: rescan on the next turn."""
        self._dirty = True
        self._wake.set()

    async def _wait_for_news(self, deadline: float = float("inf")) -> None:
        if not self._dirty:
            with trio.move_on_at(deadline):
                await self._wake.wait()
        if self._wake.is_set():
            self._wake = trio.Event()

    def _push(self, key: KeyT, now: float, stream: int) -> bool:
        """Push ``stream`` of ``key`` to its listeners; whether anyone listens."""
        raise NotImplementedError

    def _ordered(self, keys: set[KeyT]) -> Iterable[KeyT]:
        return keys

    def _schedule(self, due: float, key: KeyT, stream: int) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, key, stream))
        self._scheduled.add((key, stream))

    def _rescan(self, now: float) -> None:
        self._dirty = False
        config = self._hub.config
        for conn in self.connections:
            fast, book = conn.streamed(now)
            for key in self._ordered(fast):
                if (key, FAST) not in self._scheduled:
                    self._schedule(now + self._rng.uniform(0, config.tick_interval), key, FAST)
            for key in self._ordered(book):
                if (key, BOOK) not in self._scheduled:
                    self._schedule(now + self._rng.uniform(0, config.book_interval), key, BOOK)

    async def _run_paced(self) -> None:
        config = self._hub.config
        done = 0
        while True:
            if self._faults.stalled():
                await self._faults.wait_unstalled()
            now = trio.current_time()
            if self._dirty:
                self._rescan(now)
            if not self._heap:
                await self._wait_for_news()
                continue
            due = self._heap[0][0]
            if due > now:
                await self._wait_for_news(due)
                continue
            _, _, key, stream = heapq.heappop(self._heap)
            listening = self._push(key, now, stream)
            interval = config.tick_interval if stream == FAST else config.book_interval
            if listening:
                self._schedule(now + interval * self._rng.uniform(0.5, 1.5), key, stream)
            else:
                self._scheduled.discard((key, stream))
            done += 1
            if done % YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
