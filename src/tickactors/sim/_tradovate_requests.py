"""Tradovate WebSocket requests: the gates every request passes, then the endpoints.

Theory of operation
-------------------
A :class:`Dispatcher` belongs to one connection. :meth:`Dispatcher.handle`
takes a parsed request (not the ``[]`` heartbeat) and returns a
:class:`Result`: the answer to send (or None) and events to send after it.
The gates, in order:

1. **unreadable** (see ``_tradovate_protocol``): 400 without ``"i"``.
2. **duplicate id**: an id already used on this connection gets
   ``{"i":ID,"s":400,"d":"Duplicate request id ID"}``, is not applied and
   counts as a ``duplicate_id`` violation (the sim's pick: an answer, not the
   dropped connection users report, ``docs/venues.md``, Tradovate, "What users
   report"). One exception: a repeat of the *identical* ``authorize`` (same
   id, same token) is served again, uncounted, because Tradovate's own
   tutorial client authorizes on ``onopen`` and again on ``o``, both with id 0.
3. **429** (``faults.rate_limit_429``): ``s=429``, not applied.
4. **authorize first**: before a successful ``authorize``, any other request
   gets ``{"i":ID,"s":401,"d":"Access is denied"}`` (counted ``unauthorized``).
5. **penalty ticket** (``faults.p_ticket``, see ``_tradovate_penalty``).

Requests answered at gate 3 or 5 do not use up their id (a resend may reuse
it); every other request does. Then the endpoint (case-insensitive):

- ``authorize``: token raw, JSON-quoted or ``{"token":...}``; 401 with
  ``Access is denied`` / ``Expired Access Token``; success answers
  ``{"i":ID,"s":200}`` (no ``d``).
- ``md/subscribeQuote|DOM|Histogram``: body ``{"symbol": name or id}``;
  answer ``d = {"subscriptionId": contractId}`` (what Tradovate's tutorial
  clients match events against); unknown symbol -> 404 ``Unknown symbol: X``.
  A histogram subscription to a contract that has traded is followed by its
  whole histogram (``_tradovate_histograms``); the streamer sends the rest.
  ``md/unsubscribe...``: ``d = {}``; 400 ``Not subscribed: X`` when it was not.
- **Data that follows an answer** (a chart's history, a histogram's first
  snapshot) is built and sent ``SimConfig.tradovate_history_delay`` seconds
  after the answer (0.25 s by default), not with it: Tradovate's JavaScript
  tutorial installs its event listener only after the answer and a REST
  ``contract/find`` round trip, and loses whatever came before (the venue
  loads history from storage, so it never comes at once). A chart goes live
  (its live ticks or bars start) when its history goes out, so nothing live
  comes before its history; a chart cancelled before then gets nothing.
- ``md/getChart``: ``d = {"historicalId": H, "realtimeId": H}``. A
  ``"Tick"`` chart (``chartDescription.underlyingType``) then gets its
  history from the trade ledger per ``timeRange`` as tick packets, the
  ``eoh`` marker, and one live packet per trade of the contract until
  cancelled (``_tradovate_ticks``; a bad ``timeRange`` is a 400). Any other
  chart gets one ``chart`` event with seeded bars and an ``eoh`` marker; a
  ``"MinuteBar"`` chart then gets its current bar again after each trade
  (``LiveBar``), other bar charts nothing more. ``md/cancelChart`` takes
  ``{"subscriptionId": H}`` (answer ``d = {}``; 400 if unknown) and stops a chart's updates at once.
- ``contract/find`` (``name``), ``contract/item`` (``id``) -> the contract or
  404 ``Not found``; ``contract/suggest`` (``t``, ``l``) -> a list.
- ``auth/me`` -> who the token belongs to (``{"userId", "name", ...}``).
- ``account/list``; ``user/syncrequest`` -> every entity list of the user
  and the universe (``TradovateVenue.sync_json``), and from then on this
  connection gets the user's ``props`` events.
- trading: ``order/placeorder``, ``order/cancelorder``,
  ``order/liquidateposition``, ``orderStrategy/startOrderStrategy``, the
  ``<entity>/list`` endpoints, ``product/find`` and ``product/list``
  (``TradovateVenue.trading_call``, ``_tradovate_orders``).
- ``replay/checkReplaySession`` -> ``{"checkStatus":"OK"}``,
  ``replay/initializeClock`` -> ``{"ok":true}`` then clock events,
  ``replay/changeSpeed``; only on the replay socket (404 elsewhere).
- anything else: 404 ``Unknown operation``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from . import _tradovate_histograms as _histograms
from . import _tradovate_protocol as proto
from . import _tradovate_replay as _replay
from . import _tradovate_ticks as _ticks
from ._faults import Faults
from ._tradovate_accounts import User
from ._tradovate_market import TradovateMarket
from ._tradovate_penalty import Issued
from ._tradovate_state import TradovateVenue
from ._tradovate_subscriptions import Kind, MdSubscriptions


class Session(Protocol):
    """The connection as the dispatcher sees it."""

    subs: MdSubscriptions
    is_replay: bool
    replay: _replay.ReplayClock | None
    user: User | None
    props_user: int | None

    def authorized(self, user: User, token: str) -> None:
        """Record a successful authorize (and apply the per-user quota)."""

    def start_replay(self, clock: _replay.ReplayClock) -> None:
        """Run ``clock`` and send its events from now on."""


@attrs.frozen(slots=True)
class Result:
    """The answer, events to send right after it, and ``later``: events to build
    and send ``SimConfig.tradovate_history_delay`` seconds after it (a chart's
    history, a histogram's first snapshot; see the module docstring)."""

    answer: dict[str, Any] | None
    events: tuple[dict[str, Any], ...] = ()
    later: Callable[[], tuple[dict[str, Any], ...]] | None = None


_Handler = Callable[["Dispatcher", proto.Request], Result]


class Dispatcher:
    """Gates and endpoints for one connection; see the module docstring."""

    def __init__(
        self, venue: TradovateVenue, faults: Faults, market: TradovateMarket, session: Session
    ) -> None:
        self._venue, self._faults, self._market, self._session = venue, faults, market, session
        self.used_ids: set[int] = set()
        self.violations: Counter[str] = Counter()
        self._authorize_seen: dict[int, str] = {}

    def _violation(self, kind: str) -> None:
        self.violations[kind] += 1
        self._venue.hub.stats.violations[kind] += 1

    def _error(self, req: proto.Request, status: int, text: str) -> Result:
        return Result(self._venue.error(req.id, status, text))

    def handle(self, req: proto.Request) -> Result:
        if req.error is not None or req.id is None:
            self._violation("bad_request")
            return self._error(req, 400, f"Bad request: {req.error}")
        key = req.key
        if req.id in self.used_ids:
            repeat = key == "authorize" and self._authorize_seen.get(req.id) == req.body
            if not repeat:
                self._violation("duplicate_id")
                return self._error(req, 400, f"Duplicate request id {req.id}")
        if self._faults.take_429():
            return self._error(req, 429, proto.TOO_MANY)
        if key != "authorize" and self._session.user is None:
            self.used_ids.add(req.id)
            self._violation("unauthorized")
            return self._error(req, 401, proto.ACCESS_DENIED)
        if key != "authorize":
            verdict = self._venue.penalties.gate(req.endpoint, req.query, req.body_json)
            if isinstance(verdict, Issued):
                if verdict.violation:
                    self.violations["penalty_ignored"] += 1
                ticket = proto.penalty(req.id, verdict.ticket, verdict.p_time, verdict.captcha)
                return Result(ticket)
            if isinstance(verdict, str):
                self.used_ids.add(req.id)
                return self._error(req, 400, verdict)
        self.used_ids.add(req.id)
        handler = _ENDPOINTS.get(key)
        if handler is None:
            return self._trading(req)
        return handler(self, req)

    # ---- endpoints -------------------------------------------------------------

    def _authorize(self, req: proto.Request) -> Result:
        assert req.id is not None
        self._authorize_seen[req.id] = req.body
        token = proto.token_from_body(req.body)
        owner = self._venue.accounts.check(token)
        if isinstance(owner, str):
            return self._error(req, 401, owner)
        self._session.authorized(owner, token)
        return Result(proto.ok(req.id))

    def _subscribe(self, req: proto.Request, kind: Kind) -> Result:
        assert req.id is not None
        symbol = req.params.get("symbol")
        contract = self._venue.contracts.resolve(symbol)
        if contract is None:
            return self._error(req, 404, f"Unknown symbol: {symbol}")
        subs = self._session.subs
        subs.add(kind, contract)
        answer = proto.ok(req.id, {"subscriptionId": contract.id})
        if kind != "histogram":
            return Result(answer)
        subs.histograms_pending.add(contract.id)  # per-trade histograms wait for the snapshot

        def snapshot() -> tuple[dict[str, Any], ...]:
            if contract.id not in subs.histograms_pending:  # unsubscribed meanwhile
                return ()
            subs.histograms_pending.discard(contract.id)
            histogram = self._venue.ticks.histograms.get(contract.id)
            return () if histogram is None else (_histograms.event(histogram.to_json()),)

        return Result(answer, later=snapshot)

    def _unsubscribe(self, req: proto.Request, kind: Kind) -> Result:
        assert req.id is not None
        symbol = req.params.get("symbol")
        contract = self._venue.contracts.resolve(symbol)
        if contract is None:
            return self._error(req, 404, f"Unknown symbol: {symbol}")
        if not self._session.subs.remove(kind, contract, trio.current_time()):
            return self._error(req, 400, f"Not subscribed: {symbol}")
        return Result(proto.ok(req.id, {}))

    def _get_chart(self, req: proto.Request) -> Result:
        assert req.id is not None
        symbol = req.params.get("symbol")
        contract = self._venue.contracts.resolve(symbol)
        if contract is None:
            return self._error(req, 404, f"Unknown symbol: {symbol}")
        description = req.params.get("chartDescription")
        time_range = req.params.get("timeRange")
        kind = description.get("underlyingType") if isinstance(description, dict) else None
        if kind == "Tick":
            checked = self._venue.ticks.select(contract.id, time_range)
            if isinstance(checked, str):
                return self._error(req, 400, checked)
        chart_id = self._venue.new_chart_id()
        subs = self._session.subs
        subs.charts[chart_id] = contract.name  # open (cancellable); live once its history is out
        answer = proto.ok(req.id, {"historicalId": chart_id, "realtimeId": chart_id})

        def history() -> tuple[dict[str, Any], ...]:
            if chart_id not in subs.charts:  # cancelled before its history went out
                return ()
            if kind == "Tick":
                ticks = self._venue.ticks.select(contract.id, time_range)
                assert not isinstance(ticks, str)  # checked when the request came
                subs.add_tick_chart(chart_id, contract)
                return _ticks.history_events(chart_id, ticks)
            return self._bar_history(chart_id, contract, kind, description, time_range)

        return Result(answer, later=history)

    def _bar_history(
        self, chart_id: int, contract: Any, kind: object, description: object, time_range: object
    ) -> tuple[dict[str, Any], ...]:
        """A bar chart's seeded history; a ``MinuteBar`` chart goes live (``LiveBar``)."""
        size = description.get("elementSize") if isinstance(description, dict) else None
        count = time_range.get("asMuchAsElements") if isinstance(time_range, dict) else None
        now_wall = self._market_wall()
        bars, trade_date = self._market.bars(contract, count, size, now_wall)
        if kind == "MinuteBar":
            step = self._market.bar_seconds(size) * 1000
            last = dict(bars[-1])
            bucket = int(now_wall // (step / 1000)) * step
            live = _ticks.LiveBar(contract.id, step, bucket, last)
            self._session.subs.add_bar_chart(chart_id, contract, live)
        return (proto.chart_event(chart_id, bars, trade_date),)

    def _market_wall(self) -> float:
        clock = self._session.replay
        now = trio.current_time()
        return clock.wall_at(now) if clock is not None else self._venue.hub.wall_time()

    def _cancel_chart(self, req: proto.Request) -> Result:
        assert req.id is not None
        chart_id = req.params.get("subscriptionId")
        if not isinstance(chart_id, int) or not self._session.subs.cancel_chart(chart_id):
            return self._error(req, 400, f"Unknown chart subscription: {chart_id}")
        return Result(proto.ok(req.id, {}))

    def _contract_find(self, req: proto.Request) -> Result:
        assert req.id is not None
        contract = self._venue.contracts.find(req.params.get("name"))
        if contract is None:
            return self._error(req, 404, f"Not found: {req.params.get('name')}")
        return Result(proto.ok(req.id, contract.to_json()))

    def _contract_item(self, req: proto.Request) -> Result:
        assert req.id is not None
        contract = self._venue.contracts.item(req.params.get("id"))
        if contract is None:
            return self._error(req, 404, f"Not found: {req.params.get('id')}")
        return Result(proto.ok(req.id, contract.to_json()))

    def _contract_suggest(self, req: proto.Request) -> Result:
        assert req.id is not None
        found = self._venue.contracts.suggest(req.params.get("t"), req.params.get("l", 10))
        return Result(proto.ok(req.id, [c.to_json() for c in found]))

    def _account_list(self, req: proto.Request) -> Result:
        assert req.id is not None and self._session.user is not None
        return Result(proto.ok(req.id, self._venue.accounts.accounts_json(self._session.user)))

    def _me(self, req: proto.Request) -> Result:
        assert req.id is not None and self._session.user is not None
        return Result(proto.ok(req.id, self._venue.accounts.me_json(self._session.user)))

    def _sync(self, req: proto.Request) -> Result:
        assert req.id is not None and self._session.user is not None
        user = self._session.user
        self._session.props_user = user.id
        return Result(proto.ok(req.id, self._venue.sync_json(user)))

    def _trading(self, req: proto.Request) -> Result:
        assert req.id is not None and self._session.user is not None
        outcome = self._venue.trading_call(self._session.user, req.key, req.params)
        if outcome is None:
            return self._error(req, 404, f"Unknown operation: {req.endpoint}")
        status, payload = outcome
        if status == 200:
            return Result(proto.ok(req.id, payload))
        return self._error(req, status, str(payload))

    def _replay(self, req: proto.Request) -> Result:
        assert req.id is not None
        if not self._session.is_replay:
            return self._error(req, 404, f"{req.endpoint} is only available on the replay socket")
        key, now = req.key, trio.current_time()
        if key == "replay/checkreplaysession":
            return Result(proto.ok(req.id, {"checkStatus": "OK"}))
        if key == "replay/initializeclock":
            clock = _replay.initialize(req.params, now)
            if isinstance(clock, str):
                return self._error(req, 400, clock)
            self._session.start_replay(clock)
            return Result(proto.ok(req.id, {"ok": True}))
        running = self._session.replay
        if running is None:
            return self._error(req, 400, "Replay clock is not initialized")
        speed = _replay.check_speed(req.params.get("speed"))
        if isinstance(speed, str):
            return self._error(req, 400, speed)
        running.change_speed(speed, now)
        return Result(proto.ok(req.id, {"ok": True}), (running.event(now),))


def _kind(method: Callable[[Dispatcher, proto.Request, Kind], Result], kind: Kind) -> _Handler:
    return lambda d, r: method(d, r, kind)


_ENDPOINTS: dict[str, _Handler] = {
    "authorize": Dispatcher._authorize,
    "md/subscribequote": _kind(Dispatcher._subscribe, "quote"),
    "md/unsubscribequote": _kind(Dispatcher._unsubscribe, "quote"),
    "md/subscribedom": _kind(Dispatcher._subscribe, "dom"),
    "md/unsubscribedom": _kind(Dispatcher._unsubscribe, "dom"),
    "md/subscribehistogram": _kind(Dispatcher._subscribe, "histogram"),
    "md/unsubscribehistogram": _kind(Dispatcher._unsubscribe, "histogram"),
    "md/getchart": Dispatcher._get_chart,
    "md/cancelchart": Dispatcher._cancel_chart,
    "contract/find": Dispatcher._contract_find,
    "contract/item": Dispatcher._contract_item,
    "contract/suggest": Dispatcher._contract_suggest,
    "account/list": Dispatcher._account_list,
    "auth/me": Dispatcher._me,
    "user/syncrequest": Dispatcher._sync,
    "replay/checkreplaysession": Dispatcher._replay,
    "replay/initializeclock": Dispatcher._replay,
    "replay/changespeed": Dispatcher._replay,
}
