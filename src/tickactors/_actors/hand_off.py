"""Where a connection's reader puts the market data it decoded: the interface, and the
direct hand-off that calls user code (``open_feed(on_batch=...)``).

A reader hands each read's wanted items over as groups by stream kind
(``market_delivery.wanted_groups``). Two things take them:

:class:`~tickactors._actors.queues.MarketQueue` (the default)
    bounded lanes, a policy per kind for a slow consumer, and a consumer task that wakes
    for each batch (``feed.get_batch()``, ``batches()``, ``ticks()``).
:class:`CallbackHandOff`
    no queue and no second task: the reader calls the user's function with the batch,
    right where it would have queued it, and reads on once the function returns.

Why the second exists: latency. Below full speed every frame is a wake-up of the reader,
and the queue adds a second one, of the consumer task: another trip through Trio's run loop
(an ``epoll_wait`` of its own, the task switch, the awaits that return ``get_batch``),
tens of microseconds on a quiet host (docs/performance.md, "Latency"). A trading bot that
acts on each tick in plain synchronous code gains them back by being called in the
reader's own step, as picows or an asyncio ``Protocol`` call theirs.

What that costs the user, said where ``open_feed`` documents it: the function runs on the
Trio thread inside the reader, so while it runs nothing else of the process does (no other
connection read, no heartbeat sent); it must be quick and must not block. There is no
slow-consumer policy because there is no queue: a slow function slows the reader, and the
kernel's socket buffer and then TCP hold the venue back, as ``block`` would. Nothing is
dropped. Everything else of the reader stays as it is: the filter of desired symbols, the
rotation's de-duplication, staleness, lag, the counters.

A function that raises ends the feed, and ``open_feed`` raises that very exception
(:class:`CallbackFailed` carries it out of the actors, so that an ``OSError`` of the
user's is not taken for the connection's and retried).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, cast

import trio

from .._core.loss_report import LossReport
from .._values import MarketData, StreamKind

#: The groups a reader hands over: per stream kind, that kind's wanted items of one read.
Groups = Sequence[tuple[StreamKind, Sequence[MarketData]]]


class MarketHandOff(Protocol):
    """What a connection's reader needs of the place its market data goes."""

    def would_block(self, groups: Groups) -> bool:
        """Whether :meth:`put` would wait for room now."""
        ...

    def put_nowait(self, groups: Groups) -> int:
        """Hand the groups over without waiting; how many older items were dropped."""
        ...

    async def put(self, groups: Groups) -> int:
        """Hand the groups over, first waiting for room if need be; as :meth:`put_nowait`."""
        ...

    @property
    def gaps_unreported(self) -> bool:
        """Whether items were dropped that no ``gap`` event announced yet."""
        ...

    def gap_report(self, now: float) -> LossReport | None:
        """The drops to announce now, if any."""
        ...


class CallbackFailed(Exception):
    """The user's ``on_batch`` raised ``error``: the feed ends, and ``open_feed`` raises
    ``error`` itself (``_feed/unwrap.py``)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"on_batch raised {type(error).__name__}: {error}")
        self.error = error


class CallbackHandOff:
    """Calls ``callback(items)`` in the reader, once per read that brought wanted items.

    ``items`` is a new list the user may keep: the read's trades, then its books, then its
    quotes, each in arrival order (``get_batch``'s order). See the module docstring.
    """

    def __init__(self, callback: Callable[[list[MarketData]], object]) -> None:
        self._callback = callback
        self._closed = False
        #: Calls made and items handed over (``feed.statistics()["callback"]``).
        self.calls = 0
        self.items = 0

    def close(self) -> None:
        """The feed is closing: no call after this one."""
        self._closed = True

    def would_block(self, groups: Groups) -> bool:
        return False

    def put_nowait(self, groups: Groups) -> int:
        if self._closed:
            raise trio.ClosedResourceError("the feed is closed")
        if len(groups) == 1:  # the usual read: one kind (the reader's lists are new ones)
            batch = groups[0][1]
            if batch.__class__ is not list:
                batch = list(batch)
        else:
            batch = [item for _, items in groups for item in items]
        if not batch:
            return 0
        self.calls += 1
        self.items += len(batch)
        try:
            self._callback(cast(list[MarketData], batch))
        except Exception as exc:
            raise CallbackFailed(exc) from exc
        return 0

    async def put(self, groups: Groups) -> int:
        return self.put_nowait(groups)

    @property
    def gaps_unreported(self) -> bool:
        return False

    def gap_report(self, now: float) -> LossReport | None:
        return None

    def statistics(self) -> dict[str, int]:
        return {"calls": self.calls, "items": self.items}
