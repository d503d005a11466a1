"""The simulator's pure parts: request parsing and validation, encoders, the market, framing."""

from __future__ import annotations

import ast
import json
import random
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors.sim import SimConfig
from tickactors.sim import _alltick_protocol as proto
from tickactors.sim._market import Market, format_units, is_forex
from tickactors.sim._wsio import encode_frame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.text())
def test_parse_never_raises_on_text(text: str) -> None:
    request = proto.parse_request(text)
    assert request.error is not None or request.cmd_id in proto.REQUESTS


@given(st.dictionaries(st.sampled_from(["cmd_id", "seq_id", "trace", "data", "x"]), json_values))
def test_parse_never_raises_on_objects(obj: dict[str, Any]) -> None:
    request = proto.parse_request(json.dumps(obj))
    if request.error is None:
        assert request.cmd_id in proto.REQUESTS
        assert isinstance(request.data, dict)
        assert 0 <= request.seq_id < 2**32


def test_parse_accepts_missing_trace_and_null_data() -> None:
    request = proto.parse_request('{"cmd_id":22000,"seq_id":4294967295,"data":null}')
    assert request.error is None
    assert (request.seq_id, request.trace, request.data, request.answer_id) == (
        2**32 - 1,
        "",
        {},
        22001,
    )
    php = proto.parse_request('{"cmd_id":22000,"seq_id":1,"trace":"","data":[]}')
    assert (php.error, php.data) == (None, {})
    assert proto.parse_request('{"cmd_id":22004,"seq_id":1,"data":[]}').data == {}
    assert proto.parse_request('{"cmd_id":22000,"seq_id":1,"data":[{}]}').error is not None
    assert proto.parse_request('{"cmd_id":22000,"seq_id":4294967296}').error is not None
    assert proto.parse_request('{"cmd_id":22000,"seq_id":-1}').error is not None


def _check(cmd_id: int, entries: Any, **config: Any) -> proto.Subscription | proto.Rejection:
    return proto.check_symbol_list(cmd_id, {"symbol_list": entries}, SimConfig(**config))


def test_validation_order_and_results() -> None:
    bad_and_dup = [{"code": "A B"}, {"code": "X"}, {"code": "X"}]
    assert _check(22004, bad_and_dup) == proto.Rejection(600, "code invalid")
    dup_and_unauth = [{"code": "X"}, {"code": "X"}, {"code": "Y"}]
    assert _check(22004, dup_and_unauth, unauthorized_codes={"Y"}).violation == "duplicate_code"
    assert _check(22004, [{"code": "Y"}], unauthorized_codes={"Y"}).ret == 604
    over = [{"code": c} for c in "ABC"]
    assert _check(22004, over, max_symbols=2, over_cap="reject").ret == 603
    capped = _check(22004, over, max_symbols=2)  # "ignore", the default
    assert capped == proto.Subscription(("A", "B"), {"A": 0, "B": 0})
    entries = [{"code": "700.HK", "depth_level": 10}, {"code": "5.HK"}, {"code": "9.HK"}]
    entries[2]["depth_level"] = 100  # "as many as there are": capped at the market's depth
    depth = _check(22002, entries)
    assert isinstance(depth, proto.Subscription)
    assert dict(depth.depth_levels) == {"700.HK": 10, "5.HK": 1, "9.HK": proto.MAX_DEPTH}
    old = _check(22002, entries[1:2], default_depth=5)
    assert isinstance(old, proto.Subscription) and dict(old.depth_levels) == {"5.HK": 5}
    assert _check(22002, [{"code": "A", "depth_level": "5"}]).ret == 400
    assert _check(22002, [{"code": "A", "depth_level": 0}]).ret == 400
    assert _check(22002, [{"code": "A", "depth_level": 1.5}]).ret == 400
    assert _check(22004, [{"code": "A", "depth_level": "whatever"}]) == proto.Subscription(
        ("A",), {"A": 0}
    )
    assert _check(22004, [{"code": "x" * 41}]).ret == 600
    assert _check(22004, "BTCUSDT").ret == 400
    assert _check(22004, None).violation == "empty_list"
    assert proto.check_cancel({"cancel_type": True}) == proto.Rejection(
        400, "cancel_type must be 0, 1 or 2", "bad_request"
    )


def _eval_safe(frame: bytes) -> dict[str, Any]:
    text = frame.decode()
    parsed: dict[str, Any] = ast.literal_eval(text)
    assert parsed == orjson.loads(frame)
    return parsed


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    code=st.sampled_from(["BTCUSDT", "EURUSD", "USDJPY", "700.HK", "AAPL.US", "XAUUSD", "x"]),
    levels=st.integers(1, 50),
)
def test_market_walk_stays_positive_and_ordered(seed: int, code: str, levels: int) -> None:
    market = Market(seed, 1_700_000_000.0)
    rng = random.Random(seed)
    last_seq = 0
    decimals = None
    for i in range(300):
        if i % 10 == 0:
            book = market.book(code, levels, 1_700_000_000.0 + i)
            assert book.seq > last_seq
            last_seq = book.seq
            bids = [Decimal(p) for p, _ in book.bids]
            asks = [Decimal(p) for p, _ in book.asks]
            assert len(bids) == len(asks) == levels
            assert all(p > 0 for p in bids) and bids == sorted(bids, reverse=True)
            assert bids[0] < asks[0] and asks == sorted(asks)
            _eval_safe(proto.encode_book(book, levels, proto.choose_variant(rng, "varied")))
            continue
        trade = market.trade(code, 1_700_000_000.0 + i)
        assert trade.seq > last_seq
        last_seq = trade.seq
        assert Decimal(trade.price) > 0 and Decimal(trade.volume) > 0
        places = len(trade.price.partition(".")[2])
        assert decimals in (None, places)
        decimals = places
        frame = _eval_safe(proto.encode_trade(trade, proto.choose_variant(rng, "varied")))
        data = frame["data"]
        if is_forex(code):
            assert data["trade_direction"] == 0 and "turnover" not in data
        else:
            assert Decimal(data["turnover"]) == Decimal(trade.price) * Decimal(trade.volume)


def test_market_is_repeatable_per_code() -> None:
    a, b = Market(9, 0.0), Market(9, 0.0)
    b.trade("OTHER.US", 0.0)  # other codes do not disturb this one
    assert [a.trade("BTCUSDT", 0.0).price for _ in range(20)] == [
        b.trade("BTCUSDT", 0.0).price for _ in range(20)
    ]
    assert a.trade("BTCUSDT", 5.0).seq == 21


def test_documented_variant_matches_the_documented_example() -> None:
    trade = Market(0, 1_605_509_068.0).trade("1288.HK", 1_605_509_068.0)
    frame = orjson.loads(proto.encode_trade(trade))
    assert list(frame) == ["cmd_id", "data"]
    assert list(frame["data"]) == [
        "code",
        "seq",
        "tick_time",
        "price",
        "volume",
        "turnover",
        "trade_direction",
    ]
    assert frame["data"]["seq"] == 1_605_509_068_000_001
    assert frame["data"]["tick_time"] == 1_605_509_068


def test_format_units() -> None:
    assert format_units(65112, 2) == "651.12"
    assert format_units(5, 5) == "0.00005"
    assert format_units(7, 0) == "7"
    assert format_units(-150, 2) == "-1.50"


def test_malformed_frames_are_all_different_and_bad() -> None:
    frames = [proto.malformed_frame(kind, "BTCUSDT") for kind in proto.MALFORMED_KINDS]
    assert len(set(frames)) == len(frames)
    binary = [f for f in frames if isinstance(f, bytes)]
    assert len(binary) == 1
    with pytest.raises(UnicodeDecodeError):
        binary[0].decode()
    for kind in ("truncated_json", "not_json", "empty"):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(proto.malformed_frame(kind, "X"))


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_encode_frame_lengths(size: int) -> None:
    frame = encode_frame(0x1, b"a" * size)
    assert frame[0] == 0x81
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert len(frame) == header + size
    if size >= 126:
        assert int.from_bytes(frame[2:header], "big") == size


def test_config_validation() -> None:
    assert SimConfig(tokens="abc").tokens == frozenset({"abc"})
    assert SimConfig(tokens=["a", "b"]).tokens == frozenset({"a", "b"})  # type: ignore[arg-type]
    for bad in (
        {"max_symbols": 0},
        {"over_cap": "drop"},
        {"wire_variants": "json"},
        {"default_depth": 0},
        {"fx_depth": "none"},
        {"wire": "mixed"},
        {"tick_interval": 0},
        {"heartbeat_timeout": -1.0},
        {"random_faults": -1.0},
        {"kick_after_violations": 0},
        {"send_queue": 0},
    ):
        with pytest.raises(ValueError):
            SimConfig(**bad)
