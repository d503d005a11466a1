"""The Tradovate dialect (``docs/venues.md``, Tradovate), sans-I/O.

Theory of operation
-------------------
Server frames start with one letter: ``o`` (open: the client now authorizes),
``h`` (the server's heartbeat, sent only while nothing else is), ``a`` and a
JSON array of responses and events, ``c`` and ``[code, "reason"]``. ``o`` and
``c`` become :class:`Notice` values; ``h`` decodes to nothing, its arrival has
fed the staleness clock already. Client requests are four lines joined by
``\\n``: endpoint, request id, query, body. The client heartbeat is ``[]``
every 2.5 s; the venue never answers it, so it is not a tracked request
(``heartbeat_tracked = False``). The token goes in ``authorize`` after ``o``,
never in the URL.

Subscriptions are incremental: one ``md/subscribeQuote`` / ``md/subscribeDOM``
(or the matching unsubscribe) per symbol, body ``{"symbol": name-or-id}``.
Trades (``kind=TRADES``) are Tick charts: ``md/getChart`` to subscribe,
``md/cancelChart`` to unsubscribe; which chart is whose, the history a
re-subscription asks for, and how each trade reaches the user once, across
reconnects and rotations, are :mod:`._tradovate_charts`'s (:class:`TickCharts`).

Quotes and DOMs name the contract by ``contractId`` only. The dialect keeps an
id -> name map for the feed's life (:meth:`TradovateDialect.remember_contract`,
fed from ``contract/find`` answers); a symbol subscribed by its id maps that id
to the id's spelling. Data about an id the map does not hold decodes under the
symbol ``"#<id>"``, which no user can subscribe: the feed counts it as a ghost,
and the reconciler's UNSUBSCRIBE of ``"#<id>"`` goes out with the id as body.

Responses ``{"i", "s", "d"}`` become :class:`Answer` values (the status
mapping, penalty tickets and error texts are in :mod:`._tradovate_wire`);
events ``clock``, ``props`` and ``shutdown`` become notices.

Strictness, as in the AllTick dialect: anything that breaks the documented
shape raises ``ProtocolError`` (the connection counts it and goes on): text
that is not UTF-8, an unknown frame letter, JSON that does not parse, an
answer without an integer ``i``, a price that is not a positive finite JSON
number (Tradovate sends numbers, never strings), a negative size, an
unreadable timestamp. A frame either decodes whole or adds nothing to the
batch. Events the feed has no use for (md parts other than quotes and DOMs,
unknown events) are counted in ``ignored``; chart packets of no chart of ours
in ``chart_ghosts`` (:meth:`TradovateDialect.statistics`).

The trading sockets keep the user's account (``user_sync``; every URL but the
market-data host): ``user_call`` (``auth/me``), ``sync_call`` (``user/syncrequest``) and
the readers of their answers and of ``props`` events (``_tradovate_wire``) are what the
session asks for, so that the session itself names no Tradovate endpoint.

Budget: Tradovate documents no per-second rule; it enforces its limits with
penalty tickets (``p-time`` seconds of waiting) instead. The feed keeps to 10
frames per second per connection: room for the 2.5 s heartbeat and for
re-subscribing a watchlist quickly after a reconnect (100 symbols in 10 s),
while staying well below request rates any public report ties to tickets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import orjson

from .._core.reconciler import Action, Semantics, SendRequest
from .._errors import InvalidSymbolError, ProtocolError
from .._secret import Secret
from .._values import BOOK, QUOTES, TRADES, BookSnapshot, Quote, StreamKind
from ._dialect import NO_ANSWERS, Answer, MarketBatch, Notice, NoticeKind, check_timings, shown
from ._tradovate_charts import TickCharts
from ._tradovate_replay import Replay
from ._tradovate_wire import (
    MAX_ID,
    answer,
    closing,
    entity_parts,
    event_notice,
    levels,
    me_user_id,
    price,
    size,
    sync_lists,
    wire_id,
)

MD_URL: Final = "wss://md.tradovateapi.com/v1/websocket"
#: The market-data socket's host: it keeps no account (no ``user/syncrequest``).
MD_HOST: Final = "md.tradovateapi.com"
DEMO_URL: Final = "wss://demo.tradovateapi.com/v1/websocket"
LIVE_URL: Final = "wss://live.tradovateapi.com/v1/websocket"
REPLAY_URL: Final = "wss://replay.tradovateapi.com/v1/websocket"

HEARTBEAT: Final = "[]"

_ENDPOINTS: Final[dict[tuple[Action, StreamKind], str]] = {
    (Action.SUBSCRIBE, QUOTES): "md/subscribeQuote",
    (Action.UNSUBSCRIBE, QUOTES): "md/unsubscribeQuote",
    (Action.SUBSCRIBE, BOOK): "md/subscribeDOM",
    (Action.UNSUBSCRIBE, BOOK): "md/unsubscribeDOM",
    (Action.SUBSCRIBE, TRADES): "md/getChart",
    (Action.UNSUBSCRIBE, TRADES): "md/cancelChart",
}
_SYMBOL = re.compile(r"[A-Za-z0-9@][A-Za-z0-9@._\-]{0,31}")
_OPENED: Final = (Notice(NoticeKind.OPENED),)


class TradovateDialect:
    """Tradovate's wire form. Build it through :class:`tickactors.venues.Tradovate`."""

    name = "tradovate"
    semantics = Semantics.INCREMENTAL
    kinds: tuple[StreamKind, ...] = (QUOTES, BOOK, TRADES)  # quotes first: the main stream
    heartbeat_tracked = False  # ``[]`` gets no answer
    authorize_required = True  # ``authorize`` after ``o``
    take_trades = None  # trades come in chart events: every frame goes through ``decode``
    #: The feed's defaults (``open_feed(stale_after=..., request_timeout=...)`` override them).
    stale_after = 10.0
    request_timeout = 10.0

    def __init__(
        self,
        url: str = MD_URL,
        *,
        heartbeat_interval: float = 2.5,
        reconnect_floor: float = 1.0,
        replay: Replay | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"a Tradovate URL is ws:// or wss://, not {url!r}")
        #: Market replay, and the replay clock's last reading (a reconnect resumes there).
        self.replay = replay
        self.replay_clock: str | None = None
        self._url = url
        #: Whether this socket keeps a user's account (``user/syncrequest``, ``props``):
        #: every Tradovate socket but the market-data one (``MD_URL``).
        self.user_sync = (parts.hostname or "").lower() != MD_HOST
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_floor = reconnect_floor
        #: No symbol cap of the venue's own (``open_feed(max_symbols_per_connection=...)``).
        self.max_symbols: int | None = None
        self.max_connections: int | None = None  # 50 sockets per user: not a feed's concern
        self.token_spacing: float | None = None  # no rule across connections
        self.budget_frames = 10  # no documented rule: see the module docstring
        self.budget_per = 1.0
        self.budget_margin = 0.0
        check_timings(self)
        #: Events and md parts decoded to nothing (``md`` histograms, unknown events, ...).
        self.ignored = 0
        #: The Tick charts of every connection, and each symbol's last trade (``TRADES``).
        self.charts = TickCharts()
        self._names: dict[int, str] = {}
        self._known_names: set[str] = set()
        self._stamp: str | None = None  # the last timestamp text and its value:
        self._stamp_value: float | None = None  # one frame's quotes share their stamp

    # -- symbols, contracts and URLs -----------------------------------------------

    def validate_symbol(self, symbol: object) -> str:
        """The symbol as the venue spells it, or ``InvalidSymbolError``.

        A contract name (letters, digits, ``@ . _ -``, at most 32 characters) comes back
        in upper case, as ``contract/find`` answers it (``esz6`` -> ``ESZ6``); a contract
        id, given as an int or as digits, comes back as its digits without leading zeros.
        Look-alike letters from other alphabets are refused, never folded.
        """
        if type(symbol) is int:
            if not 0 < symbol < MAX_ID:
                raise InvalidSymbolError(shown(symbol), "a contract id is a positive 63-bit int")
            return str(symbol)
        if not isinstance(symbol, str):
            raise InvalidSymbolError(
                shown(symbol), f"a contract name (str) or id (int), not {type(symbol).__name__}"
            )
        if not symbol:
            raise InvalidSymbolError(symbol, "empty")
        if len(symbol) > 32:
            raise InvalidSymbolError(symbol[:40] + "...", "longer than 32 characters")
        if not symbol.isascii():
            raise InvalidSymbolError(symbol, "non-ASCII characters (look-alike letters?)")
        if _SYMBOL.fullmatch(symbol) is None:
            raise InvalidSymbolError(
                symbol, "Tradovate contracts are letters, digits, '@', '.', '_' and '-', like ESZ6"
            )
        if symbol.isdigit():
            return self.validate_symbol(int(symbol))  # a contract id, without leading zeros
        return symbol.upper()  # the venue's spelling (contract/find answers ESZ6 for esz6)

    def remember_contract(self, contract_id: int, name: str) -> None:
        """Quotes and DOMs of ``contract_id`` decode under ``name`` from now on."""
        if type(contract_id) is not int or not 0 < contract_id < MAX_ID:
            raise ValueError("a contract id is a positive 63-bit integer")
        if not isinstance(name, str) or not name:
            raise ValueError("a contract name is a non-empty str")
        self._names[contract_id] = name
        self._known_names.add(name)

    def contract_name(self, contract_id: int) -> str | None:
        """The name data about ``contract_id`` decodes under, if the dialect knows it."""
        return self._names.get(contract_id)

    def add_penalty_ticket(self, frame: str, ticket: str) -> str:
        """The identical request with ``"p-ticket"`` added to its JSON body."""
        endpoint, request_id, query, body = frame.split("\n", 3)
        if body.strip():
            data = orjson.loads(body)
            if not isinstance(data, dict):
                raise ValueError("a penalty ticket goes into a JSON object body")
        else:
            data = {}
        data["p-ticket"] = ticket
        return f"{endpoint}\n{request_id}\n{query}\n{orjson.dumps(data).decode()}"

    def needs_contract_lookup(self, symbol: str) -> bool:
        """A name whose contract id is not known yet (ids need no lookup)."""
        return not (symbol.isdigit() or symbol.startswith("#") or symbol in self._known_names)

    def encode_contract_lookup(self, symbol: str, request_id: int) -> str:
        """``contract/find`` by name."""
        return self.encode_call("contract/find", request_id, {"name": symbol})

    def learn_contract(self, symbol: str, answer: Answer) -> bool:
        """Remember the id in a ``contract/find`` answer for ``symbol``; False when the
        answer holds no valid id (the tracker then rejects the symbol as unknown)."""
        data = answer.data
        if not isinstance(data, Mapping):
            return False
        contract_id = data.get("id")
        if type(contract_id) is not int or not 0 < contract_id < MAX_ID:
            return False
        self.remember_contract(contract_id, symbol)
        return True

    def connect_url(self, token: Secret | None) -> str:
        """The socket's URL as given: the token travels in ``authorize``, never in it."""
        return self._url

    def display_url(self) -> str:
        """The same URL: it holds no secret."""
        return self._url

    # -- requests --------------------------------------------------------------------

    def encode_heartbeat(self, request_id: int) -> str:
        """``[]``: no id (the venue answers no heartbeat, so ``request_id`` is unused)."""
        return HEARTBEAT

    def encode_authorize(self, token: Secret, request_id: int) -> str:
        """``authorize`` with the token raw in the body: the first request after ``o``."""
        return f"authorize\n{request_id}\n\n{token.reveal()}"

    def encode_request(self, request: SendRequest, request_id: int, connection: int = 0) -> str:
        """One subscribe or unsubscribe of one symbol, body ``{"symbol": name or id}``.

        A symbol of digits (or ``#<id>``, a ghost's name) goes out as the id, a JSON
        number; subscribing by id also teaches the map that id's spelling, so its quotes
        decode under the symbol the user wrote. Trades: ``md/getChart`` (a Tick chart,
        its history per :meth:`TickCharts.get_chart`) and ``md/cancelChart`` of the
        symbol's chart on ``connection`` (:meth:`TickCharts.cancel_chart`).
        """
        endpoint = _ENDPOINTS.get((request.action, request.kind))
        if endpoint is None or len(request.symbols) != 1:
            raise ValueError(f"Tradovate speaks one symbol per request; cannot encode {request!r}")
        symbol = request.symbols[0]
        digits = symbol[1:] if symbol.startswith("#") else symbol
        target: str | int = int(digits) if digits.isascii() and digits.isdigit() else symbol
        if type(target) is int and request.action is Action.SUBSCRIBE:
            self._names.setdefault(target, symbol)
        body: dict[str, Any]
        if request.kind is not TRADES:
            body = {"symbol": target}
        elif request.action is Action.SUBSCRIBE:
            body = self.charts.get_chart(symbol, target, request_id)
        else:
            body = {"subscriptionId": self.charts.cancel_chart(symbol, connection)}
        return f"{endpoint}\n{request_id}\n\n{orjson.dumps(body).decode()}"

    def connection_closed(self, connection: int) -> None:
        """The connection's Tick charts are gone with it (:meth:`TickCharts.connection_closed`)."""
        self.charts.connection_closed(connection)

    def statistics(self) -> dict[str, int]:
        """``ignored`` events and parts, and the Tick charts' counters (``trades``,
        ``trade_duplicates``, ``chart_ghosts``, ``trade_gaps``, ...: :class:`TickCharts`)."""
        return {"ignored": self.ignored, **self.charts.statistics()}

    def setup_calls(self) -> list[tuple[str, str, Any]]:
        """Requests every new connection makes after authorize, before subscribing.

        Replay: ``replay/initializeClock`` from the start, or after a reconnect from the
        clock's last reading, so a dropped replay session resumes where it was.
        """
        if self.replay is None:
            return []
        body = {
            "startTimestamp": self.replay_clock or self.replay.start,
            "speed": self.replay.speed,
            "initialBalance": self.replay.initial_balance,
        }
        return [("replay/initializeClock", "", body)]

    def user_call(self) -> tuple[str, str, Any]:
        """``auth/me``: its answer names the token's user (``{"userId": ...}``)."""
        return ("auth/me", "", None)

    def read_user_id(self, data: Any) -> int | None:
        """``userId`` of an ``auth/me`` answer."""
        return me_user_id(data)

    def sync_call(self, user_id: int) -> tuple[str, str, Any]:
        """``user/syncrequest`` for ``user_id``: the whole account, then ``props`` events."""
        return ("user/syncrequest", "", {"users": [user_id]})

    def read_sync(self, data: Any) -> dict[str, tuple[Mapping[str, Any], ...]] | None:
        """The entity lists of a ``user/syncrequest`` answer (``_tradovate_wire.sync_lists``)."""
        return sync_lists(data)

    def read_entity(self, data: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]] | None:
        """``(entityType, eventType, entity)`` of a ``props`` event."""
        return entity_parts(data)

    def encode_call(
        self,
        endpoint: str,
        request_id: int,
        query: str | Mapping[str, Any] = "",
        body: Any = None,
    ) -> str:
        """Any request (``contract/find``, ``user/syncrequest``, ...): body str as is, else JSON."""
        if not isinstance(query, str):
            query = urlencode(query)
        if not endpoint or any(c in text for text in (endpoint, query) for c in "\r\n"):
            raise ValueError("endpoint and query are one non-empty line each")
        if type(request_id) is not int or request_id < 0:
            raise ValueError("a request id is an int >= 0")
        text = _body_text(body)
        return f"{endpoint}\n{request_id}\n{query}\n{text}"

    # -- frames ----------------------------------------------------------------------

    def decode(
        self, frame: str | bytes, received_at: float, out: MarketBatch
    ) -> Sequence[Answer | Notice]:
        """Quotes and books into ``out``; answers and notices returned (see the module
        docstring). A binary frame must be UTF-8 text; an ``a`` frame decodes whole or
        adds nothing (what it appended before the error is taken out again)."""
        if not isinstance(frame, str):
            try:
                frame = frame.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError("a binary frame that is not UTF-8 text") from None
        if frame[:1] == "a":
            try:
                items = orjson.loads(frame[1:])
            except orjson.JSONDecodeError as exc:
                raise ProtocolError(f"an a-frame that is not JSON: {exc}") from None
            if type(items) is not list:
                raise ProtocolError("an a-frame holds a JSON array")
            quotes, books, trades = len(out.quotes), len(out.books), len(out.trades)
            charts = self.charts
            try:
                found = self._items(items, received_at, out)
            except ProtocolError:
                # all of a frame or none of it
                del out.quotes[quotes:], out.books[books:], out.trades[trades:]
                if charts.in_frame:
                    charts.rollback()
                raise
            if charts.in_frame:
                charts.commit()
            return found
        if frame == "h":
            return NO_ANSWERS
        if frame == "o":
            return _OPENED
        if frame[:1] == "c":
            return (closing(frame[1:]),)
        raise ProtocolError(f"unknown frame starting {frame[:8]!r}")

    def _items(
        self, items: list[Any], received_at: float, out: MarketBatch
    ) -> Sequence[Answer | Notice]:
        """The items of an ``a`` frame: ``md`` and ``chart`` events into ``out``, the rest
        answers and notices; a ``clock`` reading is kept as the replay's resume point, a
        getChart's answer teaches its chart (on ``out.connection``)."""
        found: list[Answer | Notice] | None = None  # market data needs no list
        for item in items:
            if type(item) is not dict:
                raise ProtocolError("an a-frame item is not an object")
            event = item.get("e")
            if event == "md":
                self._md(item.get("d"), received_at, out)
                continue
            if event == "chart":
                gaps = self.charts.packets(item.get("d"), out.connection, received_at, out.trades)
                if gaps:
                    if found is None:
                        found = []
                    found.extend(gaps)
                continue
            result: Answer | Notice | None
            if event is None:
                result = answer(item)
                if self.charts.is_pending(result.request_id):
                    result = self.charts.learn(result, out.connection)
            else:
                result = event_notice(event, item.get("d"))
            if result is None:
                self.ignored += 1
                continue
            if isinstance(result, Notice) and result.kind is NoticeKind.CLOCK:
                stamp = result.data.get("t")
                if isinstance(stamp, str):
                    self.replay_clock = stamp  # where a reconnect resumes the replay
            if found is None:
                found = []
            found.append(result)
        return NO_ANSWERS if found is None else found

    def _md(self, data: object, received_at: float, out: MarketBatch) -> None:
        """An ``md`` event's ``quotes`` and ``doms``; other parts are counted in ``ignored``."""
        if type(data) is not dict:
            raise ProtocolError("an md event without a d object")
        for part, values in data.items():
            if part == "quotes" or part == "doms":
                if type(values) is not list:
                    raise ProtocolError(f"md {part} is not a list")
                if part == "quotes":
                    out.quotes.extend([self._quote(q, received_at) for q in values])
                else:
                    out.books.extend([self._dom(d, received_at) for d in values])
            else:
                self.ignored += 1

    def _quote(self, quote: object, received_at: float) -> Quote:
        """One quote: ``Bid``, ``Offer``, ``Trade`` and ``TotalTradeVolume`` into their
        fields, each entry (and its ``price`` or ``size``) optional; any other entry into
        ``fields`` by name (its price, its size, or both)."""
        if type(quote) is not dict:
            raise ProtocolError("a quote is not an object")
        cid = wire_id(quote.get("contractId"))
        entries = quote.get("entries")
        if type(entries) is not dict:
            raise ProtocolError("a quote without an entries object")
        bid = bid_size = offer = offer_size = last = last_size = total = None
        fields: dict[str, Any] = {}
        for name, entry in entries.items():
            if type(entry) is not dict:
                raise ProtocolError(f"quote entry {name} is not an object")
            p = entry.get("price")
            if p is not None:
                p = price(p)
            s = entry.get("size")
            if s is not None:
                s = size(s)
            if name == "Bid":
                bid, bid_size = p, s
            elif name == "Offer":
                offer, offer_size = p, s
            elif name == "Trade":
                last, last_size = p, s
            elif name == "TotalTradeVolume":
                total = s
            else:
                fields[name] = p if s is None else s if p is None else {"price": p, "size": s}
        known = self._names.get(cid)
        return Quote(
            f"#{cid}" if known is None else known,
            cid,
            bid,
            bid_size,
            offer,
            offer_size,
            last,
            last_size,
            total,
            self._time(quote.get("timestamp")),
            received_at,
            fields,
        )

    def _dom(self, dom: object, received_at: float) -> BookSnapshot:
        """One DOM: ``bids`` and ``offers`` as levels; the contract id in ``fields``."""
        if type(dom) is not dict:
            raise ProtocolError("a dom is not an object")
        cid = wire_id(dom.get("contractId"))
        known = self._names.get(cid)
        return BookSnapshot(
            f"#{cid}" if known is None else known,
            levels(dom.get("bids"), "bids"),
            levels(dom.get("offers"), "offers"),
            self._time(dom.get("timestamp")),
            None,
            received_at,
            {"contract_id": cid},
        )

    def _time(self, stamp: object) -> float | None:
        """Epoch seconds of an ISO-8601 stamp (no offset: UTC), or None when absent.

        The quotes of one frame usually share a stamp: the last one read is kept, and a
        repeat costs one string comparison instead of a parse.
        """
        if stamp is None:
            return None
        if type(stamp) is not str or len(stamp) > 64:
            raise ProtocolError("a timestamp is an ISO-8601 string")
        if stamp == self._stamp:
            return self._stamp_value
        try:
            moment = datetime.fromisoformat(stamp)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            value = moment.timestamp()
        except (ValueError, OverflowError):
            raise ProtocolError(f"an unreadable timestamp {stamp!r}") from None
        self._stamp, self._stamp_value = stamp, value
        return value


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    return body if isinstance(body, str) else orjson.dumps(body).decode()
