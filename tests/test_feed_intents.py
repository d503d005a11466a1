"""subscribe/unsubscribe as the user's hot path, seen from outside: the wire, the feed's sets,
its events, and which of its tasks a call wakes.

A call validates its symbols (once per symbol: the feed remembers what it validated) and
changes the feed's desired sets at once; the changes reach the venue in as few requests as
the venue's pace allows. A burst of calls goes out as one request; while no request could go
anyway (the spacing since the last one, no connection) calls wake no task of the feed at all,
and everything they changed goes in the first request that may leave. Under the autojump
clock; the venue is ``tests/fake_venue.py`` (AllTick) or the simulator (Tradovate).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import tickactors
from tickactors import CapacityError, InvalidSymbolError
from tickactors._feed.feed import request_spacing
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

from .event_log import EventLog
from .fake_venue import FakeNetwork, FakeTransport

TOKEN = "tok-SECRET-a1b2c3"
URL = "ws://127.0.0.1:9/quote-b-ws-api"


def venue(**kw: Any) -> AllTick:
    return AllTick(url=URL, token=TOKEN, **kw)


async def subscribed(net: FakeNetwork, feed: tickactors.Feed, *symbols: str) -> FakeTransport:
    """Subscribe ``symbols`` on the first connection and let the fake venue accept them."""
    conn = await net.wait_connections(1)
    feed.subscribe(*symbols)
    await conn.wait_sent(1)
    conn.answer(conn.requests(22004)[0])
    await feed.wait_confirmed(*symbols)
    return conn


def codes(request: dict[str, Any]) -> list[str]:
    return [entry["code"] for entry in request["data"]["symbol_list"]]


def sent_at(conn: FakeTransport, cmd_id: int) -> list[float]:
    return [t for t, m in conn.sent if m["cmd_id"] == cmd_id]


class TaskSteps(trio.abc.Instrument):
    """The scheduler's count of steps of every task but the test's own: a call that wakes
    no task of the feed leaves it at zero."""

    def __init__(self) -> None:
        self.count = 0
        self._test = trio.lowlevel.current_task()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is not self._test:
            self.count += 1

    def __enter__(self) -> TaskSteps:
        trio.lowlevel.add_instrument(self)
        return self

    def __exit__(self, *exc: object) -> None:
        trio.lowlevel.remove_instrument(self)


class CountingValidator:
    """Wraps a dialect's validate_symbol and records every symbol it is asked about."""

    def __init__(self, venue: Any) -> None:
        self.calls: list[object] = []
        dialect = venue.dialect
        self._validate = dialect.validate_symbol
        dialect.validate_symbol = self

    def __call__(self, symbol: object) -> str:
        self.calls.append(symbol)
        return self._validate(symbol)


def churn(feed: tickactors.Feed, wanted: set[str], calls: int) -> None:
    """``calls`` subscribe/unsubscribe calls over 31 symbols; ``wanted`` follows them."""
    for i in range(calls):
        symbol = f"S{i * 7 % 31:02d}"
        if symbol in wanted:
            feed.unsubscribe(symbol)
        else:
            feed.subscribe(symbol)
        wanted ^= {symbol}


async def test_a_burst_of_calls_goes_out_as_one_request_at_once(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A", "B")
        await trio.sleep(5)  # the spacing since that request is over: the next may go at once
        wanted = {"A", "B"}
        burst_at = trio.current_time()
        churn(feed, wanted, 300)
        assert feed.desired() == wanted  # the feed's sets change with the call
        await conn.wait_sent(2)
        assert sent_at(conn, 22004)[1] == burst_at
        assert codes(conn.requests(22004)[1]) == sorted(wanted)
        conn.answer(conn.requests(22004)[1])
        with trio.fail_after(1):
            await feed.wait_converged()
        assert feed.confirmed() == wanted
        await trio.sleep(5)
        assert len(conn.requests(22004)) == 2  # one request for the burst, not one per call
        assert feed.statistics()["reconciler"]["requests_sent"] == 2


async def test_while_the_spacing_holds_requests_back_calls_wake_nothing(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A", "B")
        await trio.testing.wait_all_tasks_blocked()
        wanted = {"A", "B"}
        with TaskSteps() as steps:
            for _ in range(5):  # bursts while the spacing runs: no task of the feed wakes
                churn(feed, wanted, 60)
                await trio.testing.wait_all_tasks_blocked()
                await trio.sleep(0.1)
            assert steps.count == 0
        assert feed.desired() == wanted
        assert feed.is_converged() is False  # the feed knows what is still to do
        await conn.wait_sent(2)  # when the spacing allows: one request, all of it
        first, second = sent_at(conn, 22004)
        assert second - first == pytest.approx(request_spacing(feed._dialect))
        assert codes(conn.requests(22004)[1]) == sorted(wanted)
        conn.answer(conn.requests(22004)[1])
        with trio.fail_after(1):
            await feed.wait_converged()
        assert feed.confirmed() == wanted


async def test_changes_made_while_disconnected_go_in_the_first_request(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A")
        conn.close_by_peer()
        await trio.testing.wait_all_tasks_blocked()
        assert feed.confirmed() == set()
        with TaskSteps() as steps:
            feed.subscribe("B")
            feed.unsubscribe("A")
            feed.subscribe("C")
            await trio.testing.wait_all_tasks_blocked()
            assert steps.count == 0  # kept until a connection could carry them
        assert feed.desired() == {"B", "C"}
        again = await net.wait_connections(2)
        await again.wait_sent(1)
        assert codes(again.requests(22004)[0]) == ["B", "C"]
        again.answer(again.requests(22004)[0])
        await feed.wait_confirmed()
        assert feed.confirmed() == {"B", "C"}


async def test_calls_that_change_nothing_hand_nothing_over(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A")
        await trio.sleep(5)  # the next request may go at once: a change would wake the feed
        with TaskSteps() as steps:
            feed.subscribe("A")
            feed.unsubscribe("Z")
            feed.subscribe("A", "A")
            feed.unsubscribe("Y", "Z")
            await trio.testing.wait_all_tasks_blocked()
            assert steps.count == 0
            feed.subscribe("B")  # a real change does wake it
            await trio.testing.wait_all_tasks_blocked()
            assert steps.count > 0
        assert feed.desired() == {"A", "B"}
        assert [codes(r) for r in conn.requests(22004)] == [["A"], ["A", "B"]]


async def test_changes_reach_the_venue_in_the_order_the_user_made_them(autojump_clock):
    # Two symbols per kind and connection, one connection: the order of the calls decides
    # which call the cap refuses (a refused call changes nothing).
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, max_symbols_per_connection=2, max_connections=1
    ) as feed:
        feed.subscribe("C")
        feed.subscribe("A")
        feed.unsubscribe("C")  # before B and Z: room for one of them, not both
        with pytest.raises(CapacityError):
            feed.subscribe("Z", "B")
        feed.subscribe("B")
        feed.subscribe("BTC", kind=tickactors.BOOK)
        with pytest.raises(CapacityError):
            feed.subscribe("C")  # A and B hold the two places
        feed.unsubscribe("A")
        feed.subscribe("C")
        conn = await net.wait_connections(1)
        await conn.wait_sent(2)
        trades, books = conn.requests(22004), conn.requests(22002)
        assert sorted(codes(trades[-1])) == ["B", "C"]  # the burst, coalesced, in one request
        assert [codes(r) for r in books] == [["BTC"]]
        assert feed.desired() == {"B", "C"}
        assert feed.desired(tickactors.BOOK) == {"BTC"}
        assert feed.rejected() == {}


async def test_a_symbol_is_validated_once_and_a_bad_one_every_time(autojump_clock):
    net = FakeNetwork()
    alltick = venue()
    validator = CountingValidator(alltick)
    async with tickactors.open_feed(alltick, transport_factory=net) as feed:
        conn = await net.wait_connections(1)
        for _ in range(3):
            feed.subscribe("A")
            feed.unsubscribe("A")
        assert validator.calls == ["A"]
        for _ in range(2):
            with pytest.raises(InvalidSymbolError):
                feed.subscribe("b a d")
            with pytest.raises(InvalidSymbolError):
                feed.unsubscribe("b a d")
            with pytest.raises(InvalidSymbolError):
                feed.subscribe(5)  # type: ignore[arg-type]
        assert validator.calls.count("b a d") == 4

        class Str(str):
            pass

        feed.subscribe(Str("D"))  # not exactly a str: validated every time
        feed.unsubscribe(Str("D"))
        assert validator.calls[-2:] == ["D", "D"]
        with pytest.raises(InvalidSymbolError):
            feed.subscribe("A", "b a d")  # one bad symbol: nothing changes
        assert feed.desired() == set()
        feed.subscribe("OK")
        await conn.wait_sent(1)
        await trio.sleep(5)
        assert [codes(r) for r in conn.requests(22004)] == [["OK"]]


async def test_the_feed_remembers_a_bounded_number_of_symbols(autojump_clock):
    alltick = venue()
    validator = CountingValidator(alltick)
    async with tickactors.open_feed(alltick, transport_factory=FakeNetwork()) as feed:
        for i in range(4097):
            feed.subscribe(f"S{i}")
        assert len(validator.calls) == 4097
        feed.unsubscribe("S4096")  # the newest: remembered
        assert len(validator.calls) == 4097
        feed.unsubscribe("S0")  # beyond 4096 symbols the feed forgot the older ones
        assert validator.calls[4097:] == ["S0"]
        assert len(feed.desired()) == 4095
        for i in range(4097):
            feed.unsubscribe(f"S{i}")
        assert feed.desired() == set()


async def test_the_hot_path_uses_the_venues_spelling(autojump_clock):
    token = "tv-intent-token-7c7c"
    async with open_simulator("tradovate", config=SimConfig(tokens={token}), seed=5) as sim:
        tradovate = Tradovate(url=sim.url, token=token)
        async with tickactors.open_feed(tradovate, seed=5) as feed:
            feed.subscribe("esz6")  # validated: the venue spells it ESZ6
            feed.subscribe("esz6")  # known now: the hot path, and nothing changes
            assert feed.desired() == {"ESZ6"}
            with trio.fail_after(20):
                await feed.wait_confirmed()
            feed.unsubscribe("esz6")  # the hot path, both ways
            assert feed.desired() == set()
            with trio.fail_after(20):
                await feed.wait_converged()
            feed.subscribe("esz6")
            with trio.fail_after(20):
                await feed.wait_confirmed()
            assert feed.confirmed() == {"ESZ6"}
            (conn,) = sim.connections
            wire = [(endpoint, query, body) for _, endpoint, _, query, body in conn.requests]
            assert wire[1:] == [  # after authorize: the venue's spelling only
                ("contract/find", "name=ESZ6", ""),
                ("md/subscribeQuote", "", '{"symbol":"ESZ6"}'),
                ("md/unsubscribeQuote", "", '{"symbol":"ESZ6"}'),
                ("md/subscribeQuote", "", '{"symbol":"ESZ6"}'),
            ]
            feed.subscribe("0042")  # a contract id, without its leading zeros
            assert feed.desired() == {"ESZ6", "42"}


async def test_a_closed_feed_refuses_known_symbols_too(autojump_clock):
    async with tickactors.open_feed(venue(), transport_factory=FakeNetwork()) as feed:
        feed.subscribe("A")
    with pytest.raises(tickactors.FeedClosedError):
        feed.subscribe("A")
    with pytest.raises(tickactors.FeedClosedError):
        feed.unsubscribe("A")


async def test_rewatching_keeps_no_symbol_clock_when_symbol_staleness_is_off(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A", "B")
        feed.unsubscribe("A")
        await trio.testing.wait_all_tasks_blocked()
        assert feed.statistics()["staleness"]["watched"] == 0  # no clocks kept when off
        feed.subscribe("A")
        feed.unsubscribe("B")
        await trio.sleep(2)
        conn.answer(conn.requests(22004)[1])
        await feed.wait_converged()
        assert feed.statistics()["staleness"]["watched"] == 0
        for _ in range(100):  # A stays silent for 25 s while the connection is busy
            conn.trade("A")
            await trio.sleep(0.25)
        assert feed.statistics()["events"].get("symbol_stale", 0) == 0


async def test_watching_a_first_symbol_wakes_the_detector_when_symbol_staleness_is_on(
    autojump_clock,
):
    # The detector sleeps until the connection's deadline (30 s) while no symbol has a
    # clock; the first confirmed symbol's clock (2 s) must wake it, or A's silence would
    # be reported 28 s late.
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=30, symbol_stale_after=2
    ) as feed:
        log = EventLog()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.follow, feed)
            conn = await net.wait_connections(1)
            await trio.testing.wait_all_tasks_blocked()
            await subscribed(net, feed, "A")
            confirmed_at = trio.current_time()

            async def the_connection_stays_busy() -> None:
                while True:  # answers to nothing: the connection talks, A stays silent
                    conn.push({"ret": 200, "msg": "ok", "cmd_id": 22001, "seq_id": 0, "data": {}})
                    await trio.sleep(0.25)

            nursery.start_soon(the_connection_stays_busy)
            with trio.fail_after(10):
                event = await log.wait_for("symbol_stale")
            assert event.detail["symbol"] == "A"
            assert event.time == confirmed_at + 2
            assert feed.statistics()["staleness"]["watched"] == 1
            nursery.cancel_scope.cancel()
