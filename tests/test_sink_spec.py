"""``--sink`` specifications, and the reversible encoding of symbols in NATS subjects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors.sinks import (
    JsonlSpec,
    NatsSpec,
    SinkSpecError,
    decode_symbol_token,
    encode_symbol_token,
    parse_sink,
)
from tickactors.sinks._nats_encode import NatsEncoder, Outgoing, kind_of

# -- symbol tokens ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "token"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("700.HK", "700%2EHK"),
        ("X_Y-Z", "X_Y-Z"),
        ("@ES.Z6", "%40ES%2EZ6"),
        ("#42", "%2342"),
        ("a%b", "a%25b"),
        ("a~b c*>", "a%7Eb%20c%2A%3E"),
        ("é", "%C3%A9"),
    ],
)
def test_symbols_become_one_subject_token(symbol: str, token: str):
    assert encode_symbol_token(symbol) == token
    assert decode_symbol_token(token) == symbol


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_every_symbol_round_trips_through_a_legal_token(symbol: str):
    token = encode_symbol_token(symbol)
    assert re.fullmatch(r"[A-Za-z0-9_%-]+", token)  # no '.', '*', '>', space: one token
    assert decode_symbol_token(token) == symbol


@pytest.mark.parametrize("token", ["", "a.b", "a b", "%2", "%zz", "%c3", "*", ">"])
def test_what_is_not_a_token_is_refused(token: str):
    with pytest.raises(ValueError):
        decode_symbol_token(token)


def test_an_empty_symbol_has_no_token():
    with pytest.raises(ValueError):
        encode_symbol_token("")


def test_entries_are_encoded_with_subject_payload_kind_and_a_dedup_id():
    from decimal import Decimal

    from tickactors import HealthEvent, Tick

    encoder = NatsEncoder(venue="alltick", clock_offset=100.0)
    tick = encoder.encode(Tick("700.HK", Decimal("1.50"), received_at=1.0))
    assert tick.subject == "ticks.alltick.tick.700%2EHK" and tick.kind == "tick"
    assert b'"price":"1.50"' in tick.payload and b'"received_at":101.0' in tick.payload
    event = encoder.encode(HealthEvent("stale", 2.0, 3, "quiet"))
    assert event.subject == "health.alltick.stale" and b'"time":102.0' in event.payload
    status = encoder.encode({"kind": "status", "event": "command", "time": 1.0})
    assert status.subject == "health.alltick.command" and status.kind == "status"
    assert tick.headers and event.headers and tick.headers != event.headers
    assert encoder.encode(tick) is tick  # a put-back message keeps its bytes and its id
    assert [kind_of(x) for x in (tick, event, status)] == ["tick", "status", "status"]
    plain = NatsEncoder(venue="v", clock_offset=0, subject_prefix="md.raw", dedup=False)
    out = plain.encode(Tick("A", Decimal(1)))
    assert isinstance(out, Outgoing) and out.subject == "md.raw.v.tick.A" and out.headers is None


# -- specifications --------------------------------------------------------------------


def test_jsonl_specs():
    assert parse_sink("jsonl:cap/t.jsonl") == JsonlSpec(Path("cap/t.jsonl"))
    spec = parse_sink("jsonl:/x/t.jsonl?max_bytes=64M&max_seconds=3600&fsync=batch")
    assert spec == JsonlSpec(Path("/x/t.jsonl"), 64 * 1024**2, 3600.0, "batch")
    assert parse_sink("jsonl:t?max_bytes=512").max_bytes == 512  # type: ignore[union-attr]
    assert parse_sink("jsonl:t?max_bytes=2g").max_bytes == 2 * 1024**3  # type: ignore[union-attr]


def test_nats_specs():
    spec = parse_sink("nats://127.0.0.1:4222")
    assert spec == NatsSpec("127.0.0.1", 4222)
    assert spec.display == "nats://127.0.0.1:4222"
    spec = parse_sink(
        "nats://h:1?stream=MD&subject_prefix=md.ticks&health_prefix=md.health&buffer=10"
        "&batch=5&drain=1.5&ack_timeout=3&connect_timeout=1&max_age=86400&dedup=0"
    )
    assert spec == NatsSpec(
        "h",
        1,
        stream="MD",
        subject_prefix="md.ticks",
        health_prefix="md.health",
        buffer=10,
        batch=5,
        drain=1.5,
        ack_timeout=3.0,
        connect_timeout=1.0,
        max_age=86400.0,
        dedup=False,
    )


def test_credentials_are_kept_but_never_shown():
    spec = parse_sink("nats://capture:pa%40ss-S3CRET@127.0.0.1:4222")
    assert isinstance(spec, NatsSpec)
    assert spec.user == "capture" and spec.password is not None
    assert spec.password.reveal() == "pa@ss-S3CRET"
    token = parse_sink("nats://tok-S3CRET@127.0.0.1:4222")
    assert isinstance(token, NatsSpec) and token.token is not None
    for shown in (spec.display, repr(spec), str(spec), token.display, repr(token)):
        assert "S3CRET" not in shown
    assert spec.display == "nats://***@127.0.0.1:4222"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kafka://h:1", "unknown sink"),
        ("ticks.jsonl", "unknown sink"),
        ("jsonl:", "needs a path"),
        ("jsonl:t?max_bytes=1T", "not a size"),
        ("jsonl:t?max_seconds=0", "> 0"),
        ("jsonl:t?max_seconds=soon", "seconds"),
        ("jsonl:t?fsync=always", "fsync"),
        ("jsonl:t?rotate=1", "unknown option 'rotate'"),
        ("nats://127.0.0.1", "host and a port"),
        ("nats://127.0.0.1:99999", "port"),
        ("nats://h:1/path", "nothing may follow"),
        ("nats://h:1?buffer=0", "whole number >= 1"),
        ("nats://h:1?stream=a.b", "stream"),
        ("nats://h:1?subject_prefix=a..b", "subject_prefix"),
        ("nats://h:1?dedup=yes", "dedup"),
        ("nats://u:S3CRET@h:1?nope=1", "unknown option 'nope'"),
    ],
)
def test_mistakes_are_named_and_show_no_secret(text: str, message: str):
    with pytest.raises(SinkSpecError, match=re.escape(message)) as info:
        parse_sink(text)
    assert "S3CRET" not in str(info.value)
    assert isinstance(info.value, ValueError)
