"""The simulator's Tradovate encoder and the client's dialect were written apart; they must agree.

Hypothesis builds quotes, DOMs, answers and events as the simulator holds them,
the simulator's own functions (``sim._tradovate_protocol``,
``sim._tradovate_market``) put them on the wire, and the dialect must decode
exactly the same values back.
"""

from __future__ import annotations

import random
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors import ProtocolError
from tickactors.sim import _tradovate_protocol as proto
from tickactors.sim._config import SimConfig
from tickactors.sim._market import Market
from tickactors.sim._tradovate_contracts import Contracts
from tickactors.sim._tradovate_market import TradovateMarket
from tickactors.venues import Tradovate
from tickactors.venues._dialect import AnswerKind, MarketBatch, NoticeKind

URL = "ws://127.0.0.1:1/v1/websocket"

ids = st.integers(min_value=1, max_value=2**53)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e9"), places=2)
sizes = st.integers(min_value=0, max_value=10**9)
walls = st.floats(min_value=0, max_value=4e9, allow_nan=False)
ENTRY_NAMES = ("Bid", "Offer", "Trade")


def dialect():
    return Tradovate(url=URL, token="t").dialect


def decode_one(frame, d=None):
    batch = MarketBatch()
    found = (d or dialect()).decode(frame, 2.5, batch)
    return batch, found


@st.composite
def quote_bodies(draw):
    """``{"id", "contractId", "entries"}`` as TradovateMarket.quote shapes it, gaps included."""
    entries = {}
    for name in ENTRY_NAMES:
        if draw(st.booleans()):
            entry = {}
            if draw(st.booleans()):
                entry["price"] = float(draw(prices))
            if draw(st.booleans()):
                entry["size"] = draw(sizes)
            entries[name] = entry
    if draw(st.booleans()):
        entries["TotalTradeVolume"] = {"size": draw(sizes)}
    cid = draw(ids)
    return {"id": cid, "contractId": cid, "entries": entries}


def expected(entry, key):
    value = entry.get(key) if entry is not None else None
    return None if value is None else Decimal(repr(value)) if key == "price" else Decimal(value)


@settings(max_examples=300, deadline=None)
@given(body=quote_bodies(), wall=walls, known=st.booleans())
def test_quote_round_trip(body, wall, known):
    d = dialect()
    cid = body["contractId"]
    if known:
        d.remember_contract(cid, "ESZ6")
    stamp = proto.iso(wall)
    batch, found = decode_one(proto.array_frame([proto.quote_event(body, stamp)]), d)
    assert found == ()
    (quote,) = batch.quotes
    entries = body["entries"]
    assert quote.symbol == ("ESZ6" if known else f"#{cid}")
    assert quote.contract_id == cid
    assert (quote.bid, quote.bid_size) == (
        expected(entries.get("Bid"), "price"),
        expected(entries.get("Bid"), "size"),
    )
    assert (quote.offer, quote.offer_size) == (
        expected(entries.get("Offer"), "price"),
        expected(entries.get("Offer"), "size"),
    )
    assert (quote.last, quote.last_size) == (
        expected(entries.get("Trade"), "price"),
        expected(entries.get("Trade"), "size"),
    )
    assert quote.total_volume == expected(entries.get("TotalTradeVolume"), "size")
    assert quote.exchange_time == proto.parse_iso(stamp) == round(wall * 1000) / 1000
    assert quote.received_at == 2.5 and quote.fields == {}


@settings(max_examples=200, deadline=None)
@given(
    cid=ids,
    bids=st.lists(st.tuples(prices, sizes), max_size=10),
    offers=st.lists(st.tuples(prices, sizes), max_size=10),
    wall=walls,
)
def test_dom_round_trip(cid, bids, offers, wall):
    dom = {
        "contractId": cid,
        "bids": [{"price": float(p), "size": s} for p, s in bids],
        "offers": [{"price": float(p), "size": s} for p, s in offers],
    }
    batch, found = decode_one(proto.array_frame([proto.dom_event(dom, proto.iso(wall))]))
    assert found == ()
    (book,) = batch.books
    assert book.symbol == f"#{cid}"
    assert [(level.price, level.volume) for level in book.bids] == [
        (p, Decimal(s)) for p, s in bids
    ]
    assert [(level.price, level.volume) for level in book.asks] == [
        (p, Decimal(s)) for p, s in offers
    ]
    assert book.exchange_time == round(wall * 1000) / 1000


@pytest.mark.parametrize("variants", ["mixed", "documented"])
def test_the_simulated_market_round_trips(variants):
    """TradovateMarket's own quotes and DOMs, the sim's contract universe, ids remembered."""
    seed = 7
    hub = SimpleNamespace(
        config=SimConfig(wire_variants=variants),
        market=Market(seed, 1.7e9),
        rng=lambda purpose: random.Random(f"{seed}:{purpose}"),
        wall_time=lambda: 1.7e9 + 12.5,
    )
    market = TradovateMarket(hub)  # type: ignore[arg-type]
    contracts = Contracts(random.Random(seed))
    d = dialect()
    for contract in contracts:
        d.remember_contract(contract.id, contract.name)
    stamp = proto.iso(hub.wall_time())
    for _ in range(20):
        for contract in contracts:
            body = market.quote(contract)
            batch, _ = decode_one(proto.array_frame([proto.quote_event(body, stamp)]), d)
            (quote,) = batch.quotes
            entries = body["entries"]
            assert quote.symbol == contract.name and quote.contract_id == contract.id
            assert quote.bid == expected(entries.get("Bid"), "price")
            assert quote.offer_size == expected(entries.get("Offer"), "size")
            assert quote.last == expected(entries.get("Trade"), "price")
            assert quote.total_volume == expected(entries.get("TotalTradeVolume"), "size")
            dom = market.dom(contract)
            batch, _ = decode_one(proto.array_frame([proto.dom_event(dom, stamp)]), d)
            (book,) = batch.books
            assert book.symbol == contract.name
            assert [lv.price for lv in book.bids] == [
                Decimal(repr(x["price"])) for x in dom["bids"]
            ]
            assert [lv.volume for lv in book.asks] == [Decimal(x["size"]) for x in dom["offers"]]


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.integers(0, 2**31),
    status=st.sampled_from([400, 401, 404, 429]),
    text=st.text(min_size=1, max_size=80),
    mode=st.sampled_from(["plain", "double", "mixed"]),
    seed=st.integers(0, 100),
)
def test_error_answers_round_trip_plain_or_double_encoded(request_id, status, text, mode, seed):
    wire = proto.error_text(text, mode, random.Random(seed))
    _, (answer,) = decode_one(proto.array_frame([proto.error(request_id, status, wire)]))
    assert answer.request_id == request_id and answer.code == status
    kinds = {400: AnswerKind.REJECTED, 401: AnswerKind.AUTH, 404: AnswerKind.REJECTED}
    assert answer.kind is kinds.get(status, AnswerKind.RATE_LIMITED)
    if wire != text or not (text.startswith('"') and text.endswith('"') and len(text) > 1):
        assert answer.message == text[:200]


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.integers(0, 2**31),
    ticket=st.text(min_size=1, max_size=20),
    p_time=st.floats(0, 3600, allow_nan=False) | st.integers(0, 3600),  # MAX_PENALTY_WAIT
    captcha=st.booleans(),
    data=st.none() | st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63), max_size=3),
)
def test_ok_and_penalty_answers_round_trip(request_id, ticket, p_time, captcha, data):
    _, (answer,) = decode_one(proto.array_frame([proto.ok(request_id, data)]))
    assert (answer.request_id, answer.kind, answer.data) == (request_id, AnswerKind.OK, data)
    _, (answer,) = decode_one(
        proto.array_frame([proto.penalty(request_id, ticket, p_time, captcha)])
    )
    assert answer.kind is (AnswerKind.CAPTCHA if captcha else AnswerKind.PENALTY)
    assert (answer.request_id, answer.ticket, answer.retry_after) == (
        request_id,
        ticket,
        float(p_time),
    )


@settings(max_examples=50, deadline=None)
@given(p_time=st.floats(3600, 1e18, exclude_min=True) | st.integers(3601, 2**62))
def test_a_penalty_wait_over_an_hour_is_refused(p_time):
    with pytest.raises(ProtocolError, match="p-time"):
        decode_one(proto.array_frame([proto.penalty(1, "t", p_time, False)]))


@settings(max_examples=100, deadline=None)
@given(wall=walls, speed=st.integers(0, 400) | st.floats(0, 400, allow_nan=False))
def test_clock_events_round_trip(wall, speed):
    _, (notice,) = decode_one(proto.array_frame([proto.clock_event(wall, speed)]))
    assert notice.kind is NoticeKind.CLOCK
    assert notice.data == {"t": proto.iso(wall), "s": proto.number(speed)}


@settings(max_examples=100, deadline=None)
@given(
    code=st.integers(1000, 4999),
    reason=st.text(max_size=40),
    reason_code=st.sampled_from(["Maintenance", "ConnectionQuotaReached", "IPQuotaReached"]),
)
def test_close_frames_and_shutdown_events_round_trip(code, reason, reason_code):
    _, (notice,) = decode_one(proto.close_frame(code, reason))
    assert (notice.kind, notice.code, notice.text) == (NoticeKind.CLOSING, code, reason)
    _, (notice,) = decode_one(proto.array_frame([proto.shutdown_event(reason_code, reason)]))
    assert (notice.kind, notice.text) == (NoticeKind.SHUTDOWN, reason_code)
    assert notice.data == {"reasonCode": reason_code, "reason": reason}


def test_open_and_heartbeat_and_chart_frames():
    d = dialect()
    assert decode_one(proto.OPEN, d)[1][0].kind is NoticeKind.OPENED
    assert decode_one(proto.HEARTBEAT, d)[1] == ()
    assert decode_one(proto.array_frame([proto.chart_event(1, [], 20240102)]), d)[1] == ()
    assert d.ignored == 0 and d.statistics()["chart_ghosts"] == 2  # bars and eoh: not ours


@pytest.mark.parametrize("kind", proto.MALFORMED_KINDS)
def test_every_malformed_frame_of_the_simulator_raises(kind):
    with pytest.raises(ProtocolError):
        decode_one(proto.malformed_frame(kind, 123456))


def test_requests_read_back_by_the_simulator():
    d = dialect()
    from tickactors import QUOTES, Secret
    from tickactors._core.reconciler import Action, SendRequest

    frame = d.encode_request(SendRequest(1, QUOTES, Action.SUBSCRIBE, ("ESZ6",)), 12)
    request = proto.parse_request(frame)
    assert (request.key, request.id, request.params) == (
        "md/subscribequote",
        12,
        {"symbol": "ESZ6"},
    )
    request = proto.parse_request(d.encode_authorize(Secret("raw-token"), 0))
    assert (request.key, request.id, proto.token_from_body(request.body)) == (
        "authorize",
        0,
        "raw-token",
    )
    request = proto.parse_request(d.encode_call("contract/find", 3, "name=ESZ6"))
    assert (request.key, request.id, request.params) == ("contract/find", 3, {"name": "ESZ6"})
    assert proto.is_client_heartbeat(d.encode_heartbeat(0))
