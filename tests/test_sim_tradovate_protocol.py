"""Pure parts of the simulated Tradovate venue: request reading, frames, contracts, tickets."""

from __future__ import annotations

import random

import orjson
import pytest

from tickactors.sim import _tradovate_protocol as proto
from tickactors.sim._tradovate_contracts import Contracts
from tickactors.sim._tradovate_penalty import fingerprint
from tickactors.sim._tradovate_replay import ReplayClock, initialize


def test_request_lines_undefined_and_merged_params() -> None:
    req = proto.parse_request('md/subscribeQuote\n7\n\n{"symbol":"ESZ6"}')
    assert (req.key, req.id, req.query, req.params) == (
        "md/subscribequote",
        7,
        "",
        {"symbol": "ESZ6"},
    )
    req = proto.parse_request("contract/find\n8\nname=ESZ6\n")
    assert (req.params, req.body, req.error) == ({"name": "ESZ6"}, "", None)
    req = proto.parse_request("account/list\r\n9\r\nundefined\r\nundefined")
    assert (req.key, req.id, req.query, req.body, req.error) == ("account/list", 9, "", "", None)
    assert proto.parse_request("user/syncrequest\n3").error is None  # short is fine


@pytest.mark.parametrize(
    "message", ["", "authorize", "authorize\nx\n\nT", "authorize\n-1\n\nT", b"authorize\n0\n\nT"]
)
def test_unreadable_requests(message: str | bytes) -> None:
    assert proto.parse_request(message).error is not None


@pytest.mark.parametrize("body", ["TOKEN", '"TOKEN"', ' "TOKEN" ', '{"token":"TOKEN"}'])
def test_authorize_token_forms(body: str) -> None:
    assert proto.token_from_body(body) == "TOKEN"


def test_heartbeat_and_frames() -> None:
    assert proto.is_client_heartbeat("[]") and proto.is_client_heartbeat(" []\n")
    assert not proto.is_client_heartbeat(b"[]")
    assert proto.array_frame([proto.ok(1)]) == b'a[{"i":1,"s":200}]'
    assert proto.close_frame(3000, "Go away!") == b'c[3000,"Go away!"]'
    assert proto.error(None, 400, "x") == {"s": 400, "d": "x"}
    assert proto.penalty(4, "t", 60.0, False) == {
        "i": 4,
        "s": 200,
        "d": {"p-ticket": "t", "p-time": 60, "p-captcha": False},
    }


def test_error_text_variants() -> None:
    rng = random.Random(0)
    assert proto.error_text("Access is denied", "plain", rng) == "Access is denied"
    assert proto.error_text("Access is denied", "double", rng) == '"Access is denied"'
    mixed = {proto.error_text("x", "mixed", rng) for _ in range(50)}
    assert mixed == {"x", '"x"'}


def test_iso_round_trip_and_clock_event() -> None:
    assert proto.iso(1618289946.588) == "2021-04-13T04:59:06.588Z"
    assert proto.parse_iso("2021-04-13T04:59:06.588Z") == pytest.approx(1618289946.588)
    assert proto.parse_iso("2017-04-13T11:33Z") == proto.parse_iso("2017-04-13T11:33:00+00:00")
    assert proto.parse_iso("yesterday") is None and proto.parse_iso(5) is None
    event = proto.clock_event(1618289946.0, 400)
    assert orjson.loads(event["d"]) == {"t": "2021-04-13T04:59:06.000Z", "s": 400}


def test_replay_clock_runs_at_percent_speed() -> None:
    clock = initialize({"startTimestamp": "2024-01-01T00:00:00Z", "speed": 50}, now=10.0)
    assert isinstance(clock, ReplayClock)
    assert clock.wall_at(12.0) - clock.wall_at(10.0) == 1.0
    clock.change_speed(400, 12.0)
    assert clock.wall_at(13.0) - clock.wall_at(12.0) == 4.0
    assert isinstance(initialize({"startTimestamp": "x"}, 0.0), str)
    assert isinstance(initialize({"startTimestamp": "2024-01-01", "speed": 500}, 0.0), str)


def test_contract_universe_is_stable_per_seed() -> None:
    a, b, c = (Contracts(random.Random(f"{s}:tradovate:contracts")) for s in (1, 1, 2))
    assert [(x.name, x.id) for x in a] == [(x.name, x.id) for x in b]
    assert [x.id for x in a] != [x.id for x in c]
    assert len({x.id for x in a}) == len(a) >= 25
    es = a.find("esz6")
    assert es is not None and a.resolve(es.id) == a.resolve(str(es.id)) == a.resolve("ESZ6") == es
    assert a.find("ESZ9") is None and a.resolve(True) is None and a.item(-1) is None
    assert [x.name for x in a.suggest("cl", "2")] == ["CLF7", "CLG7"]
    assert es.to_json()["name"] == "ESZ6"


def test_penalty_fingerprint_ignores_the_ticket_and_key_order() -> None:
    one = fingerprint("md/subscribeQuote", "", {"symbol": "ESZ6", "x": 1})
    two = fingerprint("MD/SUBSCRIBEQUOTE", "", {"x": 1, "p-ticket": "t", "symbol": "ESZ6"})
    assert one == two != fingerprint("md/subscribeQuote", "", {"symbol": "NQZ6", "x": 1})


def test_malformed_kinds_are_all_bad() -> None:
    for kind in proto.MALFORMED_KINDS:
        frame = proto.malformed_frame(kind, 42)
        if isinstance(frame, str) and frame.startswith("a["):
            try:
                items = orjson.loads(frame[1:])
            except orjson.JSONDecodeError:
                continue
            entries = items[0]["d"]["quotes"][0]["entries"]
            assert entries is None or isinstance(entries["Bid"]["price"], str)
