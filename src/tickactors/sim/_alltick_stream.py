"""The streamer: one task that turns the market into 22998/22999 pushes for every connection.

Theory of operation
-------------------
The market is shared, as at a real venue: each code trades once per
``tick_interval`` (jittered x0.5..1.5) whoever listens, and that one trade
is fanned out to every connection that streams the code (its subscription,
or a ghost of it): one payload, queued to each. So two connections subscribed
to the same code see the same prices and the same strictly increasing
``seq``, and a connection that subscribes while another streams the code
joins the same sequence: the overlap of a make-before-break rotation holds
the same trades on both. Every generated trade goes into
``stats.trades_generated`` (and, with ``record_connections``, each written
push into ``stats.trades_by_connection``; see :mod:`._stats`).

Normal mode is the shared paced loop (:mod:`._streamer`): a heap of due
``(code, stream)`` pushes, a code leaving it once nobody listens, waiting
while a stall holds; codes under ``silence_symbol`` are
skipped (no trade happens for them, so ``seq`` has no gap). Depth snapshots
use ``book_interval`` and are cut to each listener's ``depth_level``; forex,
metals and commodity books (``_market.top_of_book_only``) are cut to one level
without volumes unless ``SimConfig.fx_depth == "full"``.
Pushes are queued without waiting: a client that cannot keep up is dropped
by its connection as a slow consumer.

Firehose mode (``SimConfig.firehose``, for benchmarks) loops over the
streamed codes round-robin and queues trade frames with a waiting send, so
the socket's backpressure paces it; it sends no depth snapshots. With
``SimConfig.wire="varied"`` each frame's ``seq``/``tick_time`` variant comes from
a seed-derived random stream of its own (``"stream:wire"``), so the wire shape
never changes the timing.
"""

from __future__ import annotations

from collections import defaultdict

import trio

from . import _alltick_protocol as proto
from ._alltick_connection import AllTickConnection
from ._faults import Faults
from ._hub import Hub
from ._market import top_of_book_only
from ._streamer import FAST, YIELD_EVERY, PacedStreamer


class AllTickStreamer(PacedStreamer[str, AllTickConnection]):
    """Feeds every live :class:`AllTickConnection` of one simulator."""

    _kind = AllTickConnection

    def __init__(self, hub: Hub, faults: Faults) -> None:
        super().__init__(hub, faults, "stream")
        self._wire_rng = hub.rng("stream:wire")

    def _variant(self) -> proto.Variant:
        return proto.choose_variant(self._wire_rng, self._hub.config.wire)

    async def run(self) -> None:
        if self._hub.config.firehose:
            await self._run_firehose()
        else:
            await self._run_paced()

    # ---- normal mode -----------------------------------------------------------

    def _push(self, key: str, now: float, stream: int) -> bool:
        return self._push_trade(key, now) if stream == FAST else self._push_depth(key, now)

    def _push_trade(self, code: str, now: float) -> bool:
        listeners = [c for c in self.connections if c.wants_trade(code, now)]
        if listeners and not self._faults.silenced(code, now):
            trade = self._hub.market.trade(code, self._hub.wall_time())
            self._hub.stats.trade_generated(code, trade.seq)
            if self._hub.config.record_trade_times:
                self._hub.stats.trade_timed(code, trade.seq, now)
            payload = proto.encode_trade(trade, self._variant())
            for conn in listeners:
                conn.deliver(payload, code, trade.seq)
        return bool(listeners)

    def _push_depth(self, code: str, now: float) -> bool:
        top_only = self._hub.config.fx_depth == "top" and top_of_book_only(code)
        by_level: dict[int, list[AllTickConnection]] = defaultdict(list)
        for conn in self.connections:
            level = conn.depth_level(code, now)
            if level:
                by_level[min(level, 1) if top_only else level].append(conn)
        if by_level and not self._faults.silenced(code, now):
            book = self._hub.market.book(code, max(by_level), self._hub.wall_time())
            variant = self._variant()
            for level, conns in by_level.items():
                payload = proto.encode_book(book, level, variant, volumes=not top_only)
                for conn in conns:
                    conn.deliver(payload, code)
        return bool(by_level)

    # ---- firehose mode ---------------------------------------------------------

    async def _run_firehose(self) -> None:
        codes: list[str] = []
        while True:
            if self._faults.stalled():
                await self._faults.wait_unstalled()
            now = trio.current_time()
            if self._dirty:
                self._dirty = False
                wanted: set[str] = set()
                for conn in self.connections:
                    wanted |= conn.streamed(now)[0]
                codes = sorted(wanted)
            if not codes:
                await self._wait_for_news()
                continue
            conns = self.connections
            sent = 0
            for code in codes:
                now = trio.current_time()
                if not self._faults.silenced(code, now):
                    listeners = [c for c in conns if c.wants_trade(code, now)]
                    if listeners:
                        trade = self._hub.market.trade(code, self._hub.wall_time())
                        self._hub.stats.trade_generated(code, trade.seq)
                        if self._hub.config.record_trade_times:
                            self._hub.stats.trade_timed(code, trade.seq, now)
                        payload = proto.encode_trade(trade, self._variant())
                        sent += 1
                        for conn in listeners:
                            await conn.deliver_wait(payload, code, trade.seq)
                        if sent % YIELD_EVERY == 0:
                            await trio.lowlevel.checkpoint()
                if self._dirty or self._faults.stalled():
                    break
            if not sent:  # everything silenced or ghosts expired: do not spin
                self._dirty = True
                await trio.sleep(self._hub.config.tick_interval)
