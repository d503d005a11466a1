"""The fast path for AllTick trades (``venues/_alltick_trades.py``) agrees with the general one.

``AllTickDialect.decode`` tries msgspec's typed decode first and falls back to the general
path (``decode_general``: ``orjson.loads`` and dicts) whenever it is not sure. These tests
hold the fast path to that contract on every frame the fuzzers make: it returns None, or
the very ``Tick`` the general path builds (exact ``Decimal`` digits and exponents,
``fields``), and it never accepts a frame the general path refuses.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tickactors
from tickactors import ProtocolError
from tickactors.sim._alltick_protocol import choose_variant, encode_trade
from tickactors.sim._market import Market
from tickactors.venues import AllTick
from tickactors.venues._alltick import _data, _trade
from tickactors.venues._alltick_trades import fast_trade
from tickactors.venues._dialect import MarketBatch

from .fake_venue import FakeNetwork
from .fuzz_frames import RandomSource, alltick_trade, every_corruption, frames, valid_samples

DIALECT = AllTick(url="wss://example.invalid/quote-b-ws-api", token="t").dialect


def _exact(tick: Any) -> tuple[Any, ...]:
    """Every field, decimals by their digits and exponent (``Decimal`` == ignores those)."""

    def shape(value: Any) -> Any:
        return value.as_tuple() if hasattr(value, "as_tuple") else (type(value), value)

    return (
        tick.symbol,
        shape(tick.price),
        shape(tick.volume),
        shape(tick.exchange_time),
        shape(tick.seq),
        tick.received_at,
        {key: shape(value) for key, value in tick.fields.items()},
    )


def check(frame: str | bytes) -> bool:
    """Whether the fast path took ``frame``; fails when it disagrees with the general path."""
    general = MarketBatch()
    try:
        DIALECT.decode_general(frame, 12.5, general)
    except ProtocolError as exc:
        refused: ProtocolError | None = exc
    else:
        refused = None
    fast = fast_trade(frame, 12.5)  # never raises
    if fast is None:
        return False
    if refused is not None and str(refused).startswith("not JSON: number is infinity"):
        # The one difference, documented in _alltick_trades: orjson refuses a number too
        # large for a double anywhere in the frame; msgspec skips it in a field the trade
        # does not use. Python's json reads it (as inf): the trade must be that frame's.
        message = json.loads(frame)
        assert message["cmd_id"] == 22998, frame
        assert _exact(fast) == _exact(_trade(_data(message), 12.5)), frame
        return True
    assert refused is None, (frame, fast, refused)
    assert len(general.trades) == 1 and not general.books, frame
    assert _exact(fast) == _exact(general.trades[0]), frame
    # And decode() itself hands over the fast path's tick.
    out = MarketBatch()
    assert DIALECT.decode(frame, 12.5, out) == ()
    assert _exact(out.trades[0]) == _exact(fast)
    return True


def test_every_valid_trade_with_text_decimals_takes_the_fast_path():
    src = RandomSource(random.Random(3))
    taken = texts = 0
    for _ in range(3000):
        frame = alltick_trade(src)
        texts += type(frame["data"]["price"]) is str
        taken += check(orjson.dumps(frame).decode())
    assert taken == texts > 1000


def test_the_simulators_own_frames_all_take_the_fast_path():
    market = Market(7, 1_700_000_000.0)
    rng = random.Random(7)
    for variant in ("varied", "strict"):
        for n in range(600):
            trade = market.trade(("700.HK", "BTCUSDT", "EURUSD")[n % 3], 1_700_000_000.0 + n)
            wire = encode_trade(trade, choose_variant(rng, variant)).decode()
            assert check(wire), wire


def test_numbers_sent_as_json_numbers_go_the_general_way():
    frame = '{"cmd_id":22998,"data":{"code":"A","price":1.10,"volume":3,"turnover":0.5}}'
    assert not check(frame)
    out = MarketBatch()
    DIALECT.decode(frame, 0.0, out)
    assert str(out.trades[0].price) == "1.1" and str(out.trades[0].volume) == "3"


def test_a_double_overflow_in_a_field_the_trade_does_not_use_is_skipped():
    frame = '{"cmd_id":22998,"data":{"code":"A","price":"2","zz":[1e400]},"yy":-1e999}'
    assert check(frame)
    used = '{"cmd_id":22998,"data":{"code":"A","price":"2","trade_direction":1e400}}'
    assert not check(used)


def test_frames_that_are_not_trades_step_aside():
    for frame in (
        '{"cmd_id":22999,"data":{"code":"A","bids":[],"asks":[]}}',
        '{"cmd_id":22001,"ret":200,"seq_id":4}',
        '{"cmd_id":22998.0,"data":{"code":"A","price":"1"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"1","trade_direction":1.0}}',
        b'{"cmd_id":22998,"data":{"code":"A","price":"1"}}',
        '{"cmd_id":22998,"x":' + "[" * 5000 + "]" * 5000 + ',"data":{"code":"A","price":"1"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"NaN"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"1","seq":"\\u0661"}}',
        '{"cmd_id":22998,"data":{"code":"A","price":"' + "1" * 65 + '"}}',
        '{"cmd_id":22998,"data":{"code":"\\ud800","price":"1"}}',
    ):
        assert not check(frame), frame


def test_sweep_every_corruption_of_every_trade_sample():
    taken = total = 0
    for venue, prefix, value in valid_samples():
        if venue != "alltick" or value.get("cmd_id") != 22998:
            continue
        for corrupted in every_corruption(value):
            frame = prefix + orjson.dumps(corrupted).decode()
            taken += check(frame)
            total += 1
        wire = prefix + orjson.dumps(value).decode()
        for cut in range(len(wire)):
            assert not check(wire[:cut])
    assert total > taken > 0


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(frames("alltick"))
def test_hostile_frames_agree_with_the_general_path(labelled):
    _label, frame = labelled
    check(frame)


@given(
    st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=70)),
    st.sampled_from(("price", "volume", "turnover", "seq", "tick_time", "trade_direction")),
)
@settings(max_examples=400, deadline=None)
def test_any_value_in_any_field_agrees_with_the_general_path(value, field):
    data: dict[str, Any] = {"code": "700.HK", "price": "309.85", "seq": 1, "tick_time": 2}
    data[field] = value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:  # beyond orjson.dumps
        data[field] = 0
        text = orjson.dumps(data).decode().replace(f'"{field}":0', f'"{field}":{value}')
        check('{"cmd_id":22998,"data":' + text + "}")
    else:
        check(orjson.dumps({"cmd_id": 22998, "data": data}).decode())


async def test_the_reader_keeps_frame_order_across_both_paths(autojump_clock):
    """One read of mixed frames: fast trades, a JSON-number trade, a bad frame, an answer."""
    net = FakeNetwork()
    venue = AllTick(url="ws://127.0.0.1:9/quote-b-ws-api", token="tok-a1b2c3")
    async with tickactors.open_feed(venue, transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("A", "B")
        await conn.wait_sent(1)
        request = conn.requests(22004)[0]
        conn.trade("A", "1.5", seq=1)  # wanted already: the feed wants A and B
        conn.push('{"cmd_id":22998,"data":{"code":"B","price":2.25,"seq":2}}')  # general path
        conn.push('{"cmd_id":22998,"data":{"code":"A","price":"-1","seq":3}}')  # refused
        conn.answer(request)
        conn.trade("B", "3", seq=4)
        conn.push("{not json")
        conn.trade("A", "4", seq=5)
        seqs: list[int | None] = []
        with trio.fail_after(5):
            while len(seqs) < 4:
                seqs += [tick.seq for tick in await feed.get_batch()]
        assert seqs == [1, 2, 4, 5]
        assert feed.statistics()["connection"]["decode_errors"] == 2
        await feed.wait_converged()


def test_deep_nesting_steps_aside_whatever_the_recursion_limit():
    """msgspec refuses deep nesting only while Python's recursion limit is low; a process
    that raised it (mypy's API sets 2**14) must not have the fast path deliver a frame the
    general path refuses (orjson reads 1024 levels)."""
    frame = '{"cmd_id":22998,"x":' + "[" * 1500 + "]" * 1500 + ',"data":{"code":"A","price":"1"}}'
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        assert not check(frame)
    finally:
        sys.setrecursionlimit(limit)
