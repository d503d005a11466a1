"""The Tradovate streamer: one task that turns the market into quote and DOM events.

Theory of operation
-------------------
As on the AllTick side, the market is shared: each contract quotes once per
``tick_interval`` (jittered x0.5..1.5) and shows its DOM once per
``book_interval``, whoever listens, and each quote or DOM is fanned out to
every connection that streams that contract (a subscription or a ghost of
one). The scheduling is the shared paced loop (:mod:`._streamer`), keyed
by contract id (rescanned in id order); contracts whose symbol is under ``silence_symbol`` are
skipped. ``SimConfig.firehose`` does not apply to this venue.

Each listener gets ``a[{"e":"md","d":{"quotes":[...]}}]`` (or ``doms``)
stamped with its own clock: wall time, or replay time on a replay socket
whose clock is running; one encoding is shared by all listeners with the
same stamp. Pushes are queued without waiting; a client that cannot keep up
is dropped by its connection as a slow consumer.

A contract with a live chart (``md/getChart``, ``underlyingType``
``"Tick"`` or ``"MinuteBar"``) is on the quote schedule too, quote
subscribers or not: each quote is one trade, recorded in the tick ledger
(``_tradovate_ticks``); every Tick chart of the contract gets it as one
``chart`` packet on its realtime id, and every MinuteBar chart its current
bar updated by it (:class:`._tradovate_ticks.LiveBar`), before that quote
goes to the quote listeners. A contract with a histogram subscription is on
the quote schedule as well: after each of its trades every connection
subscribed to its histogram gets one ``md`` histogram event
(``_tradovate_histograms``, ``SimConfig.tradovate_histogram``), first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import _tradovate_protocol as proto
from ._faults import Faults
from ._hub import Hub
from ._streamer import FAST, PacedStreamer
from ._tradovate_connection import TradovateConnection
from ._tradovate_contracts import Contracts
from ._tradovate_histograms import event as histogram_event
from ._tradovate_market import TradovateMarket
from ._tradovate_ticks import LiveBar, bar_event, live_event


class TradovateStreamer(PacedStreamer[int, TradovateConnection]):
    """Feeds every live :class:`TradovateConnection` of one simulator."""

    _kind = TradovateConnection

    def __init__(
        self, hub: Hub, faults: Faults, contracts: Contracts, market: TradovateMarket
    ) -> None:
        super().__init__(hub, faults, "tradovate:stream")
        self._contracts, self._market = contracts, market

    async def run(self) -> None:
        await self._run_paced()

    def _ordered(self, keys: set[int]) -> Iterable[int]:
        return sorted(keys)

    def _push(self, cid: int, now: float, stream: int) -> bool:
        contract = self._contracts.item(cid)
        if contract is None:
            return False
        charting: list[tuple[TradovateConnection, list[int]]] = []
        barring: list[tuple[TradovateConnection, list[tuple[int, LiveBar]]]] = []
        histing: list[TradovateConnection] = []
        if stream == FAST:
            listeners = [c for c in self.connections if c.wants_quote(cid, now)]
            charting = [(c, ids) for c in self.connections if (ids := c.subs.tick_charts_of(cid))]
            barring = [(c, bars) for c in self.connections if (bars := c.subs.bar_charts_of(cid))]
            histing = [c for c in self.connections if cid in c.subs.histograms]
        else:
            listeners = [c for c in self.connections if c.wants_dom(cid, now)]
        wanted = bool(listeners or charting or barring or histing)
        histing = [c for c in histing if cid not in c.subs.histograms_pending]
        if not wanted or self._faults.silenced(contract.name, now):
            return wanted
        body = self._market.quote(contract) if stream == FAST else self._market.dom(contract)
        ledger = self._market.ticks
        if stream == FAST and ledger is not None and self._hub.config.record_trade_times:
            traded = ledger.last(cid)
            if traded is not None:
                self._hub.stats.trade_timed(contract.name, traded.id, now)
        if histing and ledger is not None:
            update = ledger.histograms.update(cid, self._hub.config.tradovate_histogram)
            if update is not None:
                frame = proto.array_frame([histogram_event(update)])
                for conn in histing:
                    conn.deliver(frame, contract.name)
        tick = ledger.last(cid) if (charting or barring) and ledger is not None else None
        if tick is not None:
            for conn, chart_ids in charting:
                for chart_id in chart_ids:
                    frame = proto.array_frame([live_event(chart_id, tick)])
                    conn.deliver(frame, contract.name)
            for conn, bars in barring:
                for chart_id, bar in bars:
                    update = bar_event(chart_id, bar.update(tick), tick.ms)
                    conn.deliver(proto.array_frame([update]), contract.name)
        event: Callable[[Any, str], dict[str, Any]] = (
            proto.quote_event if stream == FAST else proto.dom_event
        )
        encoded: dict[str, bytes] = {}
        for conn in listeners:
            stamp = proto.iso(conn.market_wall(now))
            payload = encoded.get(stamp)
            if payload is None:
                payload = encoded[stamp] = proto.array_frame([event(body, stamp)])
            conn.deliver(payload, contract.name)
        return True
