"""The simulator's encoder and the client's decoder were written apart; they must agree.

Hypothesis builds trades and books as the simulator holds them, the simulator
encodes them in every wire variant AllTick is known to use, and the AllTick
dialect must decode exactly the same values back.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._json_lines import market_dict
from tickactors.sim._alltick_protocol import Variant, encode_book, encode_trade
from tickactors.sim._market import Book, Trade
from tickactors.venues import AllTick
from tickactors.venues._dialect import MarketBatch

DIALECT = AllTick(url="ws://127.0.0.1:1/quote-b-ws-api", token="t").dialect

codes = st.from_regex(r"[A-Z0-9][A-Z0-9._\-]{0,12}", fullmatch=True)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e9"), places=4).map(str)
volumes = st.decimals(min_value=Decimal(0), max_value=Decimal("1e9"), places=4).map(str)
times = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)
variants = st.builds(Variant, st.booleans(), st.booleans(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    code=codes,
    seq=st.integers(min_value=0, max_value=2**63),
    time=times,
    price=prices,
    volume=volumes,
    turnover=st.none() | volumes,
    direction=st.sampled_from([0, 1, 2]),
    variant=variants,
)
def test_trade_round_trip(code, seq, time, price, volume, turnover, direction, variant):
    frame = encode_trade(Trade(code, seq, float(time), price, volume, turnover, direction), variant)
    batch = MarketBatch()
    assert DIALECT.decode(frame, 1.5, batch) == ()
    (tick,) = batch.trades
    assert tick.symbol == code
    assert tick.price == Decimal(price) and str(tick.price) == price
    assert tick.volume == Decimal(volume)
    assert tick.seq == seq
    assert tick.exchange_time == float(time)  # seconds or milliseconds on the wire
    assert tick.received_at == 1.5
    assert tick.fields.get("turnover") == (None if turnover is None else Decimal(turnover))
    assert tick.fields["trade_direction"] == direction


levels = st.lists(st.tuples(prices, volumes), min_size=0, max_size=10).map(tuple)


@settings(max_examples=200, deadline=None)
@given(
    code=codes,
    seq=st.integers(0, 2**40),
    time=times,
    bids=levels,
    asks=levels,
    depth=st.integers(1, 10),
    variant=variants,
)
def test_book_round_trip(code, seq, time, bids, asks, depth, variant):
    frame = encode_book(Book(code, seq, float(time), bids, asks), depth, variant)
    batch = MarketBatch()
    DIALECT.decode(frame, 0.0, batch)
    (book,) = batch.books
    assert book.symbol == code
    assert [(str(lv.price), str(lv.volume)) for lv in book.bids] == list(bids[:depth])
    assert [(str(lv.price), str(lv.volume)) for lv in book.asks] == list(asks[:depth])
    assert book.seq == seq
    assert book.exchange_time == float(time)


def test_forex_book_without_volume_decodes():
    """AllTick's forex and metals books carry a price per side and no size (the simulator's
    default): the level's volume is None, and null in the runner's JSON."""
    book = Book("EURUSD", 1, 1_700_000_000.0, (("1.08512", "3"),), (("1.08519", "4"),))
    batch = MarketBatch()
    DIALECT.decode(encode_book(book, 1, volumes=False), 0.0, batch)
    (decoded,) = batch.books
    assert [str(lv.price) for lv in decoded.bids] == ["1.08512"]
    assert decoded.bids[0].volume is None and decoded.asks[0].volume is None
    assert market_dict(decoded)["bids"] == [["1.08512", None]]
