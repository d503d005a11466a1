"""What a venue dialect is: the sans-I/O wire form of one venue.

A dialect turns the reconciler's requests into frames and frames into values,
answers (:class:`Answer`, to a request of ours) and notices (:class:`Notice`,
the venue's word about the connection: opened, closing, shutting down). It
never touches the network or the clock: the connection actor hands it each
frame with the time it arrived. One dialect object serves one feed (all its
connections). What it keeps per connection (Tradovate: the Tick charts each
connection opened) it keys by the connection's number: the reader's batch
names its connection (:attr:`MarketBatch.connection`), ``encode_request`` is
told the connection a request goes on, and the connector says when one is gone
(``connection_closed``).

The hot path is :meth:`Dialect.decode`: it appends market data straight into
the caller's batch (:class:`MarketBatch`) and returns the (usually empty)
tuple of answers and notices, so decoding a tick allocates nothing but the tick.

Two venue traits the session asks about: ``heartbeat_tracked`` (AllTick's
heartbeat is a request the venue answers, so the tracker gives it an id and a
deadline; Tradovate's ``[]`` gets no answer and goes out untracked) and
``authorize_required`` (Tradovate wants ``encode_authorize`` sent after its
``o`` frame; AllTick's token travels in the URL).

A third, ``user_sync``: the socket can keep the user's account in sync (Tradovate's
trading sockets: ``user/syncrequest``, then ``props`` events). The calls it takes and
the answers' shapes are the dialect's too (``user_call``, ``read_user_id``,
``sync_call``, ``read_sync``, ``read_entity``), so the session stays venue-neutral.
"""

from __future__ import annotations

import enum
import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Protocol

import attrs

from .._core.reconciler import Semantics, SendRequest
from .._secret import Secret
from .._values import BookSnapshot, Quote, StreamKind, Tick

#: Where a decoded number may lie, both venues: a price in ``[MIN_PRICE, MAX_NUMBER)``; a
#: size, volume or turnover in ``[0, MAX_NUMBER)``. Wider than any market; a value beyond is
#: a broken frame, and an exact ``Decimal`` out there (``1E+99999999``) would break the
#: user's own arithmetic (``x * y`` and ``1 / x`` overflow the default decimal context).
MIN_PRICE: Final = Decimal("1e-30")
MAX_NUMBER: Final = Decimal("1e30")
#: The longest penalty wait believed (Tradovate's captcha tickets say 3600 s). A longer
#: ``p-time`` is a bad answer: waiting it out would be waiting forever.
MAX_PENALTY_WAIT: Final = 3600.0


def shown(value: object) -> object:
    """What a caller passed as a symbol, fit for an error message.

    ``value`` itself when it prints short (None, bool, float, a str or int of
    reasonable size), else a short repr: a megabyte of bytes must not become the
    message, a list nested thousands deep must not raise ``RecursionError``, an
    int of 5,000 digits must not raise ``ValueError`` instead of the typed error.
    """
    if value is None or type(value) is bool or type(value) is float:
        return value
    if type(value) is str and len(value) <= 48:
        return value
    if type(value) is int and -(10**40) < value < 10**40:
        return value
    if type(value) is int:
        return f"<int of {value.bit_length()} bits>"
    return reprlib.repr(value)


#: ``take_trades(frames, i, received_at, trades) -> index``: see ``Dialect.take_trades``.
TakeTrades = Callable[[Sequence[str | bytes], int, float, list[Tick]], int]


class MarketBatch:
    """The reader's batch: trades, books and quotes decoded from a run of frames.

    ``connection`` is the number of the connection the frames came from (0 where there is
    none, in tests): what a dialect learns from them about that connection (Tradovate's
    chart ids) it keys by this number.
    """

    __slots__ = ("books", "connection", "quotes", "trades")

    def __init__(self, connection: int = 0) -> None:
        self.connection = connection
        self.trades: list[Tick] = []
        self.books: list[BookSnapshot] = []
        self.quotes: list[Quote] = []

    def __bool__(self) -> bool:
        return bool(self.trades or self.books or self.quotes)


class AnswerKind(enum.Enum):
    """How the feed should treat a venue's answer."""

    OK = "ok"
    REJECTED = "rejected"  # the symbols' fault (unknown, unauthorized, over the plan)
    RATE_LIMITED = "rate-limited"  # too fast: the same request may go again later
    KICKED = "kicked"  # too fast, and the venue closes the connection
    AUTH = "auth"  # the token was refused
    BAD_REQUEST = "bad-request"  # our request was malformed: a bug on our side
    PENALTY = "penalty"  # not applied: resend it with ``ticket`` after ``retry_after`` s
    CAPTCHA = "captcha"  # not applied, and a person must act before anything is resent


@attrs.frozen(slots=True)
class Answer:
    """A venue's answer to one request, or an unsolicited error (``request_id`` 0).

    ``ticket`` is a penalty ticket to add to the resent request (Tradovate
    ``p-ticket``); ``data`` the answer's payload as decoded (Tradovate ``d``), for
    requests whose caller wants it (``contract/find``, user requests).
    """

    request_id: int
    kind: AnswerKind
    code: int
    message: str = ""
    retry_after: float | None = None
    ticket: str | None = None
    data: Any = None


NO_ANSWERS: tuple[Answer, ...] = ()


class NoticeKind(enum.Enum):
    """What a :class:`Notice` says about the connection."""

    OPENED = "opened"  # the venue is ready for the authorize request (Tradovate ``o``)
    #: the venue ended the session (``c[code,"reason"]``): nothing more comes on it, even if
    #: the socket stays open; the session ends at once (``VenueClosed``)
    CLOSING = "closing"
    SHUTDOWN = "shutdown"  # the venue will shut the connection down (``text``: reason code)
    CLOCK = "clock"  # a replay clock tick (``data``: ``{"t": ISO time, "s": speed}``)
    PROPS = "props"  # an entity changed (``data``: the event's ``d``)
    #: a resumed trade stream starts beyond the last trade delivered: the venue's history did
    #: not reach back (``text``: the symbol; ``data``: ``symbol``, ``after``, ``first``,
    #: ``missing``; Tradovate Tick charts)
    TRADE_GAP = "trade_gap"


@attrs.frozen(slots=True)
class Notice:
    """The venue's word about the connection, not an answer to a request."""

    kind: NoticeKind
    code: int | None = None
    text: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict)


class Dialect(Protocol):
    """The wire form of one venue. See ``AllTickDialect`` for the reference implementation."""

    name: str
    semantics: Semantics
    kinds: tuple[StreamKind, ...]
    heartbeat_interval: float
    stale_after: float
    budget_frames: int
    budget_per: float
    budget_margin: float
    reconnect_floor: float
    request_timeout: float
    max_symbols: int | None
    #: connections one token may hold at once (None: unknown, or no limit)
    max_connections: int | None
    #: seconds between subscription requests across one token's connections (None: no rule)
    token_spacing: float | None
    heartbeat_tracked: bool
    authorize_required: bool
    #: the socket keeps a user's account in sync (``open_feed(sync=True)``)
    user_sync: bool

    @property
    def take_trades(self) -> TakeTrades | None:
        """None, or the hot path for runs of plain trade frames.

        ``take_trades(frames, i, received_at, trades)`` appends the ``Tick`` of each frame
        from ``frames[i]`` on, stops at the first it does not take (``decode`` gets that
        one), never raises, and returns the index it stopped at (``len(frames)`` when it
        took them all).
        """

    def validate_symbol(self, symbol: object) -> str:
        """The symbol as the venue spells it, or raise ``InvalidSymbolError``."""

    def connect_url(self, token: Secret | None) -> str:
        """The URL to connect to, token included. Never log it."""

    def display_url(self) -> str:
        """The URL with every secret masked: safe to print."""

    def encode_heartbeat(self, request_id: int) -> str | None:
        """The heartbeat frame (``request_id`` 0 when untracked), or None for no heartbeat."""

    def encode_authorize(self, token: Secret, request_id: int) -> str | None:
        """The authorize frame (sent after ``NoticeKind.OPENED``), or None when not needed."""

    def encode_call(self, endpoint: str, request_id: int, query: str = "", body: Any = None) -> str:
        """A request of the user's own (``feed.request``); ValueError where there are none."""

    def setup_calls(self) -> list[tuple[str, str, Any]]:
        """(endpoint, query, body) requests each new connection makes after authorize and
        before subscribing (Tradovate replay: ``replay/initializeClock``)."""

    def add_penalty_ticket(self, frame: str, ticket: str) -> str:
        """``frame`` with the penalty ticket added (Tradovate: ``"p-ticket"`` in the body)."""

    def user_call(self) -> tuple[str, str, Any]:
        """(endpoint, query, body) of the request that names the token's user
        (Tradovate ``auth/me``); ValueError where ``user_sync`` is False."""

    def read_user_id(self, data: Any) -> int | None:
        """The user id in the answer to :meth:`user_call`, or None when it holds none."""

    def sync_call(self, user_id: int) -> tuple[str, str, Any]:
        """(endpoint, query, body) of the user sync (Tradovate ``user/syncrequest``)."""

    def read_sync(self, data: Any) -> dict[str, tuple[Mapping[str, Any], ...]] | None:
        """The entity lists of a sync answer by name, or None when it is not one."""

    def read_entity(self, data: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]] | None:
        """(entity type, event type, entity) of a ``NoticeKind.PROPS`` notice's ``data``,
        or None when it lacks one of them."""

    def needs_contract_lookup(self, symbol: str) -> bool:
        """Whether ``symbol`` must be resolved before it is first subscribed.

        Tradovate's quotes name only a contract id: the feed asks ``contract/find`` first.
        """

    def encode_contract_lookup(self, symbol: str, request_id: int) -> str:
        """The request that resolves ``symbol``."""

    def learn_contract(self, symbol: str, answer: Answer) -> bool:
        """Record what a lookup answered; False when the answer names no contract."""

    def encode_request(self, request: SendRequest, request_id: int, connection: int = 0) -> str:
        """The frame for one reconciler request, to go on connection ``connection``."""

    def connection_closed(self, connection: int) -> None:
        """Connection ``connection`` is gone: forget what the dialect kept about it."""

    def statistics(self) -> dict[str, int]:
        """The dialect's own counters (frames' parts it dropped, and why), JSON-friendly."""

    def decode(
        self, frame: str | bytes, received_at: float, out: MarketBatch
    ) -> Sequence[Answer | Notice]:
        """Append the frame's market data to ``out``; return its answers and notices.

        Raises ``ProtocolError`` for a frame it cannot understand; the caller counts
        it and goes on.
        """


def check_timings(dialect: Dialect) -> None:
    """Refuse a venue's timings a feed cannot live with, with a ``ValueError`` that says why.

    Heartbeats count against the venue's outbound budget: one every
    ``heartbeat_interval`` may take at most half of it, or subscription
    requests queue behind them until every one of them misses its deadline.
    """
    venue = dialect.name
    heartbeat_interval = dialect.heartbeat_interval
    reconnect_floor, budget_frames, budget_per = (
        dialect.reconnect_floor,
        dialect.budget_frames,
        dialect.budget_per,
    )
    if not (math.isfinite(heartbeat_interval) and heartbeat_interval > 0):
        raise ValueError(
            f"{venue}: heartbeat_interval must be a finite number > 0, got {heartbeat_interval!r}"
        )
    if not (math.isfinite(reconnect_floor) and reconnect_floor >= 0):
        raise ValueError(f"{venue}: reconnect_floor must be >= 0, got {reconnect_floor!r}")
    least = 2.0 * budget_per / budget_frames
    if heartbeat_interval < least:
        raise ValueError(
            f"{venue}: heartbeat_interval {heartbeat_interval:g} s would take over half of the "
            f"venue's budget of {budget_frames} request(s) per {budget_per:g} s; use >= {least:g} s"
        )


def feed_timings(
    dialect: Dialect, stale_after: float | None, request_timeout: float | None
) -> tuple[float, float]:
    """``open_feed``'s ``stale_after`` and ``request_timeout``: as given, else the venue's.

    Each must be a finite number > 0 (``ValueError`` otherwise). With the venue's default
    ``stale_after``, a connection must hear something (a heartbeat answer at least) before
    it is called stale, so the venue's ``heartbeat_interval`` must be shorter; a
    ``stale_after`` given explicitly may be shorter than the heartbeat interval (a busy
    market is never silent that long: the demo runs AllTick on 4 s).
    """
    for name, value in (("stale_after", stale_after), ("request_timeout", request_timeout)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if stale_after is None:
        stale_after = dialect.stale_after
        if dialect.heartbeat_interval >= stale_after:
            raise ValueError(
                f"{dialect.name}: heartbeat_interval ({dialect.heartbeat_interval:g} s) must be "
                f"shorter than stale_after ({stale_after:g} s, the venue's default), or a quiet "
                f"connection is called stale; pass open_feed(stale_after=...)"
            )
    return stale_after, dialect.request_timeout if request_timeout is None else request_timeout
