"""The fuzz oracle: run one frame through a dialect and judge what happened.

A decoder may do exactly two things with a frame: raise ``ProtocolError`` (the
session counts the frame as bad, :meth:`Session._bad_frame`) having added
nothing to the batch, or return answers and notices and append market data
whose every value is valid: prices finite and in ``[MIN_PRICE, MAX_NUMBER)``,
sizes and volumes in ``[0, MAX_NUMBER)``, sequence numbers and ids in range,
times finite, messages short strings. Any other exception is a bug
(:class:`Escaped`); a bad value is a bug too (``AssertionError``).

:class:`Decoders` keeps one dialect per venue for a whole run, as a feed does
(the Tradovate dialect has state: contract names, the timestamp cache, the
replay clock), and one batch that grows until it is reset, so that a rejected
frame must leave earlier frames' items alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from tickactors import ProtocolError
from tickactors._values import BookLevel, BookSnapshot, Quote, Tick
from tickactors.venues import AllTick, Tradovate
from tickactors.venues._dialect import (
    MAX_NUMBER,
    MIN_PRICE,
    Answer,
    AnswerKind,
    Dialect,
    MarketBatch,
    Notice,
    NoticeKind,
)

URL = "ws://127.0.0.1:1/fuzz"
RECEIVED_AT = 12.5


class Escaped(Exception):
    """An exception other than ProtocolError left the decoder."""


def dialects() -> dict[str, Dialect]:
    tradovate = Tradovate(url=URL, token="fuzz-token").dialect
    tradovate.remember_contract(123456, "ESZ6")  # some quotes decode under a name
    return {"alltick": AllTick(url=URL, token="fuzz-token").dialect, "tradovate": tradovate}


def _price(value: object) -> None:
    assert type(value) is Decimal and value.is_finite(), value
    assert MIN_PRICE <= value < MAX_NUMBER, value


def _size(value: object) -> None:
    assert type(value) is Decimal and value.is_finite(), value
    assert 0 <= value < MAX_NUMBER, value


def _optional(check: Any, value: object) -> None:
    if value is not None:
        check(value)


def _time(value: object) -> None:
    assert value is None or (type(value) is float and math.isfinite(value)), value


def _symbol(value: object) -> None:
    assert type(value) is str and 0 < len(value) <= 64, value


def _levels(levels: object) -> None:
    assert type(levels) is tuple
    for level in levels:
        assert type(level) is BookLevel
        _price(level.price)
        _optional(_size, level.volume)  # forex and metals books have none


def check_tick(tick: Tick) -> None:
    _symbol(tick.symbol)
    _price(tick.price)
    _optional(_size, tick.volume)
    _time(tick.exchange_time)
    assert tick.exchange_time is None or tick.exchange_time >= 0
    assert tick.seq is None or (type(tick.seq) is int and 0 <= tick.seq < 2**64)
    assert tick.received_at == RECEIVED_AT
    _optional(_size, tick.fields.get("turnover"))
    assert tick.fields.get("trade_direction", 0) in (0, 1, 2)
    assert set(tick.fields) <= {"turnover", "trade_direction"}


def check_book(book: BookSnapshot) -> None:
    _symbol(book.symbol)
    _levels(book.bids)
    _levels(book.asks)
    _time(book.exchange_time)
    assert book.seq is None or (type(book.seq) is int and 0 <= book.seq < 2**64)
    assert book.received_at == RECEIVED_AT


def check_quote(quote: Quote) -> None:
    _symbol(quote.symbol)
    assert type(quote.contract_id) is int and 0 < quote.contract_id < 2**63
    for price in (quote.bid, quote.offer, quote.last):
        _optional(_price, price)
    for size in (quote.bid_size, quote.offer_size, quote.last_size, quote.total_volume):
        _optional(_size, size)
    _time(quote.exchange_time)
    assert quote.received_at == RECEIVED_AT
    for value in quote.fields.values():
        if isinstance(value, Mapping):  # an entry with both: {"price": p, "size": s}
            _price(value["price"])
            _size(value["size"])
        else:  # an entry's price, or its size, or None for an empty entry
            _optional(_size, value)


def check_found(found: Sequence[Answer | Notice]) -> None:
    for item in found:
        if isinstance(item, Answer):
            assert type(item.request_id) is int and 0 <= item.request_id < 2**64
            assert isinstance(item.kind, AnswerKind) and type(item.code) is int
            assert type(item.message) is str and len(item.message) <= 200
            if item.retry_after is not None:
                assert math.isfinite(item.retry_after) and item.retry_after >= 0
            if item.kind is AnswerKind.PENALTY:
                assert item.retry_after is not None
            assert item.ticket is None or type(item.ticket) is str
        else:
            assert isinstance(item, Notice) and isinstance(item.kind, NoticeKind)
            assert item.code is None or type(item.code) is int
            assert type(item.text) is str and isinstance(item.data, Mapping)
            if item.kind is NoticeKind.CLOCK:
                stamp = item.data.get("t")
                assert stamp is None or (type(stamp) is str and len(stamp) <= 64)
                assert item.data.get("s") is None or type(item.data["s"]) in (int, float)


class Decoders:
    """One dialect and one batch per venue; :meth:`judge` runs and checks one frame."""

    RESET_EVERY = 256

    def __init__(self) -> None:
        self.dialects = dialects()
        self.batches = {venue: MarketBatch() for venue in self.dialects}
        self._since_reset = 0

    def judge(self, venue: str, frame: str | bytes) -> bool:
        """True: accepted (outputs checked); False: rejected with ProtocolError.

        Raises :class:`Escaped` for any other exception, ``AssertionError`` for a bad value.
        """
        self._since_reset += 1
        if self._since_reset >= self.RESET_EVERY:
            self._since_reset = 0
            self.batches = {venue: MarketBatch() for venue in self.dialects}
        batch = self.batches[venue]
        before = (len(batch.trades), len(batch.books), len(batch.quotes))
        try:
            found = self.dialects[venue].decode(frame, RECEIVED_AT, batch)
        except ProtocolError as exc:
            assert type(str(exc)) is str
            after = (len(batch.trades), len(batch.books), len(batch.quotes))
            assert after == before, "a rejected frame left items in the batch"
            return False
        except Exception as exc:
            raise Escaped(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        trades, books, quotes = before
        for tick in batch.trades[trades:]:
            check_tick(tick)
        for book in batch.books[books:]:
            check_book(book)
        for quote in batch.quotes[quotes:]:
            check_quote(quote)
        check_found(found)
        return True
