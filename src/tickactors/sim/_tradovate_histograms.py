"""Tradovate volume histograms (``md/subscribeHistogram``), built from the trade ledger.

Theory of operation
-------------------
A histogram is a contract's traded volume by price for one trade date. Every
trade the tick ledger records (``_tradovate_ticks.TickLedger.record``) is
added here too, so a histogram and a Tick chart always agree on the trades.
:class:`Histograms` keeps one :class:`Histogram` per contract, for the trade
date of its latest trade (the UTC day, as a Tick chart's ``td``): its
``base`` is the price of the day's first trade, in whole tick sizes, and
``volume`` maps an offset from it (in tick sizes) to the contracts traded
there. A trade on a later date starts a new histogram. Unlike the ledger it
is not bounded: a day has few price levels.

The wire shape (Tradovate's market-data request reference): an ``md`` event
``{"e":"md","d":{"histograms":[{...}]}}`` whose histogram is
``{"contractId", "timestamp", "tradeDate": {"year","month","day"}, "base",
"items": {"-14": 5906, ...}, "refresh"}``. ``base`` is a price
(``base * TICK_SIZE``); an item's key is the offset, as a string, so its
price is ``base + int(key) * TICK_SIZE``; its value the volume at that price.

**UNSURE, the sim's picks** (the reference shows one example and explains
neither): that the keys are offsets in tick sizes from ``base``; what
``refresh`` means. The simulator reads ``refresh: true`` as "this histogram
replaces what you had" and ``false`` as "these items replace theirs, the
others stand". ``SimConfig.tradovate_histogram`` chooses what is sent:

- ``"full"`` (the default, the reading every client survives): every
  histogram is the whole day's, with ``refresh: true``;
- ``"changes"``: the snapshot after a subscription, and the first histogram
  of a trade date (the contract's first trade included), are whole
  (``refresh: true``); after that each holds the one price level the trade
  changed, with its new total (``refresh: false``).

When they are sent (``_tradovate_requests`` and ``_tradovate_stream``): the
whole histogram follows the subscription's answer by
``SimConfig.tradovate_history_delay`` seconds (none if the contract never
traded), and only then one histogram per trade of the contract, until
``md/unsubscribeHistogram``. A histogram subscription keeps its contract
trading from the answer on, like a quote subscription or a chart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from ._tradovate_contracts import TICK_SIZE


def _day(ms: int) -> tuple[int, int, int]:
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return stamp.year, stamp.month, stamp.day


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@attrs.define(slots=True, eq=False)
class Histogram:
    """One contract's volume by price for one trade date (see the module docstring)."""

    contract_id: int
    day: tuple[int, int, int]
    base: int
    volume: dict[int, int] = attrs.field(factory=dict)
    last_ms: int = 0

    def add(self, ms: int, price: int, size: int) -> int:
        """Add one trade; its offset from ``base``."""
        offset = price - self.base
        self.volume[offset] = self.volume.get(offset, 0) + size
        self.last_ms = ms
        return offset

    def to_json(self, offsets: list[int] | None = None) -> dict[str, Any]:
        """The wire histogram: every level (``refresh: true``), or only ``offsets``
        (``refresh: false``)."""
        keys = sorted(self.volume) if offsets is None else offsets
        year, month, day = self.day
        return {
            "contractId": self.contract_id,
            "timestamp": _iso(self.last_ms),
            "tradeDate": {"year": year, "month": month, "day": day},
            "base": round(self.base * TICK_SIZE, 2),
            "items": {str(k): self.volume[k] for k in keys},
            "refresh": offsets is None,
        }


@attrs.frozen(slots=True)
class Change:
    """What one trade did to its contract's histogram."""

    histogram: Histogram
    offset: int
    new_day: bool


class Histograms:
    """The current histogram of every contract that traded (see the module docstring)."""

    def __init__(self) -> None:
        self._by_contract: dict[int, Histogram] = {}
        self._last: dict[int, Change] = {}

    def add(self, contract_id: int, ms: int, price: int, size: int) -> Change:
        """Record one trade (``price`` in tick sizes, ``ms`` epoch milliseconds)."""
        day = _day(ms)
        current = self._by_contract.get(contract_id)
        new_day = current is None or current.day != day
        if current is None or new_day:
            current = self._by_contract[contract_id] = Histogram(contract_id, day, price)
        change = self._last[contract_id] = Change(current, current.add(ms, price, size), new_day)
        return change

    def get(self, contract_id: int) -> Histogram | None:
        """The contract's histogram of its latest trade date, if it traded."""
        return self._by_contract.get(contract_id)

    def last_change(self, contract_id: int) -> Change | None:
        """What the contract's latest trade did, if it traded."""
        return self._last.get(contract_id)

    def update(self, contract_id: int, mode: str) -> dict[str, Any] | None:
        """The wire histogram to send after the contract's latest trade, per
        ``SimConfig.tradovate_histogram`` (``"full"`` or ``"changes"``)."""
        change = self._last.get(contract_id)
        if change is None:
            return None
        if mode == "full" or change.new_day:
            return change.histogram.to_json()
        return change.histogram.to_json([change.offset])


def event(histogram: dict[str, Any]) -> dict[str, Any]:
    """The ``md`` event carrying one wire histogram."""
    return {"e": "md", "d": {"histograms": [histogram]}}
