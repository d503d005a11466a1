"""The Tradovate streamer: one task that turns the market into quote and DOM events.

Theory of operation
-------------------
As on the AllTick side, the market is shared: each contract quotes once per
``tick_interval`` (jittered x0.5..1.5) and shows its DOM once per
``book_interval``, whoever listens, and each quote or DOM is fanned out to
every connection that streams that contract (a subscription or a ghost of
one). A heap holds ``(due, n, contract id, stream)``; a contract enters it
when some connection starts streaming it (first event within one interval)
and leaves when its entry falls due with no listener. During a stall the
streamer waits; contracts whose symbol is under ``silence_symbol`` are
skipped. ``SimConfig.firehose`` does not apply to this venue.

Each listener gets ``a[{"e":"md","d":{"quotes":[...]}}]`` (or ``doms``)
stamped with its own clock: wall time, or replay time on a replay socket
whose clock is running; one encoding is shared by all listeners with the
same stamp. Pushes are queued without waiting; a client that cannot keep up
is dropped by its connection as a slow consumer.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import trio

from . import _tradovate_protocol as proto
from ._faults import Faults
from ._hub import Hub
from ._tradovate_connection import TradovateConnection
from ._tradovate_contracts import Contracts
from ._tradovate_market import TradovateMarket

_QUOTE = 0
_DOM = 1
_YIELD_EVERY = 64


class TradovateStreamer:
    """Feeds every live :class:`TradovateConnection` of one simulator."""

    def __init__(
        self, hub: Hub, faults: Faults, contracts: Contracts, market: TradovateMarket
    ) -> None:
        self._hub, self._faults, self._contracts, self._market = hub, faults, contracts, market
        self._rng = hub.rng("tradovate:stream")
        self._heap: list[tuple[float, int, int, int]] = []
        self._scheduled: set[tuple[int, int]] = set()
        self._counter = 0
        self._dirty = True
        self._wake = trio.Event()
        hub.on_subscriptions_changed(self.notify)

    @property
    def connections(self) -> list[TradovateConnection]:
        return [c for c in self._hub.connections.values() if isinstance(c, TradovateConnection)]

    def notify(self) -> None:
        self._dirty = True
        self._wake.set()

    async def _wait_for_news(self, deadline: float = float("inf")) -> None:
        if not self._dirty:
            with trio.move_on_at(deadline):
                await self._wake.wait()
        if self._wake.is_set():
            self._wake = trio.Event()

    def _schedule(self, due: float, cid: int, stream: int) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, cid, stream))
        self._scheduled.add((cid, stream))

    def _rescan(self, now: float) -> None:
        self._dirty = False
        config = self._hub.config
        for conn in self.connections:
            quotes, doms = conn.streamed(now)
            for cid in sorted(quotes):
                if (cid, _QUOTE) not in self._scheduled:
                    self._schedule(now + self._rng.uniform(0, config.tick_interval), cid, _QUOTE)
            for cid in sorted(doms):
                if (cid, _DOM) not in self._scheduled:
                    self._schedule(now + self._rng.uniform(0, config.book_interval), cid, _DOM)

    async def run(self) -> None:
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
            _, _, cid, stream = heapq.heappop(self._heap)
            if stream == _QUOTE:
                listening = self._push(cid, now, _QUOTE)
                interval = config.tick_interval
            else:
                listening = self._push(cid, now, _DOM)
                interval = config.book_interval
            if listening:
                self._schedule(now + interval * self._rng.uniform(0.5, 1.5), cid, stream)
            else:
                self._scheduled.discard((cid, stream))
            done += 1
            if done % _YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()

    def _push(self, cid: int, now: float, stream: int) -> bool:
        contract = self._contracts.item(cid)
        if contract is None:
            return False
        if stream == _QUOTE:
            listeners = [c for c in self.connections if c.wants_quote(cid, now)]
        else:
            listeners = [c for c in self.connections if c.wants_dom(cid, now)]
        if not listeners or self._faults.silenced(contract.name, now):
            return bool(listeners)
        body = self._market.quote(contract) if stream == _QUOTE else self._market.dom(contract)
        event: Callable[[Any, str], dict[str, Any]] = (
            proto.quote_event if stream == _QUOTE else proto.dom_event
        )
        encoded: dict[str, bytes] = {}
        for conn in listeners:
            stamp = proto.iso(conn.market_wall(now))
            payload = encoded.get(stamp)
            if payload is None:
                payload = encoded[stamp] = proto.array_frame([event(body, stamp)])
            conn.deliver(payload, contract.name)
        return True
