"""The Tradovate trade ledger and the tick-chart packets built from it.

Theory of operation
-------------------
Every simulated trade of a contract (one per quote the streamer generates,
see ``_tradovate_market``) is recorded once in :class:`TickLedger` as a
:class:`Tick` with the next tick ``id`` of that contract (1, 2, 3, ...),
its wall time in milliseconds, and its price, bid and ask in whole tick
sizes (``TICK_SIZE``; the walk's prices have two decimals, so they are
exact). The ledger keeps the last ``LEDGER_SIZE`` ticks per contract:
that is as far back as a chart's history reaches. Like AllTick's trades, a
contract trades only while someone streams it (a quote subscription, a
ghost of one, or a Tick chart); ``stats.tradovate_ticks[name]`` is the
:class:`._stats.SeqRun` of every tick ever recorded, the source of truth a
test counts a chart against, and :meth:`TickLedger.history` what is still kept.
Each trade also goes into the contract's volume histogram
(:attr:`TickLedger.histograms`, ``_tradovate_histograms``).

:meth:`TickLedger.select` is a chart's history for ``timeRange``:
``asFarAsTimestamp`` keeps ticks at or after it (inclusive, to the
millisecond), ``closestTimestamp`` ticks at or before it, and
``asMuchAsElements`` the last N of what is left (without any of the three:
the last ``DEFAULT_ELEMENTS``). A timestamp is ISO 8601 (``...Z``).

A packet (:func:`packet`) is Tradovate's tick-chart shape: ``bp`` (base
price, in ticks) and ``bt`` (base time, epoch ms) are those of its first
tick, ``ts`` the tick size, ``td`` the trade date ``yyyymmdd`` (the UTC
day of ``bt``), ``s`` the source (``"db"`` for history, ``"rt"`` live),
and each of ``tks`` is ``{"t","p","s","b","a","bs","as","id"}`` with
``t``, ``p``, ``b`` and ``a`` relative to ``bt`` and ``bp``: the price is
``(bp + p) * ts`` and the time ``bt + t``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from ._stats import SimStats, _add_seq
from ._tradovate_contracts import TICK_SIZE, Contract
from ._tradovate_histograms import Histograms

LEDGER_SIZE: Final = 10_000
DEFAULT_ELEMENTS: Final = 10
PACKET_TICKS: Final = 500


@attrs.frozen(slots=True)
class Tick:
    """One trade: prices in whole tick sizes, ``ms`` wall time in epoch milliseconds."""

    id: int
    ms: int
    price: int
    size: int
    bid: int
    ask: int
    bid_size: int
    ask_size: int


class TickLedger:
    """The last ``LEDGER_SIZE`` trades of every contract (see the module docstring)."""

    def __init__(self, stats: SimStats, size: int = LEDGER_SIZE) -> None:
        self._stats, self._size = stats, size
        self._ticks: dict[int, deque[Tick]] = {}
        self._next: dict[int, int] = {}
        self.histograms = Histograms()

    def record(
        self,
        contract: Contract,
        wall: float,
        price: int,
        size: int,
        book: tuple[int, int, int, int],
    ) -> Tick:
        """Record one trade of ``contract``; ``book`` is (bid, ask, bid size, ask size)."""
        tick_id = self._next.get(contract.id, 1)
        self._next[contract.id] = tick_id + 1
        bid, ask, bid_size, ask_size = book
        tick = Tick(tick_id, round(wall * 1000), price, size, bid, ask, bid_size, ask_size)
        ticks = self._ticks.get(contract.id)
        if ticks is None:
            ticks = self._ticks[contract.id] = deque(maxlen=self._size)
        ticks.append(tick)
        self.histograms.add(contract.id, tick.ms, price, size)
        _add_seq(self._stats.tradovate_ticks, contract.name, tick_id)
        return tick

    def last(self, contract_id: int) -> Tick | None:
        """The latest tick of a contract, if any."""
        ticks = self._ticks.get(contract_id)
        return ticks[-1] if ticks else None

    def history(self, contract_id: int) -> tuple[Tick, ...]:
        """The kept ticks of a contract, oldest first."""
        return tuple(self._ticks.get(contract_id, ()))

    def select(self, contract_id: int, time_range: object) -> list[Tick] | str:
        """A chart's history for ``time_range``, oldest first, or an error text."""
        spec: Mapping[str, Any] = time_range if isinstance(time_range, Mapping) else {}
        since = _millis(spec.get("asFarAsTimestamp"))
        until = _millis(spec.get("closestTimestamp"))
        if isinstance(since, str):
            return since
        if isinstance(until, str):
            return until
        count = spec.get("asMuchAsElements")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            return f"Invalid asMuchAsElements: {count}"
        if since is None and until is None and count is None:
            count = DEFAULT_ELEMENTS
        ticks: Iterator[Tick] | list[Tick] = iter(self._ticks.get(contract_id, ()))
        if since is not None:
            ticks = (t for t in ticks if t.ms >= since)
        if until is not None:
            ticks = (t for t in ticks if t.ms <= until)
        picked = list(ticks)
        if count is not None:
            picked = picked[-count:] if count > 0 else []
        return picked


def _millis(stamp: object) -> int | str | None:
    if stamp is None:
        return None
    if not isinstance(stamp, str):
        return f"Invalid timestamp: {stamp}"
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return f"Invalid timestamp: {stamp}"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def _trade_date(ms: int) -> int:
    day = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return day.year * 10_000 + day.month * 100 + day.day


def packet(chart_id: int, ticks: Sequence[Tick], source: str) -> dict[str, Any]:
    """One tick-chart packet of ``ticks`` (at least one) for chart ``chart_id``."""
    bp, bt = ticks[0].price, ticks[0].ms
    return {
        "id": chart_id,
        "s": source,
        "td": _trade_date(bt),
        "bp": bp,
        "bt": bt,
        "ts": TICK_SIZE,
        "tks": [
            {
                "t": t.ms - bt,
                "p": t.price - bp,
                "s": t.size,
                "b": t.bid - bp,
                "a": t.ask - bp,
                "bs": t.bid_size,
                "as": t.ask_size,
                "id": t.id,
            }
            for t in ticks
        ],
    }


def history_events(chart_id: int, ticks: Sequence[Tick]) -> tuple[dict[str, Any], ...]:
    """``chart`` events of the history, ``PACKET_TICKS`` ticks a packet, the last one
    ending with the ``eoh`` marker (alone when there is no history)."""
    events: list[dict[str, Any]] = []
    for start in range(0, len(ticks), PACKET_TICKS):
        chunk = ticks[start : start + PACKET_TICKS]
        events.append({"e": "chart", "d": {"charts": [packet(chart_id, chunk, "db")]}})
    if not events:
        events.append({"e": "chart", "d": {"charts": []}})
    events[-1]["d"]["charts"].append({"id": chart_id, "eoh": True})
    return tuple(events)


@attrs.define(slots=True, eq=False)
class LiveBar:
    """The current bar of one live ``MinuteBar`` chart, updated by each trade.

    It starts as the last bar of the chart's seeded history (the bucket of
    the request); a trade in a later bucket opens a new bar at its price.
    A trade at the ask is an up tick (``upVolume``, ``upTicks``,
    ``offerVolume``), any other a down tick (``downVolume``, ``downTicks``,
    ``bidVolume``).
    """

    contract_id: int
    step_ms: int
    bucket_ms: int
    bar: dict[str, Any]

    def update(self, tick: Tick) -> dict[str, Any]:
        """Apply one trade; the bar to send (a copy)."""
        price = round(tick.price * TICK_SIZE, 2)
        bucket = tick.ms // self.step_ms * self.step_ms
        bar = self.bar
        if bucket != self.bucket_ms:
            self.bucket_ms = bucket
            bar = self.bar = {
                "timestamp": _iso_ms(bucket),
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "upVolume": 0,
                "downVolume": 0,
                "upTicks": 0,
                "downTicks": 0,
                "bidVolume": 0,
                "offerVolume": 0,
            }
        bar["high"], bar["low"] = max(bar["high"], price), min(bar["low"], price)
        bar["close"] = price
        side = ("upVolume", "upTicks", "offerVolume")
        if tick.price < tick.ask:
            side = ("downVolume", "downTicks", "bidVolume")
        bar[side[0]] += tick.size
        bar[side[1]] += 1
        bar[side[2]] += tick.size
        return dict(bar)


def _iso_ms(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def bar_event(chart_id: int, bar: dict[str, Any], ms: int) -> dict[str, Any]:
    """The ``chart`` event of one live bar update."""
    return {"e": "chart", "d": {"charts": [{"id": chart_id, "td": _trade_date(ms), "bars": [bar]}]}}


def live_event(chart_id: int, tick: Tick) -> dict[str, Any]:
    """The ``chart`` event of one live tick."""
    return {"e": "chart", "d": {"charts": [packet(chart_id, (tick,), "rt")]}}
