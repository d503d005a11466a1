"""Fuzz both venues' decoders with hostile frames; regressions for what the fuzzing found.

The strategies (``tests/fuzz_frames.py``) mutate valid frames of every kind, so
the decoders are exercised all the way down; the oracle (``tests/fuzz_oracle.py``)
demands ``ProtocolError`` with nothing added to the batch, or valid values.
``bench/fuzz_decoders.py`` runs the same builders over a million frames; here a
moderate number of examples keeps CI fast.
"""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickactors import ProtocolError
from tickactors.venues._dialect import AnswerKind, MarketBatch, NoticeKind

from .fuzz_frames import VENUES, every_corruption, frames, valid_samples
from .fuzz_oracle import Decoders, dialects

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.lists(frames("alltick"), min_size=1, max_size=6))
def test_alltick_hostile_frames_are_rejected_or_decode_to_valid_values(batch):
    decoders = Decoders()
    for _label, frame in batch:
        decoders.judge("alltick", frame)


@FUZZ
@given(st.lists(frames("tradovate"), min_size=1, max_size=6))
def test_tradovate_hostile_frames_are_rejected_or_decode_to_valid_values(batch):
    decoders = Decoders()
    for _label, frame in batch:
        decoders.judge("tradovate", frame)


def test_the_long_run_script_runs_and_finds_nothing_on_a_short_run():
    path = Path(__file__).resolve().parent.parent / "bench" / "fuzz_decoders.py"
    spec = importlib.util.spec_from_file_location("fuzz_decoders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.run(4000, 11, VENUES, progress=False)
    assert summary["frames"] == 4000
    assert summary["exceptions"] == summary["invalid"] == 0, summary["examples"]
    assert summary["rejected"] + summary["accepted"] == 4000
    assert {v["frames"] for v in summary["per_venue"].values()} == {2000}
    assert summary["rejected"] > summary["accepted"] > 0


# ---- what the fuzzing found ---------------------------------------------------------


def decode(venue, frame):
    batch = MarketBatch()
    found = dialects()[venue].decode(frame, 1.0, batch)
    return batch, found


def trade(**fields):
    return orjson.dumps({"cmd_id": 22998, "data": {"code": "A", "price": "1", **fields}})


@pytest.mark.parametrize(
    "frame",
    [
        # str.isdigit() is true for these, and int() refuses them: a ValueError escaped
        trade(seq="\u00b2"),
        trade(tick_time="\u00b9\u00b2"),
        trade(tick_time="\u0663"),  # Arabic-Indic 3: int() took it as 3 seconds
        trade(seq="\uff11\uff12"),
        # the repr of a 1010-deep list in the error message: a RecursionError escaped
        '{"cmd_id":' + "[" * 1010 + "]" * 1010 + "}",
        # an exact Decimal beyond any market, or one that overflows the user's arithmetic
        trade(price="1e400"),
        trade(price="1e99999999"),
        trade(price="1e-99999999"),
        trade(volume="1E+30"),
        trade(price=1e300),
        trade(turnover="1" + "0" * 40),
        trade(price="1." + "0" * 70),  # 72 characters of decimal: refused before parsing
        trade(price="9" * 1_000_000),
    ],
)
def test_alltick_regressions_raise_protocol_error(frame):
    with pytest.raises(ProtocolError) as info:
        decode("alltick", frame)
    assert len(str(info.value)) < 200


def test_alltick_numbers_inside_the_bounds_still_decode():
    batch, _ = decode("alltick", trade(price="1e-30", volume="999999999999999999999999999999"))
    (tick,) = batch.trades
    assert tick.price == Decimal("1e-30") and tick.volume == Decimal(10**30 - 1)


def a_frame(*items):
    return "a" + orjson.dumps(list(items)).decode()


def quote(entries):
    return a_frame({"e": "md", "d": {"quotes": [{"contractId": 123456, "entries": entries}]}})


def test_tradovate_error_text_nested_deeper_than_orjson_writes():
    # orjson reads 1024 levels but writes 254: dumps() raised JSONEncodeError (a TypeError)
    frame = 'a[{"i":7,"s":500,"d":' + "[" * 300 + "]" * 300 + "}]"
    _, (answer,) = decode("tradovate", frame)
    assert (answer.kind, answer.code, answer.message) == (AnswerKind.REJECTED, 500, "status 500")


@pytest.mark.parametrize(
    "frame",
    [
        quote({"Bid": {"price": 1e300}}),
        quote({"Bid": {"price": 5e-324}}),
        quote({"Bid": {"price": 1.5, "size": 1e30}}),
        quote({"HighPrice": {"price": 1e-31}}),
        'a[{"e":"md","d":{"doms":[{"contractId":1,"bids":[{"price":1e308,"size":1}]}]}}]',
        # t goes back to the venue as the replay's start after a reconnect
        a_frame({"e": "clock", "d": {"t": "x" * 65, "s": 100}}),
        a_frame({"e": "clock", "d": orjson.dumps({"t": 5}).decode()}),
        a_frame({"e": "clock", "d": {"t": ["2024-01-02T14:30:00Z"]}}),
        # s goes into the clock health event: nested 300 deep, no JSON line could hold it
        a_frame({"e": "clock", "d": {"s": orjson.Fragment(b"[" * 300 + b"]" * 300)}}),
        a_frame({"e": "clock", "d": {"s": "100"}}),
    ],
)
def test_tradovate_regressions_raise_protocol_error(frame):
    with pytest.raises(ProtocolError):
        decode("tradovate", frame)


def test_tradovate_clock_with_extra_keys_still_decodes():
    data = {"t": "2024-01-02T14:30:00.000Z", "s": 400, "connection": 5, "event": "x"}
    _, (notice,) = decode("tradovate", a_frame({"e": "clock", "d": data}))
    assert notice.kind is NoticeKind.CLOCK and dict(notice.data) == data


# ---- the sweep: every place of every kind of frame meets every hostile value ---------


def test_sweep_every_field_of_every_frame_kind_through_every_hostile_value():
    decoders = Decoders()
    verdicts = {"alltick": [0, 0], "tradovate": [0, 0]}
    for venue, prefix, value in valid_samples():
        for corrupted in every_corruption(value):
            frame = prefix + orjson.dumps(corrupted).decode()
            verdicts[venue][decoders.judge(venue, frame)] += 1
    for rejected, accepted in verdicts.values():
        assert rejected > accepted > 0


def test_sweep_every_truncation_and_invalid_utf8_of_every_frame_kind():
    decoders = Decoders()
    for venue, prefix, value in valid_samples(seed=1):
        wire = prefix + orjson.dumps(value).decode()
        for cut in range(len(wire)):
            assert not decoders.judge(venue, wire[:cut])
            assert not decoders.judge(venue, wire[:cut].encode() + b"\xff" + wire[cut:].encode())
        assert decoders.judge(venue, wire) and decoders.judge(venue, wire.encode())
