"""Tradovate Tick charts as the feed's trades (``kind=TRADES``), sans-I/O.

Theory of operation
-------------------
Tradovate streams trades only as *Tick charts*. ``md/getChart`` with the
``chartDescription`` ``{"underlyingType": "Tick", "elementSize": 1,
"elementSizeUnit": "UnderlyingUnits", "withHistogram": false}`` and a
``timeRange`` is answered ``{"historicalId": H, "realtimeId": R}``; then ``chart``
events carry packets ``{"id", "s", "td", "bp", "bt", "ts", "tks": [...]}``: the
history the range asked for, an ``{"id", "eoh": true}`` marker, and live ticks
until ``md/cancelChart`` ``{"subscriptionId": H}``. A tick ``{"t", "p", "s", "b",
"a", "bs", "as", "id"}`` is relative to its packet: its price is ``(bp + p) * ts``
(``b`` and ``a`` likewise), its time ``bt + t`` ms; ``b``, ``a``, ``bs``, ``as``
(and ``s``) may be missing. :class:`TickCharts` is the dialect's memory of them,
for the feed's life.

*Which chart is whose.* Encoding a getChart remembers request id -> symbol; the
answer with that ``i`` teaches the chart's ids *on the connection it arrived on*
(the reader's ``MarketBatch.connection``). A packet is read only on that
connection, under either of the chart's ids (packets may name the historicalId or
the realtimeId; the simulator gives both the same value). A chart lives until
``md/cancelChart`` is encoded for it or its connection is gone
(:meth:`TickCharts.connection_closed`). A packet of any other chart (cancelled,
of a dead connection, not ours, not answered yet) is a *ghost*: dropped whole and
counted (``chart_ghosts``); neither the user nor the ghost filter ever sees it.
Unsubscribing cancels the symbol's newest chart on the connection the request
goes on. With none known there (its getChart was never answered) the cancel names
subscription 0: the venue refuses it, and the reconciler takes that refusal as
"not subscribed". A chart that lives on regardless (a getChart answered after its
resend was answered too) delivers under its symbol, deduplicated; once nobody
wants the symbol its ticks are the reconciler's ghosts, and the ghost rule's
repeated unsubscribe cancels it.

*Each trade once.* Every symbol has a mark for the dialect's life (the feed's;
a feed opened again on the same venue object resumes from it too): the highest
tick id delivered, and its time. A tick whose id is not above the mark was delivered
already (by this chart's history, by the other connection of a rotation, before
a reconnect): it is dropped and counted (``trade_duplicates``), and costs its
checks, not a ``Tick``. Only the order of tick ids is relied on: they rise with
time (the simulator counts 1, 2, 3 per contract; Tradovate's example shows
11768401, perhaps one sequence across contracts). **UNSURE: the order of a
chart's ticks.** The simulator sends each chart's ticks oldest first, and so does
this module expect; Tradovate's tutorial sorts what it draws by time. A tick that
arrives after a later one of its symbol is counted as a duplicate, never
delivered twice.

*No hole across a reconnect.* A getChart for a symbol that had a chart, not
cancelled since (lost with its connection, or still live on the old connection
of a rotation), asks ``asFarAsTimestamp``: the mark's time, ISO 8601 to the
millisecond. The simulator is inclusive to the millisecond, so the history
starts with the last tick delivered (a duplicate) and nothing after it is
missing. Any other getChart (the symbol's first, or the first after an
unsubscribe) asks ``asMuchAsElements`` :data:`FIRST_HISTORY` (1): the last trade
before the subscription, so that a quiet contract shows its price at once.
History reaches as far back as the
venue keeps it (the simulator: 10,000 ticks a contract). When a resumed chart's
first tick is beyond mark + 1, it did not reach back: a
:attr:`~._dialect.NoticeKind.TRADE_GAP` notice names the symbol, the last id
delivered and the first one after it, and ``trade_gaps`` and ``trades_missed``
(the ids in between; an upper bound if ids span contracts) count them.

*Strictness.* A packet that breaks the shape (not an object, an ``id``, ``bp``,
``bt``, ``t``, ``p``, ``b`` or ``a`` that is not an integer, a ``ts`` that is not
a positive number, a price, time or size out of range) is a ``ProtocolError`` for
its frame. A frame decodes whole or not at all: the dialect takes its trades out
again and calls :meth:`TickCharts.rollback`, which puts back the marks, the
first-tick checks and the counters the frame changed (:meth:`TickCharts.commit`
ends a frame that decoded). What answers taught stays: the venue did open those
charts.

*Cost.* A packet allocates its ticks (the ``Tick``, its ``Decimal`` price and
volume, and ``fields`` with ``bid``, ``ask``, ``bid_size``, ``ask_size`` where
given) and nothing else; a duplicate allocates nothing. The tick size's
``Decimal`` is kept from one packet to the next. Prices are exact whatever the
decimal context: ``ts`` times the price's ticks where the context's precision
holds the product, else built from the exact integer product.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from .._errors import ProtocolError
from .._values import Tick
from ._dialect import MAX_NUMBER, MIN_PRICE, Answer, AnswerKind, Notice, NoticeKind
from ._tradovate_wire import MAX_ID

#: Ticks of history a symbol's first chart asks for (``asMuchAsElements``).
FIRST_HISTORY: Final = 1
#: A Tick chart of every trade, without histogram.
CHART_DESCRIPTION: Final[Mapping[str, Any]] = {
    "underlyingType": "Tick",
    "elementSize": 1,
    "elementSizeUnit": "UnderlyingUnits",
    "withHistogram": False,
}
#: getChart requests remembered while unanswered (the oldest is forgotten first).
MAX_PENDING: Final = 4096
#: Epoch milliseconds before the year 10000 (a tick time ``datetime`` can print).
MAX_MS: Final = 253_402_300_800_000
_MIN_PRICE: Final = float(MIN_PRICE)
_MAX_FLOAT: Final = float(MAX_NUMBER)
_MAX_DIGITS: Final = MAX_NUMBER.adjusted()  # 30: MAX_NUMBER is 10**30


class _Mark:
    """A symbol's trades so far: the highest tick id delivered (-1: none) and its time.

    ``resume``: its next getChart asks for history back to the mark (a chart of it was
    opened and not cancelled since). ``saved_*`` and ``frame``: the values before the
    frame being decoded changed them (for a rollback).
    """

    __slots__ = ("frame", "last", "ms", "resume", "saved_last", "saved_ms")

    def __init__(self) -> None:
        self.last = -1
        self.ms = 0
        self.resume = False
        self.saved_last = -1
        self.saved_ms = 0
        self.frame = -1


class _Chart:
    """One Tick chart of one connection: its symbol, its ids, its first-tick check."""

    __slots__ = ("check", "frame", "ids", "mark", "saved_check", "subscription", "symbol")

    def __init__(
        self, symbol: str, mark: _Mark, subscription: int, ids: tuple[int, ...], check: bool
    ) -> None:
        self.symbol = symbol
        self.mark = mark
        self.subscription = subscription  # what md/cancelChart names: the historicalId
        self.ids = ids
        self.check = check  # resumed: is its first tick beyond the mark + 1?
        self.saved_check = check
        self.frame = -1


class TickCharts:
    """The Tick charts of a feed's connections, and each symbol's mark (module docstring)."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[str, bool]] = {}  # request id -> (symbol, resumed)
        self._live: dict[int, dict[int, _Chart]] = {}  # connection -> chart id -> chart
        self._marks: dict[str, _Mark] = {}
        #: A frame with chart packets is being decoded (``commit`` or ``rollback`` ends it).
        self.in_frame = False
        self._frame = 0
        self._marks_touched: list[_Mark] = []
        self._charts_touched: list[_Chart] = []
        # the tick size of the last packet, as given and as used
        self._ts: object = None
        self._prec = 0
        self._ts_decimal = Decimal(1)
        self._ts_coefficient = 1
        self._ts_exponent = 0
        self._ts_exact = 0  # prices of fewer ticks multiply exactly in the context
        self._ts_units = 0  # the most ticks a price may have (below MAX_NUMBER)
        # counters, and their values when the current frame began
        self.opened = 0
        self.cancelled = 0
        self.trades = 0
        self.duplicates = 0
        self.ghosts = 0
        self.gaps = 0
        self.missed = 0
        self._saved_trades = self._saved_duplicates = self._saved_ghosts = 0
        self._saved_gaps = self._saved_missed = 0

    # -- requests --------------------------------------------------------------------

    def get_chart(self, symbol: str, target: str | int, request_id: int) -> dict[str, Any]:
        """The body of ``md/getChart`` for ``symbol`` (``target``: its name or id on the
        wire), remembered under ``request_id`` until answered."""
        mark = self._marks.get(symbol)
        resume = mark is not None and mark.resume and mark.last >= 0
        time_range: dict[str, Any]
        if mark is not None and resume:
            time_range = {"asFarAsTimestamp": iso_ms(mark.ms)}
        else:
            time_range = {"asMuchAsElements": FIRST_HISTORY}
        pending = self._pending
        pending[request_id] = (symbol, resume)
        if len(pending) > MAX_PENDING:
            del pending[next(iter(pending))]
        return {"symbol": target, "chartDescription": CHART_DESCRIPTION, "timeRange": time_range}

    def cancel_chart(self, symbol: str, connection: int) -> int:
        """The ``subscriptionId`` that cancels ``symbol``'s newest chart on ``connection``
        (0 when none is known there); the chart is a ghost from now on."""
        live = self._live.get(connection)
        chart: _Chart | None = None
        if live:
            for candidate in reversed(live.values()):
                if candidate.symbol == symbol:
                    chart = candidate
                    break
        subscription = 0
        if chart is not None and live is not None:
            for chart_id in chart.ids:
                live.pop(chart_id, None)
            self.cancelled += 1
            subscription = chart.subscription
        mark = self._marks.get(symbol)
        if mark is not None and not self._has_chart(symbol):
            mark.resume = False  # wanted again later: a fresh start, not the missed trades
        return subscription

    def _has_chart(self, symbol: str) -> bool:
        return any(c.symbol == symbol for live in self._live.values() for c in live.values())

    # -- answers and connections ---------------------------------------------------------

    def learn(self, answer: Answer, connection: int) -> Answer:
        """Learn the chart a getChart's answer opened on ``connection``; ``answer`` as it
        is, or REJECTED when it is OK but names no chart (nothing will ever come)."""
        entry = self._pending.pop(answer.request_id, None)
        if entry is None or answer.kind is not AnswerKind.OK:
            return answer
        symbol, resumed = entry
        data = answer.data
        historical = realtime = None
        if type(data) is dict:
            historical = _chart_id(data.get("historicalId"))
            realtime = _chart_id(data.get("realtimeId"))
        if historical is None and realtime is None:
            return Answer(
                answer.request_id,
                AnswerKind.REJECTED,
                answer.code,
                "md/getChart answered without a chart id",
                data=data,
            )
        ids = tuple(dict.fromkeys(i for i in (historical, realtime) if i is not None))
        mark = self._marks.get(symbol)
        if mark is None:
            mark = self._marks[symbol] = _Mark()
        chart = _Chart(symbol, mark, ids[0], ids, check=resumed and mark.last >= 0)
        live = self._live.setdefault(connection, {})
        for chart_id in ids:
            live[chart_id] = chart
        mark.resume = True
        self.opened += 1
        return answer

    def connection_closed(self, connection: int) -> None:
        """Its charts are gone with it (their symbols still resume from their marks)."""
        self._live.pop(connection, None)

    def is_pending(self, request_id: int) -> bool:
        """Whether ``request_id`` is a getChart waiting for its answer."""
        return request_id in self._pending

    # -- packets -------------------------------------------------------------------------

    def packets(
        self, data: object, connection: int, received_at: float, trades: list[Tick]
    ) -> list[Notice] | None:
        """A ``chart`` event's packets: trades of live charts into ``trades`` (each id once
        per symbol), ghosts counted; the ``TRADE_GAP`` notices, if any."""
        if type(data) is not dict:
            raise ProtocolError("a chart event without a d object")
        charts = data.get("charts")
        if type(charts) is not list:
            raise ProtocolError("a chart event without a charts list")
        if not self.in_frame:
            self._begin()
        live = self._live.get(connection)
        notices: list[Notice] | None = None
        for packet in charts:
            if type(packet) is not dict:
                raise ProtocolError("a chart packet is not an object")
            chart_id = packet.get("id")
            if type(chart_id) is not int:
                raise ProtocolError("a chart packet without an integer id")
            chart = None if live is None else live.get(chart_id)
            if chart is None:
                self.ghosts += 1
                continue
            ticks = packet.get("tks")
            if ticks is None:
                continue  # the end-of-history marker (or a packet of nothing)
            notice = self._ticks(chart, packet, ticks, received_at, trades)
            if notice is not None:
                if notices is None:
                    notices = []
                notices.append(notice)
        return notices

    def _ticks(
        self,
        chart: _Chart,
        packet: dict[str, Any],
        ticks: object,
        received_at: float,
        out: list[Tick],
    ) -> Notice | None:
        if type(ticks) is not list:
            raise ProtocolError("a chart packet whose tks is not a list")
        bp, bt = packet.get("bp"), packet.get("bt")
        if type(bp) is not int or type(bt) is not int:
            raise ProtocolError("a tick packet whose bp or bt is not an integer")
        self._tick_size(packet.get("ts"))
        most, exact, tick_size = self._ts_units, self._ts_exact, self._ts_decimal
        mark = chart.mark
        frame = self._frame
        if mark.frame != frame:
            mark.frame, mark.saved_last, mark.saved_ms = frame, mark.last, mark.ms
            self._marks_touched.append(mark)
        if chart.frame != frame:
            chart.frame, chart.saved_check = frame, chart.check
            self._charts_touched.append(chart)
        last, last_ms = mark.last, mark.ms
        symbol = chart.symbol
        notice: Notice | None = None
        append = out.append
        for tick in ticks:
            if type(tick) is not dict:
                raise ProtocolError("a tick is not an object")
            tick_id, t, p = tick.get("id"), tick.get("t"), tick.get("p")
            if type(tick_id) is not int or type(t) is not int or type(p) is not int:
                raise ProtocolError("a tick whose id, t or p is not an integer")
            units, ms = bp + p, bt + t
            if not 0 < units <= most:
                raise ProtocolError("a tick price out of range")
            if not 0 <= ms < MAX_MS or not 0 <= tick_id < MAX_ID:
                raise ProtocolError("a tick time or id out of range")
            volume, bid, ask = tick.get("s"), tick.get("b"), tick.get("a")
            bid_size, ask_size = tick.get("bs"), tick.get("as")
            if volume is not None:
                _check_size(volume)
            if bid is not None:
                bid = _units(bid, bp, most)
            if ask is not None:
                ask = _units(ask, bp, most)
            if bid_size is not None:
                _check_size(bid_size)
            if ask_size is not None:
                _check_size(ask_size)
            if chart.check:
                chart.check = False
                if tick_id > last + 1:
                    notice = self._gap(symbol, last, tick_id)
            if tick_id <= last:
                self.duplicates += 1
                continue
            last, last_ms = tick_id, ms
            fields: dict[str, Decimal] = {}
            if bid is not None:
                fields["bid"] = self._price(bid)
            if ask is not None:
                fields["ask"] = self._price(ask)
            if bid_size is not None:
                fields["bid_size"] = _size(bid_size)
            if ask_size is not None:
                fields["ask_size"] = _size(ask_size)
            append(
                Tick(
                    symbol,
                    tick_size * units if units < exact else self._price(units),
                    None if volume is None else _size(volume),
                    ms / 1000,
                    tick_id,
                    received_at,
                    fields,
                )
            )
            self.trades += 1
        mark.last, mark.ms = last, last_ms
        return notice

    def _gap(self, symbol: str, last: int, first: int) -> Notice:
        missing = first - last - 1
        self.gaps += 1
        self.missed += missing
        return Notice(
            NoticeKind.TRADE_GAP,
            text=symbol,
            data={"symbol": symbol, "after": last, "first": first, "missing": missing},
        )

    def _tick_size(self, ts: object) -> None:
        """Make ``ts`` the tick size in use (kept while packets repeat it)."""
        prec = decimal.getcontext().prec
        if ts == self._ts and type(ts) is type(self._ts) and prec == self._prec:
            return
        if type(ts) is float:
            if not _MIN_PRICE <= ts < _MAX_FLOAT:
                raise ProtocolError("a tick size out of range")
            value = Decimal(repr(ts))
        elif type(ts) is int:
            if not 0 < ts < _MAX_FLOAT:
                raise ProtocolError("a tick size out of range")
            value = Decimal(ts)
        else:
            raise ProtocolError("a tick packet without a numeric ts")
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite: the range checks above
        coefficient = int("".join(map(str, digits)))
        self._ts, self._prec, self._ts_decimal = ts, prec, value
        self._ts_coefficient, self._ts_exponent = coefficient, exponent
        self._ts_exact = 10 ** max(prec - len(digits), 0)
        # units * ts < MAX_NUMBER (10**30): units * coefficient < 10**(30 - exponent)
        self._ts_units = (10 ** (_MAX_DIGITS - exponent) - 1) // coefficient

    def _price(self, units: int) -> Decimal:
        """``units`` ticks as an exact ``Decimal``."""
        if units < self._ts_exact:
            return self._ts_decimal * units
        return Decimal(f"{units * self._ts_coefficient}E{self._ts_exponent}")

    # -- frames ----------------------------------------------------------------------------

    def _begin(self) -> None:
        self.in_frame = True
        self._frame += 1
        self._saved_trades, self._saved_duplicates = self.trades, self.duplicates
        self._saved_ghosts, self._saved_gaps, self._saved_missed = (
            self.ghosts,
            self.gaps,
            self.missed,
        )

    def commit(self) -> None:
        """The frame decoded: keep what it changed."""
        self.in_frame = False
        self._marks_touched.clear()
        self._charts_touched.clear()

    def rollback(self) -> None:
        """The frame did not decode: put back what it changed (answers' lessons aside)."""
        for mark in self._marks_touched:
            mark.last, mark.ms = mark.saved_last, mark.saved_ms
        for chart in self._charts_touched:
            chart.check = chart.saved_check
        self.trades, self.duplicates = self._saved_trades, self._saved_duplicates
        self.ghosts, self.gaps, self.missed = (
            self._saved_ghosts,
            self._saved_gaps,
            self._saved_missed,
        )
        self.commit()

    def statistics(self) -> dict[str, int]:
        """``trade_charts`` open now, opened and cancelled; trades delivered, duplicates
        dropped, ghost packets dropped, gaps and the trades they missed."""
        charts = {id(c) for live in self._live.values() for c in live.values()}
        return {
            "trade_charts": len(charts),
            "trade_charts_opened": self.opened,
            "trade_charts_cancelled": self.cancelled,
            "trades": self.trades,
            "trade_duplicates": self.duplicates,
            "chart_ghosts": self.ghosts,
            "trade_gaps": self.gaps,
            "trades_missed": self.missed,
        }


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC to the millisecond: ``2027-01-15T08:00:00.250Z``."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _chart_id(value: object) -> int | None:
    return value if type(value) is int and 0 <= value < MAX_ID else None


def _units(relative: object, base: int, most: int) -> int:
    """A bid or ask: ``base + relative`` ticks, checked."""
    if type(relative) is not int:
        raise ProtocolError("a tick's b or a is not an integer")
    units = base + relative
    if not 0 < units <= most:
        raise ProtocolError("a tick's bid or ask out of range")
    return units


def _check_size(value: object) -> None:
    if type(value) is int:
        if value >= 0:
            return
    elif type(value) is float:
        if 0.0 <= value < _MAX_FLOAT:
            return
    else:
        raise ProtocolError(f"a tick size is a JSON number, not {type(value).__name__}")
    raise ProtocolError("a tick's size out of range")


def _size(value: int | float) -> Decimal:
    return Decimal(value) if type(value) is int else Decimal(repr(value))
