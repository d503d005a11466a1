"""Tradovate trades from Tick charts, in the dialect: getChart and cancelChart, tick packets,
each trade once per symbol (dedupe by tick id), history back to the last trade after a
reconnect, ghosts of cancelled charts and of dead connections, strictness."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors import ProtocolError, Tick
from tickactors._core.reconciler import Action, SendRequest
from tickactors._values import TRADES
from tickactors.venues import Tradovate
from tickactors.venues._dialect import AnswerKind, MarketBatch, NoticeKind
from tickactors.venues._tradovate import TradovateDialect
from tickactors.venues._tradovate_charts import CHART_DESCRIPTION, FIRST_HISTORY, iso_ms

URL = "ws://127.0.0.1:1/v1/websocket"
BT = 1_800_000_000_250  # a packet's base time, epoch ms


def dialect() -> TradovateDialect:
    return Tradovate(url=URL, token="t").dialect


def a_frame(*items: Any) -> str:
    return "a" + orjson.dumps(list(items)).decode()


def subscribe(d: TradovateDialect, symbol: str, request_id: int, connection: int = 1) -> Any:
    frame = d.encode_request(
        SendRequest(1, TRADES, Action.SUBSCRIBE, (symbol,)), request_id, connection
    )
    endpoint, rid, query, body = frame.split("\n")
    assert (endpoint, rid, query) == ("md/getChart", str(request_id), "")
    return orjson.loads(body)


def unsubscribe(d: TradovateDialect, symbol: str, request_id: int, connection: int = 1) -> Any:
    frame = d.encode_request(
        SendRequest(1, TRADES, Action.UNSUBSCRIBE, (symbol,)), request_id, connection
    )
    endpoint, rid, query, body = frame.split("\n")
    assert (endpoint, rid, query) == ("md/cancelChart", str(request_id), "")
    return orjson.loads(body)


def decode(d: TradovateDialect, frame: str, connection: int = 1) -> tuple[list[Tick], Any]:
    batch = MarketBatch(connection)
    found = d.decode(frame, 5.0, batch)
    assert batch.quotes == [] and batch.books == []
    return batch.trades, found


def answer(d: TradovateDialect, request_id: int, data: Any, connection: int = 1) -> Any:
    trades, found = decode(d, a_frame({"i": request_id, "s": 200, "d": data}), connection)
    assert trades == []
    (result,) = found
    return result


def opened(
    d: TradovateDialect,
    symbol: str = "ESZ6",
    chart: int = 101,
    realtime: int | None = None,
    *,
    request_id: int = 7,
    connection: int = 1,
) -> Any:
    """Subscribe ``symbol`` and answer with chart ``chart``; the getChart body."""
    body = subscribe(d, symbol, request_id, connection)
    ids = {"historicalId": chart, "realtimeId": chart if realtime is None else realtime}
    assert answer(d, request_id, ids, connection).kind is AnswerKind.OK
    return body


def tick(tick_id: int, t: int = 0, p: int = 0, s: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"t": t, "p": p, "s": s, "id": tick_id, **extra}


def packet(chart: int, *ticks: dict[str, Any], bp: int = 11917, ts: Any = 0.25) -> dict[str, Any]:
    base = {"id": chart, "s": "rt", "td": 20270115, "bp": bp, "bt": BT, "ts": ts}
    return {**base, "tks": list(ticks)}


def charts(*packets: dict[str, Any]) -> str:
    return a_frame({"e": "chart", "d": {"charts": list(packets)}})


def ids(trades: list[Tick]) -> list[int | None]:
    return [t.seq for t in trades]


def stats(d: TradovateDialect) -> dict[str, int]:
    return d.statistics()


# ---- requests ------------------------------------------------------------------------


def test_first_get_chart_is_a_tick_chart_with_a_small_history():
    d = dialect()
    frame = d.encode_request(SendRequest(1, TRADES, Action.SUBSCRIBE, ("ESZ6",)), 7, 1)
    assert frame == (
        'md/getChart\n7\n\n{"symbol":"ESZ6","chartDescription":{"underlyingType":"Tick",'
        '"elementSize":1,"elementSizeUnit":"UnderlyingUnits","withHistogram":false},'
        '"timeRange":{"asMuchAsElements":1}}'
    )
    assert FIRST_HISTORY == 1
    body = subscribe(d, "3570918", 8)  # a contract id goes out as a number
    assert body == {
        "symbol": 3570918,
        "chartDescription": dict(CHART_DESCRIPTION),
        "timeRange": {"asMuchAsElements": 1},
    }


def test_cancel_names_the_historical_id_of_the_chart_on_that_connection():
    d = dialect()
    opened(d, "ESZ6", 101, 102, request_id=7, connection=1)
    opened(d, "ESZ6", 201, 202, request_id=8, connection=2)  # a rotation's replacement
    assert stats(d)["trade_charts"] == 2
    assert unsubscribe(d, "ESZ6", 9, connection=2) == {"subscriptionId": 201}
    assert unsubscribe(d, "ESZ6", 10, connection=1) == {"subscriptionId": 101}
    # nothing known on the connection (its getChart never answered): 0, the venue refuses it
    assert unsubscribe(d, "ESZ6", 11, connection=1) == {"subscriptionId": 0}
    assert unsubscribe(d, "NQZ6", 12, connection=3) == {"subscriptionId": 0}
    assert stats(d)["trade_charts"] == 0 and stats(d)["trade_charts_cancelled"] == 2


# ---- packets -------------------------------------------------------------------------


def test_documented_tick_packet_decodes_exactly():
    d = dialect()
    opened(d, "ESZ6", 16335)
    frame = charts(
        {
            "id": 16335,
            "s": "db",
            "td": 20190718,
            "bp": 11917,
            "bt": 1563421179735,
            "ts": 0.25,
            "tks": [
                {"t": 0, "p": 0, "s": 3, "b": -1, "a": 0, "bs": 122, "as": 28, "id": 11768401},
                {"t": 15, "p": 1, "s": 2.5, "id": 11768402},  # b, a, bs, as missing
            ],
        },
        {"id": 16335, "eoh": True},
    )
    trades, found = decode(d, frame)
    assert found == ()
    assert trades == [
        Tick("ESZ6", Decimal("2979.25"), Decimal(3), 1563421179.735, 11768401, 5.0),
        Tick("ESZ6", Decimal("2979.50"), Decimal("2.5"), 1563421179.75, 11768402, 5.0),
    ]
    assert trades[0].fields == {
        "bid": Decimal("2979.00"),
        "ask": Decimal("2979.25"),
        "bid_size": Decimal(122),
        "ask_size": Decimal(28),
    }
    assert trades[1].fields == {}
    assert str(trades[0].price) == "2979.25" and trades[0].kind is TRADES


def test_packets_may_name_either_id_and_int_or_float_tick_sizes():
    d = dialect()
    opened(d, "ESZ6", 101, 102)
    trades, _ = decode(d, charts(packet(101, tick(1)), packet(102, tick(2, p=3), ts=1)))
    assert ids(trades) == [1, 2] and trades[1].price == Decimal(11920)
    trades, _ = decode(d, charts(packet(102, tick(3, p=1), bp=3, ts=0.1)))
    assert trades[0].price == Decimal("0.4") and str(trades[0].price) == "0.4"


def test_prices_stay_exact_in_a_narrow_decimal_context():
    d = dialect()
    opened(d, "ESZ6", 101)
    with decimal.localcontext() as context:
        context.prec = 4
        trades, _ = decode(d, charts(packet(101, tick(1, b=-1), bp=123456789, ts=0.03125)))
    assert trades[0].price == Decimal("3858024.65625")
    assert trades[0].fields["bid"] == Decimal("3858024.625")


def test_each_tick_id_once_per_symbol_and_duplicates_cost_no_tick():
    d = dialect()
    opened(d, "ESZ6", 101)
    opened(d, "NQZ6", 102, request_id=8)
    first, _ = decode(d, charts(packet(101, tick(5), tick(6)), packet(102, tick(5))))
    again, _ = decode(d, charts(packet(101, tick(4), tick(6), tick(7))))
    assert [(t.symbol, t.seq) for t in first] == [("ESZ6", 5), ("ESZ6", 6), ("NQZ6", 5)]
    assert ids(again) == [7]
    assert stats(d)["trade_duplicates"] == 2 and stats(d)["trades"] == 4


def test_ghosts_of_unknown_cancelled_and_dead_connection_charts_are_dropped_and_counted():
    d = dialect()
    opened(d, "ESZ6", 101, connection=1)
    assert decode(d, charts(packet(101, tick(1))), connection=2)[0] == []  # not its chart
    assert decode(d, charts(packet(999, tick(2))))[0] == []  # nobody's
    unsubscribe(d, "ESZ6", 8, connection=1)
    assert decode(d, charts(packet(101, tick(3))))[0] == []  # cancelled: in flight
    opened(d, "ESZ6", 102, request_id=9, connection=1)
    assert ids(decode(d, charts(packet(102, tick(4))))[0]) == [4]
    d.connection_closed(1)
    assert decode(d, charts(packet(102, tick(5)), {"id": 102, "eoh": True}))[0] == []
    assert stats(d)["chart_ghosts"] == 5 and stats(d)["trade_charts"] == 0


def test_a_chart_not_answered_yet_is_a_ghost_and_an_unknown_answer_teaches_nothing():
    d = dialect()
    subscribe(d, "ESZ6", 7)
    assert decode(d, charts(packet(101, tick(1))))[0] == []
    assert answer(d, 99, {"historicalId": 101, "realtimeId": 101}).kind is AnswerKind.OK
    assert decode(d, charts(packet(101, tick(1))))[0] == []
    assert stats(d)["chart_ghosts"] == 2


# ---- answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [None, {}, {"historicalId": "5"}, {"historicalId": -1, "realtimeId": True}, [1]]
)
def test_an_ok_answer_without_a_chart_id_rejects_the_symbol(data):
    d = dialect()
    subscribe(d, "ESZ6", 7)
    result = answer(d, 7, data)
    assert (result.kind, result.request_id, result.code) == (AnswerKind.REJECTED, 7, 200)
    assert "chart id" in result.message


def test_one_id_is_enough_and_error_answers_pass_unchanged():
    d = dialect()
    subscribe(d, "ESZ6", 7)
    assert answer(d, 7, {"realtimeId": 55}).kind is AnswerKind.OK
    assert ids(decode(d, charts(packet(55, tick(1))))[0]) == [1]
    assert unsubscribe(d, "ESZ6", 8) == {"subscriptionId": 55}
    subscribe(d, "NOSUCH9", 9)
    _, (refused,) = decode(d, a_frame({"i": 9, "s": 404, "d": "Unknown symbol: NOSUCH9"}))
    assert refused.kind is AnswerKind.REJECTED and refused.message == "Unknown symbol: NOSUCH9"
    assert answer(d, 9, {"historicalId": 77}).kind is AnswerKind.OK  # no longer pending
    assert decode(d, charts(packet(77, tick(1))))[0] == []


def test_a_penalty_resend_is_remembered_under_its_new_id():
    d = dialect()
    subscribe(d, "ESZ6", 7)
    ticket = answer(d, 7, {"p-ticket": "T", "p-time": 1, "p-captcha": False})
    assert ticket.kind is AnswerKind.PENALTY
    body = subscribe(d, "ESZ6", 8)
    assert body["timeRange"] == {"asMuchAsElements": 1}
    assert answer(d, 8, {"historicalId": 101, "realtimeId": 101}).kind is AnswerKind.OK
    assert ids(decode(d, charts(packet(101, tick(1))))[0]) == [1]


# ---- resume, gaps ----------------------------------------------------------------------


def test_a_reconnect_resumes_from_the_last_tick_and_delivers_each_id_once():
    d = dialect()
    opened(d, "ESZ6", 101, connection=1)
    trades, _ = decode(d, charts(packet(101, tick(10, t=0), tick(11, t=250))), connection=1)
    assert ids(trades) == [10, 11]
    d.connection_closed(1)
    body = opened(d, "ESZ6", 102, request_id=8, connection=2)
    assert body["timeRange"] == {"asFarAsTimestamp": iso_ms(BT + 250)}
    assert iso_ms(BT + 250) == "2027-01-15T08:00:00.500Z"
    history = packet(102, tick(11, t=250), tick(12, t=300))
    trades, found = decode(d, charts(history, {"id": 102, "eoh": True}), connection=2)
    assert ids(trades) == [12] and found == ()
    assert stats(d)["trade_gaps"] == 0 and stats(d)["trade_duplicates"] == 1


def test_a_resumed_chart_starting_past_the_mark_announces_the_gap_once():
    d = dialect()
    opened(d, "ESZ6", 101, connection=1)
    decode(d, charts(packet(101, tick(10))), connection=1)
    d.connection_closed(1)
    opened(d, "ESZ6", 102, request_id=8, connection=2)
    trades, (notice,) = decode(d, charts(packet(102, tick(14), tick(15))), connection=2)
    assert ids(trades) == [14, 15]
    assert (notice.kind, notice.text) == (NoticeKind.TRADE_GAP, "ESZ6")
    assert notice.data == {"symbol": "ESZ6", "after": 10, "first": 14, "missing": 3}
    assert decode(d, charts(packet(102, tick(17))), connection=2)[1] == ()  # checked once
    assert (stats(d)["trade_gaps"], stats(d)["trades_missed"]) == (1, 3)


def test_a_rotation_overlap_delivers_each_id_once_without_a_gap():
    d = dialect()
    opened(d, "ESZ6", 101, connection=1)
    decode(d, charts(packet(101, tick(1), tick(2))), connection=1)
    body = opened(d, "ESZ6", 201, request_id=8, connection=2)  # the old chart still live
    assert "asFarAsTimestamp" in body["timeRange"]
    out: list[int | None] = []
    for connection, chart, tick_ids in [
        (1, 101, [3]),
        (2, 201, [2, 3]),  # the replacement's history
        (2, 201, [4]),
        (1, 101, [4, 5]),
        (2, 201, [5, 6]),
    ]:
        trades, found = decode(d, charts(packet(chart, *map(tick, tick_ids))), connection)
        assert found == ()
        out += ids(trades)
    assert out == [3, 4, 5, 6] and stats(d)["trade_gaps"] == 0


def test_after_an_unsubscribe_a_new_subscription_starts_fresh_but_never_repeats():
    d = dialect()
    opened(d, "ESZ6", 101)
    decode(d, charts(packet(101, tick(10))))
    unsubscribe(d, "ESZ6", 8)
    body = opened(d, "ESZ6", 102, request_id=9)
    assert body["timeRange"] == {"asMuchAsElements": 1}
    trades, found = decode(d, charts(packet(102, tick(10), tick(40))))
    assert ids(trades) == [40] and found == ()  # a fresh start: no gap announced


# ---- strictness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"e": "chart"},
        {"e": "chart", "d": []},
        {"e": "chart", "d": {"charts": {}}},
        {"e": "chart", "d": {"charts": [5]}},
        {"e": "chart", "d": {"charts": [{"id": "101"}]}},
        {"e": "chart", "d": {"charts": [{"eoh": True}]}},
        {"e": "chart", "d": {"charts": [{**packet(101), "tks": {}}]}},
        {"e": "chart", "d": {"charts": [{**packet(101, tick(1)), "bp": 1.5}]}},
        {"e": "chart", "d": {"charts": [{**packet(101, tick(1)), "bt": None}]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1), ts=0)]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1), ts=-0.25)]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1), ts="0.25")]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1), ts=None)]}},
        {"e": "chart", "d": {"charts": [packet(101, 5)]}},  # type: ignore[arg-type]
        {"e": "chart", "d": {"charts": [packet(101, tick("1"))]}},  # type: ignore[arg-type]
        {"e": "chart", "d": {"charts": [packet(101, tick(-1))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, t=1.5))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, p=-11917))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, p=True))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, s=-1))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, s="3"))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, b=0.5))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, a=-20000))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, bs=-2))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, **{"as": None, "bs": "x"}))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1, t=-BT - 1))]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1), bp=10**12, ts=1e18)]}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1), ts=float("nan"))]}},
    ],
)
def test_malformed_chart_events_raise(bad):
    d = dialect()
    opened(d, "ESZ6", 101)
    with pytest.raises(ProtocolError):
        decode(d, a_frame(bad))


def test_a_bad_frame_leaves_nothing_and_its_ticks_come_later():
    d = dialect()
    opened(d, "ESZ6", 101)
    opened(d, "NQZ6", 102, request_id=8)
    decode(d, charts(packet(101, tick(1))))
    before = stats(d)
    frame = charts(
        packet(101, tick(2), tick(3)),
        packet(102, tick(1)),
        packet(999),
        packet(101, tick(4, p=None)),
    )
    batch = MarketBatch(1)
    with pytest.raises(ProtocolError):
        d.decode(frame, 5.0, batch)
    assert not batch and stats(d) == before
    # the venue sends them again (a history after a reconnect): delivered, once
    trades, _ = decode(d, charts(packet(101, tick(2), tick(3)), packet(102, tick(1))))
    assert [(t.symbol, t.seq) for t in trades] == [("ESZ6", 2), ("ESZ6", 3), ("NQZ6", 1)]


def test_a_bad_frame_undoes_its_gap_check_too():
    d = dialect()
    opened(d, "ESZ6", 101, connection=1)
    decode(d, charts(packet(101, tick(10))), connection=1)
    d.connection_closed(1)
    opened(d, "ESZ6", 102, request_id=8, connection=2)
    with pytest.raises(ProtocolError):
        decode(d, charts(packet(102, tick(12)), {"id": 102, "tks": 5}), connection=2)
    assert stats(d)["trade_gaps"] == 0
    _, (notice,) = decode(d, charts(packet(102, tick(12))), connection=2)
    assert notice.data["missing"] == 1 and stats(d)["trade_gaps"] == 1


def test_quotes_and_answers_in_a_frame_with_ticks_keep_their_order():
    d = dialect()
    opened(d, "ESZ6", 101)
    subscribe(d, "NQZ6", 8)
    frame = a_frame(
        {"e": "md", "d": {"quotes": [{"contractId": 5, "entries": {}}]}},
        {"i": 8, "s": 200, "d": {"historicalId": 102, "realtimeId": 102}},
        {"e": "chart", "d": {"charts": [packet(101, tick(1)), packet(102, tick(1))]}},
    )
    batch = MarketBatch(1)
    (ok,) = d.decode(frame, 5.0, batch)
    assert ok.kind is AnswerKind.OK and len(batch.quotes) == 1
    assert [(t.symbol, t.seq) for t in batch.trades] == [("ESZ6", 1), ("NQZ6", 1)]


# ---- fuzz ------------------------------------------------------------------------------

numbers = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=3),
)
ticks = st.dictionaries(st.sampled_from(["t", "p", "s", "b", "a", "bs", "as", "id"]), numbers)
packets = st.fixed_dictionaries(
    {"id": st.sampled_from([101, 102, 999])},
    optional={
        "bp": numbers,
        "bt": numbers,
        "ts": numbers,
        "eoh": st.booleans(),
        "tks": st.lists(ticks, max_size=4) | numbers,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(packets, max_size=4))
def test_any_packets_decode_whole_or_raise_and_change_nothing(items):
    d = dialect()
    opened(d, "ESZ6", 101)
    decode(d, charts(packet(101, tick(5))))
    before = stats(d)
    batch = MarketBatch(1)
    try:
        d.decode(charts(*items), 5.0, batch)
    except ProtocolError:
        assert not batch and stats(d) == before
        return
    assert all(t.symbol == "ESZ6" and t.seq is not None and t.seq > 5 for t in batch.trades)
    seqs = ids(batch.trades)
    assert seqs == sorted(set(seqs))  # each id once, rising
    assert all(t.price > 0 for t in batch.trades)
