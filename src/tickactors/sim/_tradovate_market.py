"""Quotes, DOMs and chart bars for Tradovate contracts, from the shared random walk.

Theory of operation
-------------------
Prices come from :class:`._market.Market` (one seeded walk per symbol name,
two decimals), so a contract's quote, its DOM and a chart agree. One
:meth:`TradovateMarket.quote` takes one book snapshot: ``Bid``/``Offer`` are
its best levels, the ``Trade`` is at the bid or the offer, and
``TotalTradeVolume`` is that contract's running sum of trade sizes. The other
five entries of the documented quote come from the day's volume histogram
(``_tradovate_histograms``): ``OpeningPrice`` the day's first trade,
``HighPrice``/``LowPrice`` its extremes so far, ``SettlementPrice`` (the sim's
pick: there is no previous session) the opening price, and ``OpenInterest`` a
constant per contract. Tradovate's JavaScript tutorial renders all nine
entries of every quote, and fails on a quote that lacks one. Sizes
are contracts (the walk's board-lot volumes divided by 100). That trade is
recorded in the tick ledger (``_tradovate_ticks``), whatever the quote's
wire variant leaves out, so Tick charts and quotes show the same trades.

``SimConfig.wire_variants == "documented"`` (the default) always sends all
nine entries, complete, as the documented data message shows them. With
``"mixed"`` a quote may lack entries, and an entry may lack ``price`` or
``size``, as users report the venue sending them (``docs/venues.md``,
UNSURE): each entry is left out with probability 0.1, and a kept priced entry
loses ``price`` or ``size`` with probability 0.05, drawn from a seed-derived
stream.

Chart bars (``md/getChart``) are a short seeded history ending at the
current price: ``asMuchAsElements`` bars (default 10, at most 100) of
``elementSize`` minutes, in the field names of Tradovate's chart tutorial
(``timestamp, open, high, low, close, upVolume, downVolume, upTicks,
downTicks, bidVolume, offerVolume``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from . import _tradovate_protocol as proto
from ._hub import Hub
from ._tradovate_contracts import TICK_SIZE, Contract
from ._tradovate_ticks import TickLedger

DOM_LEVELS: Final = 10
MAX_BARS: Final = 100
P_ENTRY_MISSING: Final = 0.1
P_FIELD_MISSING: Final = 0.05


def _size(volume: str) -> int:
    return max(1, int(float(volume)) // 100)


def _ticks(price: str) -> int:
    return round(Decimal(price) / Decimal(str(TICK_SIZE)))


class TradovateMarket:
    """Wire-ready market data for contracts; see the module docstring."""

    def __init__(self, hub: Hub, ticks: TickLedger | None = None) -> None:
        self._hub = hub
        self.ticks = ticks
        self._rng = hub.rng("tradovate:entries")
        self._chart_rng = hub.rng("tradovate:chart")
        self._volume: defaultdict[int, int] = defaultdict(int)

    def quote(self, contract: Contract) -> dict[str, Any]:
        """``{"id", "contractId", "entries"}`` of the next quote (no timestamp)."""
        rng = self._rng
        book = self._hub.market.book(contract.name, 1, self._hub.wall_time())
        bid, bid_volume = book.bids[0]
        ask, ask_volume = book.asks[0]
        trade_size = rng.randint(1, 20)
        self._volume[contract.id] += trade_size
        trade = rng.choice((bid, ask))
        if self.ticks is not None:
            in_ticks = (_ticks(trade), _ticks(bid), _ticks(ask))
            sizes = (_size(bid_volume), _size(ask_volume))
            quoted = (in_ticks[1], in_ticks[2], *sizes)
            self.ticks.record(contract, self._hub.wall_time(), in_ticks[0], trade_size, quoted)
        opening = high = low = float(trade)
        histogram = self.ticks.histograms.get(contract.id) if self.ticks is not None else None
        if histogram is not None and histogram.volume:
            opening = round(histogram.base * TICK_SIZE, 2)
            high = round((histogram.base + max(histogram.volume)) * TICK_SIZE, 2)
            low = round((histogram.base + min(histogram.volume)) * TICK_SIZE, 2)
        entries: dict[str, dict[str, Any]] = {
            "Bid": {"price": float(bid), "size": _size(bid_volume)},
            "TotalTradeVolume": {"size": self._volume[contract.id]},
            "Offer": {"price": float(ask), "size": _size(ask_volume)},
            "LowPrice": {"price": low},
            "Trade": {"price": float(trade), "size": trade_size},
            "OpenInterest": {"size": 20_000 + contract.id % 30_000},
            "OpeningPrice": {"price": opening},
            "HighPrice": {"price": high},
            "SettlementPrice": {"price": opening},
        }
        if self._hub.config.wire_variants == "mixed":
            for name in list(entries):
                if rng.random() < P_ENTRY_MISSING:
                    del entries[name]
                elif len(entries[name]) == 2 and rng.random() < P_FIELD_MISSING:
                    del entries[name][rng.choice(("price", "size"))]
        return {"id": contract.id, "contractId": contract.id, "entries": entries}

    def dom(self, contract: Contract) -> dict[str, Any]:
        """``{"contractId", "bids", "offers"}`` of the next DOM (no timestamp)."""
        book = self._hub.market.book(contract.name, DOM_LEVELS, self._hub.wall_time())
        return {
            "contractId": contract.id,
            "bids": [{"price": float(p), "size": _size(v)} for p, v in book.bids],
            "offers": [{"price": float(p), "size": _size(v)} for p, v in book.asks],
        }

    @staticmethod
    def bar_seconds(minutes: object) -> int:
        """A bar's length in seconds for ``elementSize`` (minutes; default 1)."""
        step = minutes if isinstance(minutes, int) and not isinstance(minutes, bool) else 1
        return max(1, step) * 60

    def bars(
        self, contract: Contract, count: object, minutes: object, end_wall: float
    ) -> tuple[list[dict[str, Any]], int]:
        """(bars oldest first, trade date as ``yyyymmdd``) for ``md/getChart``."""
        n = count if isinstance(count, int) and not isinstance(count, bool) else 10
        n = max(1, min(MAX_BARS, n))
        step = self.bar_seconds(minutes)
        rng = self._chart_rng
        close = float(self._hub.market.book(contract.name, 1, end_wall).bids[0][0])
        last = int(end_wall // step) * step
        bars: list[dict[str, Any]] = []
        for k in range(n):
            move = round(rng.uniform(-1.0, 1.0) * close * 0.002, 2)
            open_ = round(max(0.01, close - move), 2)
            high = round(max(open_, close) + rng.randint(0, 8) * 0.01, 2)
            low = round(max(0.01, min(open_, close) - rng.randint(0, 8) * 0.01), 2)
            up, down = rng.randint(10, 500), rng.randint(10, 500)
            bars.append(
                {
                    "timestamp": proto.iso(last - k * step),
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "upVolume": up,
                    "downVolume": down,
                    "upTicks": up // 3 + 1,
                    "downTicks": down // 3 + 1,
                    "bidVolume": down,
                    "offerVolume": up,
                }
            )
            close = open_
        day = datetime.fromtimestamp(end_wall, tz=UTC)
        return bars[::-1], day.year * 10_000 + day.month * 100 + day.day
