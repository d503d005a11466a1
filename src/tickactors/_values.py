"""The values a feed hands to its user: frozen attrs classes, exact decimal prices.

The wire form of these values is a dialect's business (``tickactors.venues``);
here they are plain data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs


class StreamKind(enum.Enum):
    """What a subscription streams."""

    TRADES = "trades"
    BOOK = "book"
    QUOTES = "quotes"

    def __str__(self) -> str:
        return self.value


TRADES = StreamKind.TRADES
BOOK = StreamKind.BOOK
QUOTES = StreamKind.QUOTES


@attrs.frozen(slots=True)
class Tick:
    """One trade (AllTick 22998; Tradovate trades arrive inside a :class:`Quote`).

    ``price`` and ``volume`` keep the venue's exact decimal value. ``exchange_time``
    is the venue's timestamp in seconds since the epoch, ``received_at`` the
    feed's clock (``trio.current_time()``) when the frame arrived.
    ``fields`` holds the venue's other fields (AllTick ``turnover`` and
    ``trade_direction``, for example).
    """

    symbol: str
    price: Decimal
    volume: Decimal | None = None
    exchange_time: float | None = None
    seq: int | None = None
    received_at: float = 0.0
    fields: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    @property
    def kind(self) -> StreamKind:
        return StreamKind.TRADES


@attrs.frozen(slots=True)
class BookLevel:
    """One price level of an order book."""

    price: Decimal
    volume: Decimal


@attrs.frozen(slots=True)
class BookSnapshot:
    """One order-book update (AllTick 22999): the top levels of each side."""

    symbol: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    exchange_time: float | None = None
    seq: int | None = None
    received_at: float = 0.0
    fields: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    @property
    def kind(self) -> StreamKind:
        return StreamKind.BOOK


@attrs.frozen(slots=True)
class Quote:
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
    fields: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    @property
    def kind(self) -> StreamKind:
        return StreamKind.QUOTES

    @property
    def price(self) -> Decimal | None:
        """The last trade price (``last``), so ``item.price`` reads alike for every value."""
        return self.last


MarketData = Tick | BookSnapshot | Quote


@attrs.frozen(slots=True)
class HealthEvent:
    """Something the feed noticed or did: connected, stale, reconnecting, rejected, ...

    ``event`` names it (see ``docs/architecture.md`` for the list); ``time`` is the
    feed's clock; ``connection`` the number of the connection it concerns (0 for
    the feed itself); ``detail`` the specifics, JSON-friendly and never a secret.
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
