"""The Tradovate dialect: every frame and answer kind decodes exactly, bad frames raise."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors import QUOTES, InvalidSymbolError, ProtocolError, Quote, Secret
from tickactors._core.reconciler import Action, SendRequest
from tickactors._values import BOOK, TRADES, BookLevel
from tickactors.venues import Tradovate
from tickactors.venues._dialect import AnswerKind, MarketBatch, Notice, NoticeKind
from tickactors.venues._tradovate import TradovateDialect

TOKEN = "tok-SECRET-4f9a2c"
URL = "ws://127.0.0.1:1/v1/websocket"
STAMP = "2021-04-13T04:59:06.588Z"
STAMP_SECONDS = 1618289946.588


def dialect() -> TradovateDialect:
    return Tradovate(url=URL, token=TOKEN).dialect


def decode(frame, d=None):
    batch = MarketBatch()
    found = (d or dialect()).decode(frame, 5.0, batch)
    return batch, found


def a_frame(*items) -> str:
    return "a" + orjson.dumps(list(items)).decode()


def quote_frame(entries, contract_id=123456, **extra):
    quote = {"timestamp": STAMP, "contractId": contract_id, "entries": entries, **extra}
    return a_frame({"e": "md", "d": {"quotes": [quote]}})


# ---- the venue object -------------------------------------------------------------


def test_venue_traits_and_repr_without_secret():
    venue = Tradovate(url=URL, token=TOKEN)
    d = venue.dialect
    assert (d.name, d.kinds, d.heartbeat_tracked, d.authorize_required) == (
        "tradovate",
        (QUOTES, BOOK, TRADES),
        False,
        True,
    )
    assert (d.budget_frames, d.budget_per) == (10, 1.0)
    assert (d.heartbeat_interval, d.stale_after, d.request_timeout) == (2.5, 10.0, 10.0)
    assert d.connect_url(Secret(TOKEN)) == URL and d.display_url() == URL
    assert TOKEN not in repr(venue) and repr(venue) == f"Tradovate(url={URL!r})"
    assert Tradovate().dialect.display_url() == Tradovate.MD_URL
    with pytest.raises(ValueError):
        Tradovate(url="https://md.tradovateapi.com/v1/websocket")


# ---- frames ----------------------------------------------------------------------


def test_open_heartbeat_and_close_frames():
    assert decode("o")[1] == (Notice(NoticeKind.OPENED),)
    assert decode(b"o")[1] == (Notice(NoticeKind.OPENED),)
    batch, found = decode("h")
    assert found == () and not batch
    assert decode('c[3000,"Go away!"]')[1] == (Notice(NoticeKind.CLOSING, 3000, "Go away!"),)
    assert decode("c[1000]")[1] == (Notice(NoticeKind.CLOSING, 1000, ""),)
    assert decode("a[]")[1] == ()


def test_documented_quote_decodes_exactly():
    entries = {
        "Bid": {"price": 18405.12, "size": 7},
        "Offer": {"price": 18410.0, "size": 12},
        "Trade": {"price": 18405.0, "size": 2},
        "TotalTradeVolume": {"size": 4118},
        "HighPrice": {"price": 18500.25},
        "OpenInterest": {"size": 99},
        "Odd": {"price": 1.5, "size": 3},
    }
    batch, found = decode(quote_frame(entries, id=123456))
    assert found == ()
    (quote,) = batch.quotes
    assert quote == Quote(
        "#123456",
        123456,
        Decimal("18405.12"),
        Decimal(7),
        Decimal("18410.0"),
        Decimal(12),
        Decimal("18405.0"),
        Decimal(2),
        Decimal(4118),
        STAMP_SECONDS,
        5.0,
    )
    assert str(quote.bid) == "18405.12"
    assert quote.price == quote.last and quote.kind is QUOTES
    assert quote.fields == {
        "HighPrice": Decimal("18500.25"),
        "OpenInterest": Decimal(99),
        "Odd": {"price": Decimal("1.5"), "size": Decimal(3)},
    }


@pytest.mark.parametrize("missing", ["Bid", "Offer", "Trade", "TotalTradeVolume"])
def test_quote_with_an_entry_missing(missing):
    entries = {
        "Bid": {"price": 10.25, "size": 1},
        "Offer": {"price": 10.5, "size": 2},
        "Trade": {"price": 10.25, "size": 3},
        "TotalTradeVolume": {"size": 4},
    }
    del entries[missing]
    (quote,) = decode(quote_frame(entries))[0].quotes
    values = {
        "Bid": (quote.bid, quote.bid_size),
        "Offer": (quote.offer, quote.offer_size),
        "Trade": (quote.last, quote.last_size),
        "TotalTradeVolume": (None, quote.total_volume),
    }
    for name, pair in values.items():
        assert (pair == (None, None)) is (name == missing)


@pytest.mark.parametrize("entry", ["Bid", "Offer", "Trade"])
@pytest.mark.parametrize("field", ["price", "size"])
def test_quote_entry_missing_its_price_or_size(entry, field):
    entries = {entry: {"price": 99.75, "size": 5}}
    del entries[entry][field]
    (quote,) = decode(quote_frame(entries))[0].quotes
    pair = {
        "Bid": (quote.bid, quote.bid_size),
        "Offer": (quote.offer, quote.offer_size),
        "Trade": (quote.last, quote.last_size),
    }[entry]
    expected = (None, Decimal(5)) if field == "price" else (Decimal("99.75"), None)
    assert pair == expected


def test_empty_quote_and_no_timestamp():
    frame = a_frame({"e": "md", "d": {"quotes": [{"contractId": 9, "entries": {}}]}})
    (quote,) = decode(frame)[0].quotes
    assert quote == Quote("#9", 9, exchange_time=None, received_at=5.0)
    assert quote.price is None


def test_remembered_contract_names_its_quotes_and_doms():
    d = dialect()
    d.remember_contract(123456, "ESZ6")
    assert d.contract_name(123456) == "ESZ6" and d.contract_name(1) is None
    (quote,) = decode(quote_frame({}), d)[0].quotes
    assert (quote.symbol, quote.contract_id) == ("ESZ6", 123456)
    with pytest.raises(ValueError):
        d.remember_contract(0, "X")
    with pytest.raises(ValueError):
        d.remember_contract(5, "")


def test_dom_decodes_to_a_book_snapshot():
    dom = {
        "timestamp": STAMP,
        "contractId": 77,
        "bids": [{"price": 100.25, "size": 3}, {"price": 100, "size": 0}],
        "offers": [{"price": 100.5, "size": 4}],
    }
    d = dialect()
    batch, found = decode(a_frame({"e": "md", "d": {"doms": [dom]}}), d)
    assert found == ()
    (book,) = batch.books
    assert book.symbol == "#77" and book.kind is BOOK
    assert book.bids == (
        BookLevel(Decimal("100.25"), Decimal(3)),
        BookLevel(Decimal(100), Decimal(0)),
    )
    assert book.asks == (BookLevel(Decimal("100.5"), Decimal(4)),)
    assert (book.exchange_time, book.received_at, book.fields) == (
        STAMP_SECONDS,
        5.0,
        {"contract_id": 77},
    )
    dom.pop("bids")
    (book,) = decode(a_frame({"e": "md", "d": {"doms": [dom]}}))[0].books
    assert book.bids == ()


def test_many_items_in_one_frame_keep_their_order():
    quote = {"contractId": 1, "entries": {"Bid": {"price": 1.5}}}
    frame = a_frame(
        {"i": 1, "s": 200},
        {"e": "md", "d": {"quotes": [quote, {**quote, "contractId": 2}], "histograms": []}},
        {"e": "chart", "d": {"charts": []}},
        {"e": "shutdown", "d": {"reasonCode": "Maintenance", "reason": "later"}},
    )
    d = dialect()
    batch, found = decode(frame, d)
    assert [q.contract_id for q in batch.quotes] == [1, 2]
    assert [type(x).__name__ for x in found] == ["Answer", "Notice"]
    assert d.ignored == 1  # the histograms part (a chart event is read: it has no packet)
    assert d.statistics()["chart_ghosts"] == 0


@pytest.mark.parametrize("reason", ["Maintenance", "ConnectionQuotaReached", "IPQuotaReached"])
def test_shutdown_reasons(reason):
    frame = a_frame({"e": "shutdown", "d": {"reasonCode": reason, "reason": "text"}})
    (notice,) = decode(frame)[1]
    assert notice == Notice(
        NoticeKind.SHUTDOWN, None, reason, {"reasonCode": reason, "reason": "text"}
    )


def test_clock_d_is_a_json_string_and_props_an_object():
    inner = {"t": "2024-01-02T03:04:05.000Z", "s": 400}
    (notice,) = decode(a_frame({"e": "clock", "d": orjson.dumps(inner).decode()}))[1]
    assert notice == Notice(NoticeKind.CLOCK, data=inner)
    (notice,) = decode(a_frame({"e": "clock", "d": inner}))[1]
    assert notice.data == inner
    props = {"entityType": "position", "eventType": "Updated", "entity": {"id": 1}}
    (notice,) = decode(a_frame({"e": "props", "d": props}))[1]
    assert notice == Notice(NoticeKind.PROPS, data=props)


# ---- answers -----------------------------------------------------------------------


def one_answer(item):
    (answer,) = decode(a_frame(item))[1]
    return answer


def test_ok_answers_carry_their_data():
    answer = one_answer({"i": 7, "s": 200, "d": {"subscriptionId": 123456}})
    assert (answer.request_id, answer.kind, answer.code) == (7, AnswerKind.OK, 200)
    assert answer.data == {"subscriptionId": 123456} and answer.message == ""
    assert one_answer({"i": 0, "s": 200}).kind is AnswerKind.OK


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, AnswerKind.REJECTED),
        (401, AnswerKind.AUTH),
        (403, AnswerKind.REJECTED),
        (404, AnswerKind.REJECTED),
        (429, AnswerKind.RATE_LIMITED),
        (405, AnswerKind.BAD_REQUEST),
        (422, AnswerKind.BAD_REQUEST),
        (500, AnswerKind.REJECTED),
        (302, AnswerKind.REJECTED),
    ],
)
def test_error_statuses(status, kind):
    answer = one_answer({"i": 3, "s": status, "d": "Unknown symbol: XYZ"})
    assert (answer.kind, answer.code, answer.message) == (kind, status, "Unknown symbol: XYZ")
    assert answer.retry_after is None and answer.ticket is None


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ("Access is denied", "Access is denied"),
        ('"Access is denied"', "Access is denied"),  # double-encoded
        ('"not closed', '"not closed'),
        ('"a" and "b"', '"a" and "b"'),
        ({"errorText": "Expired Access Token"}, "Expired Access Token"),
        ({"x": 1}, '{"x":1}'),
        (None, "status 401"),
        ("", "status 401"),
        ("x" * 500, "x" * 200),
    ],
)
def test_error_text_plain_double_encoded_or_object(d, message):
    item = {"i": 2, "s": 401} if d is None else {"i": 2, "s": 401, "d": d}
    answer = one_answer(item)
    assert answer.kind is AnswerKind.AUTH and answer.message == message


def test_penalty_and_captcha_answers():
    ticket = {"p-ticket": "T-42", "p-time": 60, "p-captcha": False}
    answer = one_answer({"i": 9, "s": 200, "d": ticket})
    assert (answer.kind, answer.retry_after, answer.ticket) == (AnswerKind.PENALTY, 60.0, "T-42")
    assert answer.data == ticket
    answer = one_answer({"i": 9, "s": 200, "d": {"p-ticket": "T", "p-time": 2.5}})
    assert (answer.kind, answer.retry_after) == (AnswerKind.PENALTY, 2.5)
    captcha = {"p-ticket": "T-43", "p-time": 3600, "p-captcha": True}
    answer = one_answer({"i": 10, "s": 200, "d": captcha})
    assert (answer.kind, answer.retry_after, answer.ticket) == (AnswerKind.CAPTCHA, 3600.0, "T-43")
    answer = one_answer({"i": 10, "s": 200, "d": {"p-captcha": True}})
    assert (answer.kind, answer.retry_after, answer.ticket) == (AnswerKind.CAPTCHA, None, None)


@pytest.mark.parametrize(
    "d",
    [
        {"p-ticket": "T"},  # no p-time
        {"p-ticket": "T", "p-time": -1},
        {"p-ticket": "T", "p-time": "60"},
        {"p-ticket": "T", "p-time": True},
        {"p-ticket": 5, "p-time": 60},
        {"p-ticket": "T", "p-time": 60, "p-captcha": "yes"},
        {"p-ticket": "T", "p-time": 3600.5},  # waiting it out would be waiting forever
        {"p-ticket": "T", "p-time": 1e308},
    ],
)
def test_malformed_penalties_raise(d):
    with pytest.raises(ProtocolError):
        decode(a_frame({"i": 1, "s": 200, "d": d}))


# ---- requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kind", "endpoint"),
    [
        (Action.SUBSCRIBE, QUOTES, "md/subscribeQuote"),
        (Action.UNSUBSCRIBE, QUOTES, "md/unsubscribeQuote"),
        (Action.SUBSCRIBE, BOOK, "md/subscribeDOM"),
        (Action.UNSUBSCRIBE, BOOK, "md/unsubscribeDOM"),
    ],
)
def test_encode_every_request(action, kind, endpoint):
    d = dialect()
    frame = d.encode_request(SendRequest(1, kind, action, ("ESZ6",)), 7)
    assert frame == f'{endpoint}\n7\n\n{{"symbol":"ESZ6"}}'
    frame = d.encode_request(SendRequest(1, kind, action, ("3570918",)), 8)
    assert frame == f'{endpoint}\n8\n\n{{"symbol":3570918}}'


def test_ids_subscribed_by_number_decode_under_that_spelling_and_ghosts_unsubscribe_by_id():
    d = dialect()
    d.encode_request(SendRequest(1, QUOTES, Action.SUBSCRIBE, ("42",)), 1)
    assert decode(quote_frame({}, contract_id=42), d)[0].quotes[0].symbol == "42"
    frame = d.encode_request(SendRequest(2, QUOTES, Action.UNSUBSCRIBE, ("#77",)), 2)
    assert frame == 'md/unsubscribeQuote\n2\n\n{"symbol":77}'


@pytest.mark.parametrize(
    "request_",
    [
        SendRequest(1, QUOTES, Action.REPLACE, ("ESZ6",)),
        SendRequest(1, QUOTES, Action.CANCEL, ()),
        SendRequest(1, TRADES, Action.REPLACE, ("ESZ6",)),
        SendRequest(1, TRADES, Action.SUBSCRIBE, ("ESZ6", "NQZ6")),
        SendRequest(1, QUOTES, Action.SUBSCRIBE, ("ESZ6", "NQZ6")),
    ],
)
def test_requests_the_venue_cannot_express_raise(request_):
    with pytest.raises(ValueError):
        dialect().encode_request(request_, 1)


def test_encode_heartbeat_authorize_and_calls():
    d = dialect()
    assert d.encode_heartbeat(0) == "[]"
    assert d.encode_authorize(Secret(TOKEN), 0) == f"authorize\n0\n\n{TOKEN}"
    assert d.encode_call("contract/find", 8, "name=ESZ6") == "contract/find\n8\nname=ESZ6\n"
    assert d.encode_call("contract/find", 8, {"name": "ESZ6"}) == "contract/find\n8\nname=ESZ6\n"
    assert d.encode_call("user/syncrequest", 9, body={"users": [1]}) == (
        'user/syncrequest\n9\n\n{"users":[1]}'
    )
    assert d.encode_call("x/y", 1, body="raw") == "x/y\n1\n\nraw"
    for bad in (("", 1), ("a\nb", 1), ("a", -1)):
        with pytest.raises(ValueError):
            d.encode_call(*bad)
    with pytest.raises(ValueError):
        d.encode_call("a", 1, "q\n")


# ---- symbols ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("ESZ6", "ESZ6"),
        ("MESZ6", "MESZ6"),
        ("NQZ6", "NQZ6"),
        ("CLF7", "CLF7"),
        ("6EZ6", "6EZ6"),
        ("@ES", "@ES"),
        ("esz6", "ESZ6"),
        ("ES.Z6-x_1", "ES.Z6-X_1"),
        ("A" * 32, "A" * 32),
        (3570918, "3570918"),
        ("3570918", "3570918"),
        ("007", "7"),
    ],
)
def test_good_symbols(symbol, expected):
    assert dialect().validate_symbol(symbol) == expected


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        "A" * 33,
        "ES Z6",
        "ESZ6\n",
        "ÉSZ6",
        "\u0415SZ6",
        "#12",
        ".ES",
        "-ES",
        "ES/Z6",
        0,
        -5,
        2**63,
        "0",
        True,
        None,
        1.5,
        b"ESZ6",
    ],
)
def test_bad_symbols(symbol):
    with pytest.raises(InvalidSymbolError):
        dialect().validate_symbol(symbol)


# ---- malformed frames ---------------------------------------------------------------

GOOD_QUOTE = {"contractId": 1, "entries": {"Bid": {"price": 1.5, "size": 1}}}


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "x",
        "oo",
        "h ",
        "a",
        "a[",
        "a{}",
        "a[1]",
        'a["s"]',
        b"\xff\xfea[]",
        "c",
        "c[]",
        'c["x","y"]',
        "c[1,2]",
        'c[1,"a","b"]',
        a_frame({"s": 200}),  # no i
        a_frame({"i": "1", "s": 200}),
        a_frame({"i": -1, "s": 200}),
        a_frame({"i": True, "s": 200}),
        a_frame({"i": 1}),  # no s
        a_frame({"i": 1, "s": "200"}),
        a_frame({"e": 5, "d": {}}),
        a_frame({"e": "md", "d": None}),
        a_frame({"e": "md", "d": {"quotes": {}}}),
        a_frame({"e": "md", "d": {"quotes": [5]}}),
        a_frame({"e": "md", "d": {"doms": [{"contractId": 1, "bids": {}}]}}),
        a_frame({"e": "md", "d": {"doms": [{"contractId": 1, "bids": [{"price": 1}]}]}}),
        a_frame({"e": "md", "d": {"doms": [{"contractId": 1, "bids": [[1, 2]]}]}}),
        a_frame({"e": "clock", "d": "not json"}),
        a_frame({"e": "clock", "d": "[1]"}),
        a_frame({"e": "clock", "d": 5}),
        a_frame({"e": "props", "d": "x"}),
        a_frame({"e": "shutdown", "d": {"reasonCode": 5}}),
        a_frame({"e": "shutdown"}),
        quote_frame(None),
        quote_frame([]),
        quote_frame({"Bid": None}),
        quote_frame({"Bid": {"price": "1.5"}}),
        quote_frame({"Bid": {"price": 0}}),
        quote_frame({"Bid": {"price": 0.0}}),
        quote_frame({"Bid": {"price": -1.25}}),
        'a[{"e":"md","d":{"quotes":[{"contractId":1,"entries":{"Bid":{"price":1e400}}}]}}]',
        quote_frame({"Bid": {"price": True}}),
        quote_frame({"Bid": {"size": -1}}),
        quote_frame({"Trade": {"size": "2"}}),
        quote_frame({"HighPrice": {"price": -3.0}}),
        quote_frame({}, contract_id=0),
        quote_frame({}, contract_id="123"),
        quote_frame({}, contract_id=None),
        quote_frame({}, timestamp="yesterday"),
        quote_frame({}, timestamp=1618289946),
        quote_frame({}, timestamp="2021-04-13T04:59:06" + "0" * 60),
        "a[NaN]",
        'a[{"e":"md","d":{"quotes":[{"contractId":1,"entries":{"Bid":{"price":NaN}}}]}}]',
    ],
)
def test_malformed_frames_raise_protocol_error(frame):
    with pytest.raises(ProtocolError):
        decode(frame)


def test_a_bad_item_leaves_nothing_of_its_frame_in_the_batch():
    frame = a_frame(
        {"e": "md", "d": {"quotes": [GOOD_QUOTE], "doms": [{"contractId": 1}]}},
        {"e": "md", "d": {"quotes": [{"contractId": 1, "entries": None}]}},
    )
    batch = MarketBatch()
    d = dialect()
    d.decode(quote_frame({}), 1.0, batch)
    with pytest.raises(ProtocolError):
        d.decode(frame, 1.0, batch)
    assert len(batch.quotes) == 1 and batch.books == []


# ---- fuzz ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "i",
                    "s",
                    "d",
                    "e",
                    "quotes",
                    "doms",
                    "contractId",
                    "entries",
                    "timestamp",
                    "Bid",
                    "Trade",
                    "price",
                    "size",
                    "bids",
                    "offers",
                    "p-ticket",
                    "p-time",
                    "p-captcha",
                    "reasonCode",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)
events = st.fixed_dictionaries(
    {"e": st.sampled_from(["md", "clock", "props", "shutdown", "chart"]), "d": json_values}
)


def decodes_or_raises_protocol_error(frame) -> None:
    d = dialect()
    batch = MarketBatch()
    try:
        found = d.decode(frame, 0.0, batch)
    except ProtocolError:
        assert not batch
        return
    for item in found:
        assert item.__class__.__name__ in ("Answer", "Notice")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | st.binary(max_size=60))
def test_any_text_or_bytes_decodes_or_raises_protocol_error(frame):
    decodes_or_raises_protocol_error(frame)
    decodes_or_raises_protocol_error("a" + frame if isinstance(frame, str) else b"a" + frame)


@settings(max_examples=500, deadline=None)
@given(st.lists(json_values | events, max_size=4), st.sampled_from(["a", "c", ""]))
def test_any_json_after_a_frame_letter_decodes_or_raises_protocol_error(items, letter):
    decodes_or_raises_protocol_error(letter + orjson.dumps(items).decode())
