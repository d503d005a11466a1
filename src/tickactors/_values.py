"""The values a feed hands to its user: frozen structs, exact decimal prices.

Market data (:class:`Tick`, :class:`BookSnapshot`, :class:`BookLevel`, :class:`Quote`)
are frozen ``msgspec.Struct`` classes: one is built per trade on the hot path, and a
Struct builds in about 80 ns where a frozen attrs class with slots takes 450-570 ns
(``docs/performance.md``). They read, compare, hash, print, copy and pickle as the frozen
attrs classes they replaced did: positional or keyword construction in field order,
``AttributeError`` on assignment, equality and hash over every field but ``fields``.
``msgspec.structs.replace(tick, price=...)`` is ``attrs.evolve``'s counterpart.
They are not tracked by the cyclic garbage collector (``gc=False``: at several hundred
thousand ticks a second, tracking them cost 8 % of the feed's CPU in collections); none
of their parts can hold a reference back to the value, except ``fields``, a dict: do not
put a value into its own ``fields`` (or into anything those reach), or it is never freed.
:class:`HealthEvent`, built a few times a second at most, stays a frozen attrs class;
:class:`EventName` names its events, :class:`StatusName` the runner's status lines.
The user's account on a trading socket (Tradovate, ``open_feed(sync=True)``) comes as
:class:`SyncSnapshot` values (the venue's whole answer to a user sync) and
:class:`EntityEvent` values (one entity created, updated or deleted), together
:data:`AccountUpdate`: frozen attrs classes too, a few per order, not per tick.

The wire form of these values is a dialect's business (``tickactors.venues``);
here they are plain data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import attrs
import msgspec


class StreamKind(enum.Enum):
    """What a subscription streams."""

    TRADES = "trades"
    BOOK = "book"
    QUOTES = "quotes"

    # Members are singletons compared by identity, so identity may hash them: the reader's
    # hot path looks kinds up in dicts several times a batch, and ``Enum.__hash__`` is a
    # Python method (``hash(self._name_)``), this one a C slot.
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


# ``Final``: a type checker sees each as its literal member, so ``feed.ticks(kind=TRADES)``
# is typed ``AsyncIterator[Tick]`` (the overloads of ``Feed.ticks`` and ``Feed.batches``).
TRADES: Final = StreamKind.TRADES
"""Trades (:class:`Tick`): AllTick's main stream; Tradovate's Tick charts."""
BOOK: Final = StreamKind.BOOK
"""Order books (:class:`BookSnapshot`): AllTick's depth, Tradovate's DOM."""
QUOTES: Final = StreamKind.QUOTES
"""Top-of-book quotes (:class:`Quote`): Tradovate's main stream."""


class _MarketValue(msgspec.Struct, frozen=True, eq=False, gc=False):
    """Equality and hash over every field but ``fields`` (the venue's extras: a dict)."""

    def _compared(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__struct_fields__ if name != "fields")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _MarketValue)
        return self._compared() == other._compared()

    def __ne__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _MarketValue)
        return self._compared() != other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())


class Tick(_MarketValue, frozen=True, eq=False, gc=False):
    """One trade (AllTick 22998; a tick of a Tradovate Tick chart, ``seq`` its tick id).

    ``price`` and ``volume`` keep the venue's exact decimal value. ``exchange_time``
    is the venue's timestamp in seconds since the epoch, ``received_at`` the
    feed's clock (``trio.current_time()``) when the frame arrived.
    ``fields`` holds the venue's other fields (AllTick ``turnover`` and
    ``trade_direction``; Tradovate ``bid``, ``ask``, ``bid_size``, ``ask_size``).
    """

    symbol: str
    price: Decimal
    volume: Decimal | None = None
    exchange_time: float | None = None
    seq: int | None = None
    received_at: float = 0.0
    fields: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def kind(self) -> StreamKind:
        return StreamKind.TRADES


class BookLevel(msgspec.Struct, frozen=True, gc=False):
    """One price level of an order book. ``volume`` is None where the venue sends none
    (AllTick's forex and metals books: a price per side, no size; ``docs/venues.md``)."""

    price: Decimal
    volume: Decimal | None = None


class BookSnapshot(_MarketValue, frozen=True, eq=False, gc=False):
    """One order-book update (AllTick 22999): the top levels of each side."""

    symbol: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    exchange_time: float | None = None
    seq: int | None = None
    received_at: float = 0.0
    fields: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def kind(self) -> StreamKind:
        return StreamKind.BOOK


class Quote(_MarketValue, frozen=True, eq=False, gc=False):
    """One top-of-book quote (Tradovate ``md/subscribeQuote``): any part may be missing.

    ``bid``/``bid_size``, ``offer``/``offer_size`` are the best levels, ``last`` and
    ``last_size`` the last trade (the ``Trade`` entry), ``total_volume`` the session's
    traded volume; each is None when the venue left the entry (or the price or size
    inside it) out. ``contract_id`` is the venue's id of the contract, ``symbol`` its
    name (``"#<id>"`` while the id is unknown to the dialect). ``fields`` holds the
    venue's other entries by name (``HighPrice``, ``OpenInterest``, ...).
    """

    symbol: str
    contract_id: int | None = None
    bid: Decimal | None = None
    bid_size: Decimal | None = None
    offer: Decimal | None = None
    offer_size: Decimal | None = None
    last: Decimal | None = None
    last_size: Decimal | None = None
    total_volume: Decimal | None = None
    exchange_time: float | None = None
    received_at: float = 0.0
    fields: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def kind(self) -> StreamKind:
        return StreamKind.QUOTES

    @property
    def price(self) -> Decimal | None:
        """The last trade price (``last``), so ``item.price`` reads alike for every value."""
        return self.last


MarketData = Tick | BookSnapshot | Quote
"""Any item of market data a feed yields; narrow it by ``kind=`` (``feed.ticks(kind=TRADES)``
yields :class:`Tick` alone) or by ``isinstance``."""


class EventName(enum.StrEnum):
    """The name of every :class:`HealthEvent` (its ``event``): the feed's and the sinks'.

    A member *is* its string (``EventName.STALE == "stale"``, ``str()`` and JSON give
    ``"stale"``), so code that compares ``event.event == "stale"`` keeps working; comparing
    with ``EventName.STALE`` lets a type checker and a reader find every use. What each
    one means, who emits it and what its ``detail`` holds: the tables of
    ``docs/architecture.md`` ("Health events") and ``docs/sinks.md`` ("Events");
    ``tests/test_event_names.py`` keeps the tables, this list and the emitting code equal.

    The runner's own status lines are not health events: their names are
    :class:`StatusName`.
    """

    # -- the feed: tokens, connections, the venue's word
    TOKEN_REFRESHED = "token_refreshed"
    TOKEN_FAILED = "token_failed"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CONNECT_FAILED = "connect_failed"
    CERTIFICATE_FAILED = "certificate_failed"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth_failed"
    AUTHORIZED = "authorized"
    SETUP = "setup"
    CLOCK = "clock"
    VENUE_CLOSING = "venue_closing"
    SHUTDOWN = "shutdown"
    # -- the feed: make-before-break rotation
    ROTATING = "rotating"
    ROTATED = "rotated"
    HANDOVER_INCOMPLETE = "handover_incomplete"
    ROTATION_FAILED = "rotation_failed"
    # -- the feed: staleness, frames, subscriptions, delivery
    STALE = "stale"
    SYMBOL_STALE = "symbol_stale"
    LAGGING = "lagging"
    CAUGHT_UP = "caught_up"
    DECODE_ERROR = "decode_error"
    SUBSCRIBED = "subscribed"
    REJECTED = "rejected"
    GHOST = "ghost"
    GAP = "gap"
    TRADE_GAP = "trade_gap"
    # -- the feed: requests and the venue's answers
    REQUEST_TIMEOUT = "request_timeout"
    RATE_LIMITED = "rate_limited"
    PENALTY = "penalty"
    CAPTCHA = "captcha"
    VENUE_ERROR = "venue_error"
    # -- the feed: the user's account on a trading socket (``open_feed(sync=True)``)
    RESYNCED = "resynced"
    SYNC_FAILED = "sync_failed"
    # -- the sinks (``tickactors.sinks``): ``detail["sink"]`` names the sink
    SINK_ROTATED = "sink_rotated"
    SINK_REPAIRED = "sink_repaired"
    SINK_ERROR = "sink_error"
    SINK_RECOVERED = "sink_recovered"
    SINK_CONNECTED = "sink_connected"
    SINK_CONNECT_FAILED = "sink_connect_failed"
    SINK_DISCONNECTED = "sink_disconnected"
    SINK_REJECTED = "sink_rejected"
    SINK_LOSS = "sink_loss"
    SINK_CLOSED = "sink_closed"


class StatusName(enum.StrEnum):
    """The names of the runner's own status lines (``python -m tickactors``).

    A status line has the shape of a health event (``"kind": "status"``, ``event``,
    ``message``, ``time``, ``connection`` 0, details) and goes wherever health events go
    (stdout, every sink), but no feed emits it and it is never a :class:`HealthEvent`:
    it says what the runner itself did. Hence an enum of its own, beside
    :class:`EventName`: a library user handles every ``EventName`` a feed can send and
    none of these. The list, with what each line carries: ``docs/architecture.md``
    ("The runner's status lines").
    """

    COMMAND = "command"
    COMMAND_ERROR = "command_error"
    ERROR = "error"
    FATAL = "fatal"
    STOPPED = "stopped"
    STDOUT_LOSS = "stdout_loss"
    SHARD = "shard"
    METRICS = "metrics"
    DEMO_FAULT = "demo_fault"
    #: a stdin ``request`` answered / failed: their own kinds of line on stdout
    #: (``_cli/request_outcome.py``), status records in the sinks
    ANSWER = "answer"
    REQUEST_FAILED = "request_failed"


@attrs.frozen(slots=True)
class HealthEvent:
    """Something the feed noticed or did: connected, stale, reconnecting, rejected, ...

    ``event`` names it: an :class:`EventName` (a ``str``; see ``docs/architecture.md``
    for the list); ``time`` is the feed's clock; ``connection`` the number of the
    connection it concerns (0 for the feed itself); ``detail`` the specifics,
    JSON-friendly and never a secret.
    """

    event: str
    time: float
    connection: int = 0
    message: str = ""
    detail: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "status",
            "event": self.event,
            "time": round(self.time, 6),
            "connection": self.connection,
        }
        if self.message:
            out["message"] = self.message
        out.update(self.detail)
        return out


@attrs.frozen(slots=True)
class EntityEvent:
    """One of the user's entities changed (Tradovate's ``props`` event on a synced socket).

    ``entity_type`` is the venue's name of the kind (``"order"``, ``"executionReport"``,
    ``"fill"``, ``"position"``, ``"cashBalance"``, ...), ``event_type`` what happened as
    the venue says it (``"Created"``, ``"Updated"``, ``"Deleted"``), ``entity`` the entity
    as the venue sent it (Tradovate sends the whole entity on an update). ``connection``
    is the number of the connection it came on, ``received_at`` the feed's clock when its
    frame arrived. Apply it on top of the latest :class:`SyncSnapshot` (by ``id``).
    """

    entity_type: str
    event_type: str
    entity: Mapping[str, Any]
    connection: int
    received_at: float


@attrs.frozen(slots=True)
class SyncSnapshot:
    """The venue's answer to a user sync (Tradovate ``user/syncrequest``): the whole state.

    ``entities`` maps each list of the answer by its name (``"users"``, ``"accounts"``,
    ``"positions"``, ``"orders"``, ``"fills"``, ``"cashBalances"``, ``"contracts"``,
    ``"products"``, ... whatever the venue sent) to its entities, in the venue's order.
    ``user_id`` is the user the feed asked for (None only if it did not know),
    ``connection`` the connection it came on, ``received_at`` the feed's clock when it
    arrived. A snapshot replaces whatever state a bot kept; the :class:`EntityEvent`
    values after it apply on top of it.
    """

    user_id: int | None
    entities: Mapping[str, tuple[Mapping[str, Any], ...]]
    connection: int
    received_at: float

    def counts(self) -> dict[str, int]:
        """Entities per list name (``{"orders": 2, "positions": 1, ...}``)."""
        return {name: len(items) for name, items in self.entities.items()}


AccountUpdate = SyncSnapshot | EntityEvent
"""What ``feed.account()`` yields: a :class:`SyncSnapshot`, then :class:`EntityEvent` values
that apply on top of it, in the order the venue sent them."""
