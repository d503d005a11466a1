"""The AllTick dialect: every documented variant decodes, bad frames raise ProtocolError."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors import InvalidSymbolError, ProtocolError, Secret
from tickactors._core.reconciler import Action, SendRequest
from tickactors._values import BOOK, TRADES
from tickactors.venues import AllTick
from tickactors.venues._dialect import AnswerKind, MarketBatch

TOKEN = "tok-SECRET-4f9a2c"


def dialect():
    return AllTick(url="ws://127.0.0.1:1/quote-b-ws-api", token=TOKEN).dialect


def decode(frame):
    batch = MarketBatch()
    answers = dialect().decode(frame, 5.0, batch)
    return batch, answers


def test_documented_trade_push_decodes_exactly():
    frame = (
        '{"cmd_id":22998,"data":{"code":"1288.HK","seq":1605509068000001,'
        '"tick_time":1605509068,"price":"651.12","volume":"300","turnover":"12345.6",'
        '"trade_direction":1}}'
    )
    batch, answers = decode(frame)
    assert answers == ()
    (tick,) = batch.trades
    assert tick.symbol == "1288.HK"
    assert tick.price == Decimal("651.12")
    assert str(tick.price) == "651.12"
    assert tick.volume == Decimal("300")
    assert tick.seq == 1605509068000001
    assert tick.exchange_time == 1605509068.0
    assert tick.received_at == 5.0
    assert tick.fields == {"turnover": Decimal("12345.6"), "trade_direction": 1}


@pytest.mark.parametrize(
    ("seq", "tick_time", "expected_time"),
    [
        (7, 1605509068, 1605509068.0),
        ("7", "1605509068", 1605509068.0),
        (7, 1605509068123, 1605509068.123),
        ("7", "1605509068123", 1605509068.123),
    ],
)
def test_seq_and_tick_time_as_int_or_string_seconds_or_ms(seq, tick_time, expected_time):
    frame = orjson.dumps(
        {
            "cmd_id": 22998,
            "data": {
                "code": "EURUSD",
                "seq": seq,
                "tick_time": tick_time,
                "price": "1.0842",
                "volume": "0",
                "trade_direction": 0,
            },
        }
    )
    batch, _ = decode(frame)
    (tick,) = batch.trades
    assert tick.seq == 7
    assert tick.exchange_time == pytest.approx(expected_time)
    assert "turnover" not in tick.fields


def test_depth_push_decodes_levels():
    frame = orjson.dumps(
        {
            "cmd_id": 22999,
            "data": {
                "code": "700.HK",
                "seq": "9",
                "tick_time": "1700000000000",
                "bids": [{"price": "300.2", "volume": "100"}, {"price": "300.0", "volume": "5"}],
                "asks": [{"price": "300.4", "volume": "7"}],
            },
        }
    )
    batch, _ = decode(frame)
    (book,) = batch.books
    assert book.symbol == "700.HK"
    assert [lv.price for lv in book.bids] == [Decimal("300.2"), Decimal("300.0")]
    assert book.asks[0].volume == Decimal("7")
    assert book.exchange_time == 1700000000.0


@pytest.mark.parametrize(
    ("ret", "kind"),
    [
        (200, AnswerKind.OK),
        (400, AnswerKind.BAD_REQUEST),
        (401, AnswerKind.AUTH),
        (402, AnswerKind.BAD_REQUEST),
        (429, AnswerKind.RATE_LIMITED),
        (600, AnswerKind.REJECTED),
        (601, AnswerKind.BAD_REQUEST),
        (603, AnswerKind.REJECTED),
        (604, AnswerKind.REJECTED),
        (605, AnswerKind.RATE_LIMITED),
        (606, AnswerKind.KICKED),
    ],
)
def test_every_ret_code_maps_to_a_typed_outcome(ret, kind):
    frame = orjson.dumps(
        {"ret": ret, "msg": "m", "cmd_id": 22005, "seq_id": 12, "trace": "x", "data": {}}
    )
    _, (answer,) = decode(frame)
    assert answer.request_id == 12
    assert answer.code == ret
    assert answer.kind is kind


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "{",
        "[]",
        "null",
        '{"cmd_id":22998}',
        '{"cmd_id":22998,"data":[]}',
        '{"cmd_id":22998,"data":{"code":"A","price":"abc"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"-1"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"0"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"NaN"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"Infinity"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":[1]}}',
        '{"cmd_id":22998,"data":{"code":"","price":"1"}}',
        '{"cmd_id":22998,"data":{"code":5,"price":"1"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"1","seq":-4}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"1","seq":"x"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"1","trade_direction":7}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"1","tick_time":1e400}}',
        '{"cmd_id":22999,"data":{"code":"A","bids":{"price":"1"}}}',
        '{"cmd_id":12345,"data":{}}',
        '{"ret":"200","seq_id":1}',
        b"\xff\xfe\xfd",
    ],
)
def test_malformed_frames_raise_protocol_error(frame):
    with pytest.raises(ProtocolError):
        decode(frame)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=12,
)
_push = st.fixed_dictionaries(
    {
        "cmd_id": st.sampled_from([22998, 22999, 22001, 0, "22998"]),
        "data": st.dictionaries(
            st.sampled_from(
                [
                    "code",
                    "price",
                    "volume",
                    "seq",
                    "tick_time",
                    "turnover",
                    "trade_direction",
                    "bids",
                    "asks",
                ]
            ),
            _json,
            max_size=9,
        ),
    },
    optional={"ret": _json, "seq_id": _json},
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200), st.text(max_size=200), _json.map(json.dumps), _push.map(json.dumps)
    )
)
def test_any_frame_either_decodes_or_raises_protocol_error(frame):
    try:
        batch, _ = decode(frame)
    except ProtocolError:
        return
    for tick in batch.trades:
        assert tick.price > 0
        assert tick.symbol


def test_requests_are_replace_all_with_unique_seq_ids():
    d = dialect()
    frame = orjson.loads(d.encode_request(SendRequest(1, TRADES, Action.REPLACE, ("A", "B")), 41))
    assert frame == {
        "cmd_id": 22004,
        "seq_id": 41,
        "trace": "ta-41",
        "data": {"symbol_list": [{"code": "A"}, {"code": "B"}]},
    }
    frame = orjson.loads(d.encode_request(SendRequest(2, BOOK, Action.REPLACE, ("700.HK",)), 42))
    assert frame["cmd_id"] == 22002
    assert frame["data"]["symbol_list"] == [{"code": "700.HK", "depth_level": 5}]
    assert orjson.loads(d.encode_request(SendRequest(3, TRADES, Action.CANCEL, ()), 43))[
        "data"
    ] == {"cancel_type": 2}
    assert orjson.loads(d.encode_request(SendRequest(4, BOOK, Action.CANCEL, ()), 44))["data"] == {
        "cancel_type": 1
    }
    assert orjson.loads(d.encode_heartbeat(45)) == {
        "cmd_id": 22000,
        "seq_id": 45,
        "trace": "ta-45",
        "data": {},
    }
    with pytest.raises(ValueError):
        d.encode_request(SendRequest(5, TRADES, Action.SUBSCRIBE, ("A",)), 46)


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        " AAPL",
        "AAPL ",
        "A\x00B",
        "A\nB",
        "\u0412\u0422\u0421",
        "BTCUSD\u0422",
        "x" * 41,
        "-A",
        5,
        None,
        ["A"],
    ],
)
def test_bad_symbols_raise_invalid_symbol_error(symbol):
    with pytest.raises(InvalidSymbolError) as info:
        dialect().validate_symbol(symbol)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("symbol", ["700.HK", "BTCUSDT", "EURUSD", "AAPL.US", "GOLD", "ES_F-1"])
def test_good_symbols_pass(symbol):
    assert dialect().validate_symbol(symbol) == symbol


def test_token_is_in_the_connect_url_only():
    venue = AllTick(url="wss://quote.alltick.co/quote-b-ws-api", token=TOKEN)
    d = venue.dialect
    assert d.connect_url(Secret(TOKEN)) == f"wss://quote.alltick.co/quote-b-ws-api?token={TOKEN}"
    assert TOKEN not in d.display_url()
    assert "token=***" in d.display_url()
    assert TOKEN not in repr(venue)
    assert TOKEN not in repr(venue.token_source)


def test_url_with_token_inside_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as info:
        AllTick(url=f"wss://h/quote-b-ws-api?token={TOKEN}", token=TOKEN)
    assert TOKEN not in str(info.value)
