"""What one Tradovate connection streams: quote, DOM, histogram and chart subscriptions.

Theory of operation
-------------------
Incremental semantics, unlike AllTick: ``md/subscribeQuote`` ADDS one
contract, ``md/unsubscribeQuote`` removes that one and leaves the rest
(likewise DOM and histogram). Subscribing a contract twice is accepted and
changes nothing (the sim's pick: no reference counting); unsubscribing one
that is not subscribed is refused by the caller with 400. Maps are keyed by
contract id (quotes and DOMs name the contract by id on the wire) and keep
the symbol name for ``silence_symbol`` and ``subscribed()``.

A histogram subscription (like a live chart) keeps its contract trading:
:meth:`MdSubscriptions.streamed` puts it on the quote schedule.

Removed quote/DOM subscriptions may ghost: while ``faults.ghost(...)`` is
armed, :meth:`Faults.ghost_until` says how long a removed contract keeps
streaming (matched by its name); ghosts expire lazily when the streamer asks.
Every change reports through ``changed`` so the streamer can rescan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from ._faults import Faults
from ._tradovate_contracts import Contract
from ._tradovate_ticks import LiveBar

Kind = Literal["quote", "dom", "histogram"]
KINDS: Final[tuple[Kind, ...]] = ("quote", "dom", "histogram")


class MdSubscriptions:
    """Market-data subscriptions of one connection, ghosts included.

    Public attributes: ``quotes``, ``doms``, ``histograms`` (contract id ->
    name, in subscription order), ``histograms_pending`` (histograms whose first
    snapshot is not out yet: the streamer skips them), ``charts`` (chart id -> name, every chart),
    ``tick_charts`` (chart id -> contract id, the live Tick charts),
    ``bar_charts`` (chart id -> :class:`LiveBar`, the live MinuteBar charts) and
    ``quote_ghosts`` / ``dom_ghosts`` (contract id -> until).
    """

    def __init__(self, faults: Faults, changed: Callable[[], None]) -> None:
        self._faults, self._changed = faults, changed
        self.quotes: dict[int, str] = {}
        self.doms: dict[int, str] = {}
        self.histograms: dict[int, str] = {}
        self.histograms_pending: set[int] = set()  # subscribed, first snapshot not sent yet
        self.charts: dict[int, str] = {}
        self.tick_charts: dict[int, int] = {}
        self.bar_charts: dict[int, LiveBar] = {}
        self.quote_ghosts: dict[int, float] = {}
        self.dom_ghosts: dict[int, float] = {}

    def _maps(self, kind: Kind) -> tuple[dict[int, str], dict[int, float] | None]:
        if kind == "quote":
            return self.quotes, self.quote_ghosts
        if kind == "dom":
            return self.doms, self.dom_ghosts
        return self.histograms, None

    def subscribed(self) -> frozenset[str]:
        return frozenset(self.quotes.values()) | frozenset(self.doms.values())

    def by_kind(self) -> dict[str, frozenset[str]]:
        """What this connection streams (ghosts aside), by the client's stream kind."""
        return {"quotes": frozenset(self.quotes.values()), "book": frozenset(self.doms.values())}

    def add(self, kind: Kind, contract: Contract) -> None:
        live, ghosts = self._maps(kind)
        live[contract.id] = contract.name
        if ghosts is not None:
            ghosts.pop(contract.id, None)
        self._changed()

    def remove(self, kind: Kind, contract: Contract, now: float) -> bool:
        """Drop one subscription; False if it was not there."""
        live, ghosts = self._maps(kind)
        if kind == "histogram":
            self.histograms_pending.discard(contract.id)
        if live.pop(contract.id, None) is None:
            return False
        if ghosts is not None:
            until = self._faults.ghost_until(contract.name, now)
            if until is not None:
                ghosts[contract.id] = until
        self._changed()
        return True

    # ---- what the streamer asks ------------------------------------------------

    @staticmethod
    def _wanted(live: dict[int, str], ghosts: dict[int, float], cid: int, now: float) -> bool:
        if cid in live:
            return True
        until = ghosts.get(cid)
        if until is None:
            return False
        if now < until:
            return True
        del ghosts[cid]
        return False

    def wants_quote(self, cid: int, now: float) -> bool:
        return self._wanted(self.quotes, self.quote_ghosts, cid, now)

    def wants_dom(self, cid: int, now: float) -> bool:
        return self._wanted(self.doms, self.dom_ghosts, cid, now)

    def add_tick_chart(self, chart_id: int, contract: Contract) -> None:
        self.charts[chart_id] = contract.name
        self.tick_charts[chart_id] = contract.id
        self._changed()

    def add_bar_chart(self, chart_id: int, contract: Contract, bar: LiveBar) -> None:
        self.charts[chart_id] = contract.name
        self.bar_charts[chart_id] = bar
        self._changed()

    def cancel_chart(self, chart_id: int) -> bool:
        """Drop one chart (Tick or bars); False if it was not there."""
        if self.charts.pop(chart_id, None) is None:
            return False
        tick = self.tick_charts.pop(chart_id, None)
        if tick is not None or self.bar_charts.pop(chart_id, None) is not None:
            self._changed()
        return True

    def tick_charts_of(self, cid: int) -> list[int]:
        """The live Tick charts (ids) of contract ``cid``."""
        return [chart for chart, c in self.tick_charts.items() if c == cid]

    def bar_charts_of(self, cid: int) -> list[tuple[int, LiveBar]]:
        """The live MinuteBar charts (id, current bar) of contract ``cid``."""
        return [(chart, b) for chart, b in self.bar_charts.items() if b.contract_id == cid]

    def streamed(self, now: float) -> tuple[set[int], set[int]]:
        """(quote ids, DOM ids) this connection streams now, ghosts, live charts and
        histograms included (their contracts trade on the quote schedule)."""
        quotes = set(self.quotes) | {c for c, u in self.quote_ghosts.items() if now < u}
        quotes |= set(self.tick_charts.values()) | set(self.histograms)
        quotes |= {b.contract_id for b in self.bar_charts.values()}
        doms = set(self.doms) | {c for c, u in self.dom_ghosts.items() if now < u}
        return quotes, doms
