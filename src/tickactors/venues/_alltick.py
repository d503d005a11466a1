"""The AllTick dialect (``docs/venues.md``, AllTick), sans-I/O.

Requests carry ``cmd_id``, ``seq_id`` (our request id, echoed back), ``trace``
and ``data``. Subscriptions REPLACE the previous set of their kind: 22004 for
trades, 22002 for the order book, 22006 to cancel a kind; there is no
per-symbol unsubscribe, so the reconciler runs in replace-all semantics. The
client heartbeat is 22000 every 10 s, and the venue allows one request per
second per connection, heartbeats included.

Pushes are 22998 (trade) and 22999 (depth). Where the venue's documents and
examples disagree, every variant is accepted: ``seq`` and ``tick_time`` as
integers or strings, ``tick_time`` in seconds or milliseconds (below 10**11
it is seconds), prices and volumes as decimal strings (at most 64 characters) or JSON numbers.
A price lies in ``[MIN_PRICE, MAX_NUMBER)``, a volume or turnover in
``[0, MAX_NUMBER)`` (``_dialect``). A frame that breaks the shape raises
``ProtocolError``: the connection counts it and goes on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from .._core.reconciler import Action, Semantics, SendRequest
from .._errors import InvalidSymbolError, ProtocolError
from .._secret import MASK, Secret
from .._values import BOOK, TRADES, BookLevel, BookSnapshot, StreamKind, Tick
from ._alltick_trades import MAX_TEXT as _MAX_TEXT
from ._alltick_trades import take_trades
from ._dialect import (
    MAX_NUMBER,
    MIN_PRICE,
    NO_ANSWERS,
    Answer,
    AnswerKind,
    MarketBatch,
    Notice,
    check_timings,
    shown,
)

HEARTBEAT: Final = 22000
SUBSCRIBE_DEPTH: Final = 22002
SUBSCRIBE_TRADES: Final = 22004
CANCEL: Final = 22006
PUSH_TRADE: Final = 22998
PUSH_DEPTH: Final = 22999

# ``cancel_type`` of 22006; 0 (both kinds) exists too, but the feed cancels one kind at a time.
CANCEL_DEPTH: Final = 1
CANCEL_TRADES: Final = 2

STOCK_URL: Final = "wss://quote.alltick.co/quote-stock-b-ws-api"
MARKETS_URL: Final = "wss://quote.alltick.co/quote-b-ws-api"

#: ``ret`` codes and how the feed treats them.
RET_CODES: Final[dict[int, tuple[AnswerKind, str]]] = {
    200: (AnswerKind.OK, "ok"),
    400: (AnswerKind.BAD_REQUEST, "bad header or data"),
    401: (AnswerKind.AUTH, "token invalid"),
    402: (AnswerKind.BAD_REQUEST, "query invalid"),
    429: (AnswerKind.RATE_LIMITED, "rate limit"),
    600: (AnswerKind.REJECTED, "code invalid"),
    601: (AnswerKind.BAD_REQUEST, "body empty"),
    603: (AnswerKind.REJECTED, "plan too small (too many symbols)"),
    604: (AnswerKind.REJECTED, "code unauthorized"),
    605: (AnswerKind.RATE_LIMITED, "too many requests"),
    606: (AnswerKind.KICKED, "too many requests, connection will be closed"),
}

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,39}")
_SECONDS_LIMIT: Final = 10**11
_ZERO: Final = Decimal(0)  # comparing Decimal to Decimal skips an int conversion
_MAX_LEVELS: Final = 50


class AllTickDialect:
    """AllTick's wire form. Build it through :class:`tickactors.venues.AllTick`."""

    name = "alltick"
    semantics = Semantics.REPLACE_ALL
    kinds: tuple[StreamKind, ...] = (TRADES, BOOK)
    heartbeat_tracked = True  # 22000 is answered by 22001: a request with a deadline
    #: The reader's fast path for runs of trade pushes (``_alltick_trades``).
    take_trades = staticmethod(take_trades)
    authorize_required = False  # the token travels in the URL
    user_sync = False  # market data only: no account on this socket
    #: The feed's defaults (``open_feed(stale_after=..., request_timeout=...)`` override
    #: them): three missed heartbeats; an answer within 5 s.
    stale_after = 30.0
    request_timeout = 5.0

    def __init__(
        self,
        url: str,
        *,
        depth_level: int = 5,
        heartbeat_interval: float = 10.0,
        reconnect_floor: float = 3.0,
        max_symbols: int | None = None,
        max_connections: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"an AllTick URL is ws:// or wss://, not {_mask_query(url)!r}")
        if "token=" in parts.query:
            raise ValueError("pass the token with token=..., not inside the URL")
        if not 1 <= depth_level <= 10:
            raise ValueError("depth_level is 1 to 10")
        self._url = url
        self.depth_level = depth_level
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_floor = reconnect_floor
        if max_symbols is not None and max_symbols < 1:
            raise ValueError("max_symbols is at least 1")
        #: Symbols per kind and connection the plan allows (AllTick: 5, 100, 200 or 3000);
        #: None leaves it to the venue to refuse (ret 603).
        self.max_symbols = max_symbols
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections is at least 1")
        #: Connections one token may hold at once (AllTick: 1, 3 or 10 by plan); None: unknown.
        self.max_connections = max_connections
        # One request per second per connection, heartbeats included, with a margin
        # for the venue's clock reading "the same second".
        self.budget_frames = 1
        self.budget_per = 1.0
        self.budget_margin = 0.05
        #: "across several connections of one token, keep 3 s between requests"
        self.token_spacing: float | None = 3.0
        check_timings(self)

    # -- symbols and URLs ------------------------------------------------------------

    def validate_symbol(self, symbol: object) -> str:
        if not isinstance(symbol, str):
            raise InvalidSymbolError(
                shown(symbol), f"a symbol is a str, not {type(symbol).__name__}"
            )
        if not symbol:
            raise InvalidSymbolError(symbol, "empty")
        if len(symbol) > 40:
            raise InvalidSymbolError(symbol[:48] + "...", "longer than 40 characters")
        if not symbol.isascii():
            raise InvalidSymbolError(symbol, "non-ASCII characters (look-alike letters?)")
        if _SYMBOL.fullmatch(symbol) is None:
            raise InvalidSymbolError(
                symbol, "AllTick codes are letters, digits, '.', '_' and '-', like 700.HK"
            )
        return symbol

    def connect_url(self, token: Secret | None) -> str:
        if token is None:
            return self._url
        parts = urlsplit(self._url)
        query = "&".join(q for q in (parts.query, urlencode({"token": token.reveal()})) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def display_url(self) -> str:
        return _mask_query(self.connect_url(Secret(MASK)))

    # -- requests --------------------------------------------------------------------

    def encode_heartbeat(self, request_id: int) -> str:
        return _request(HEARTBEAT, request_id, {})

    def encode_authorize(self, token: Secret, request_id: int) -> None:
        return None

    def encode_call(self, endpoint: str, request_id: int, query: str = "", body: Any = None) -> str:
        raise ValueError("AllTick has no requests beyond subscriptions and heartbeats")

    def setup_calls(self) -> list[tuple[str, str, Any]]:
        return []

    def user_call(self) -> tuple[str, str, Any]:
        raise ValueError("AllTick keeps no account on its socket")

    def read_user_id(self, data: Any) -> int | None:
        return None

    def sync_call(self, user_id: int) -> tuple[str, str, Any]:
        raise ValueError("AllTick keeps no account on its socket")

    def read_sync(self, data: Any) -> dict[str, tuple[Mapping[str, Any], ...]] | None:
        return None

    def read_entity(self, data: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]] | None:
        return None

    def add_penalty_ticket(self, frame: str, ticket: str) -> str:
        raise ValueError("AllTick has no penalty tickets")

    def needs_contract_lookup(self, symbol: str) -> bool:
        return False  # pushes carry the code itself

    def encode_contract_lookup(self, symbol: str, request_id: int) -> str:
        raise ValueError("AllTick has no contract lookup")

    def learn_contract(self, symbol: str, answer: Answer) -> bool:
        return True

    def encode_request(self, request: SendRequest, request_id: int, connection: int = 0) -> str:
        """The replace-all (or cancel) frame of one kind; the same whatever the connection."""
        kind = request.kind
        if request.action is Action.CANCEL:
            cancel_type = CANCEL_TRADES if kind is TRADES else CANCEL_DEPTH
            return _request(CANCEL, request_id, {"cancel_type": cancel_type})
        if request.action is not Action.REPLACE or not request.symbols:
            raise ValueError(f"AllTick speaks replace-all; cannot encode {request!r}")
        if kind is TRADES:
            entries: list[dict[str, Any]] = [{"code": s} for s in request.symbols]
            return _request(SUBSCRIBE_TRADES, request_id, {"symbol_list": entries})
        entries = [{"code": s, "depth_level": self.depth_level} for s in request.symbols]
        return _request(SUBSCRIBE_DEPTH, request_id, {"symbol_list": entries})

    def connection_closed(self, connection: int) -> None:
        """Nothing to forget: the dialect keeps nothing per connection."""

    def statistics(self) -> dict[str, int]:
        """No counters of its own: every frame it cannot read is a ``ProtocolError``."""
        return {}

    # -- frames ----------------------------------------------------------------------

    def decode(
        self, frame: str | bytes, received_at: float, out: MarketBatch
    ) -> Sequence[Answer | Notice]:
        if take_trades((frame,), 0, received_at, out.trades):
            return NO_ANSWERS
        return self.decode_general(frame, received_at, out)

    def decode_general(
        self, frame: str | bytes, received_at: float, out: MarketBatch
    ) -> Sequence[Answer | Notice]:
        """Any frame, through ``orjson.loads`` and dicts; ``decode`` tries trades faster first."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"not JSON: {exc}") from None
        if type(msg) is not dict:
            raise ProtocolError(f"a frame is a JSON object, not {type(msg).__name__}")
        cmd_id = msg.get("cmd_id")
        if cmd_id == PUSH_TRADE:
            out.trades.append(_trade(_data(msg), received_at))
            return NO_ANSWERS
        if cmd_id == PUSH_DEPTH:
            out.books.append(_book(_data(msg), received_at))
            return NO_ANSWERS
        if "ret" in msg:
            return (_answer(msg),)
        # Never the repr of what the venue sent: it may be nested a thousand deep.
        shown = cmd_id if type(cmd_id) is int else type(cmd_id).__name__
        raise ProtocolError(f"unknown frame with cmd_id {shown}")


def _request(cmd_id: int, request_id: int, data: dict[str, Any]) -> str:
    body = {"cmd_id": cmd_id, "seq_id": request_id, "trace": f"ta-{request_id}", "data": data}
    return orjson.dumps(body).decode()


def _mask_query(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    masked = re.sub(r"(token=)[^&]*", rf"\g<1>{MASK}", parts.query)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, masked, ""))


def _data(msg: dict[str, Any]) -> dict[str, Any]:
    data = msg.get("data")
    if type(data) is not dict:
        raise ProtocolError("a push without a data object")
    return data


def _answer(msg: dict[str, Any]) -> Answer:
    ret = msg["ret"]
    seq = msg.get("seq_id", 0)
    if type(ret) is not int or type(seq) is not int or seq < 0:
        raise ProtocolError("an answer whose ret or seq_id is not an integer")
    kind, default = RET_CODES.get(ret, (AnswerKind.BAD_REQUEST, "unknown ret code"))
    if 200 <= ret < 300:
        kind = AnswerKind.OK
    text = msg.get("msg")
    message = text[:200] if isinstance(text, str) and text else default
    return Answer(request_id=seq, kind=kind, code=ret, message=message)


def _symbol(data: dict[str, Any]) -> str:
    code = data.get("code")
    if type(code) is not str or not code or len(code) > 64:
        raise ProtocolError("a push without a valid code")
    return code


def _decimal(value: object, what: str, *, positive: bool) -> Decimal:
    try:
        if type(value) is str:
            if len(value) > _MAX_TEXT:
                raise ProtocolError(f"{what} is longer than {_MAX_TEXT} characters")
            number = Decimal(value)
        elif type(value) is int:
            number = Decimal(value)
        elif type(value) is float and math.isfinite(value):
            number = Decimal(repr(value))
        else:
            raise ProtocolError(f"{what} is not a decimal: {type(value).__name__}")
    except InvalidOperation:
        raise ProtocolError(f"{what} is not a decimal") from None
    if not number.is_finite() or not (MIN_PRICE if positive else _ZERO) <= number < MAX_NUMBER:
        raise ProtocolError(f"{what} out of range")
    return number


def _integer(value: object, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is int:
        number = value
    elif type(value) is str and len(value) <= 20 and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise ProtocolError(f"{what} is not an integer")
    if number < 0 or number >= 2**64:
        raise ProtocolError(f"{what} out of range")
    return number


def _seconds(value: object) -> float | None:
    stamp = _integer(value, "tick_time")
    if stamp is None:
        return None
    return float(stamp) if stamp < _SECONDS_LIMIT else stamp / 1000.0


def _trade(data: dict[str, Any], received_at: float) -> Tick:
    fields: dict[str, Any] = {}
    turnover = data.get("turnover")
    if turnover is not None:
        fields["turnover"] = _decimal(turnover, "turnover", positive=False)
    direction = data.get("trade_direction")
    if direction is not None:
        if direction not in (0, 1, 2) or type(direction) is bool:
            raise ProtocolError("trade_direction is 0, 1 or 2")
        fields["trade_direction"] = direction
    volume = data.get("volume")
    return Tick(
        _symbol(data),
        _decimal(data.get("price"), "price", positive=True),
        None if volume is None else _decimal(volume, "volume", positive=False),
        _seconds(data.get("tick_time")),
        _integer(data.get("seq"), "seq"),
        received_at,
        fields,
    )


def _levels(value: object, what: str) -> tuple[BookLevel, ...]:
    if value is None:
        return ()
    if type(value) is not list or len(value) > _MAX_LEVELS:
        raise ProtocolError(f"{what} is not a list of at most {_MAX_LEVELS} levels")
    levels = []
    for level in value:
        if type(level) is not dict:
            raise ProtocolError(f"a level of {what} is not an object")
        volume = level.get("volume")  # absent on forex and metals books (docs/venues.md)
        levels.append(
            BookLevel(
                _decimal(level.get("price"), "price", positive=True),
                None if volume is None else _decimal(volume, "volume", positive=False),
            )
        )
    return tuple(levels)


def _book(data: dict[str, Any], received_at: float) -> BookSnapshot:
    return BookSnapshot(
        _symbol(data),
        _levels(data.get("bids"), "bids"),
        _levels(data.get("asks"), "asks"),
        _seconds(data.get("tick_time")),
        _integer(data.get("seq"), "seq"),
        received_at,
    )
