"""Sharding over connections: slots, caps, the token's spacing, failures kept apart.

Against the fake network (``tests/fake_venue.py``) under the autojump clock, so every
time is exact. The simulator's side of the same rules is ``tests/test_e2e_slots.py``.
"""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

import tickactors
from tickactors import BOOK, CapacityError
from tickactors.venues import AllTick

from .fake_venue import FakeNetwork

TOKEN = "tok-SECRET-slots"
URL = "ws://127.0.0.1:9/quote-b-ws-api"


def venue(**kw):
    return AllTick(url=URL, token=TOKEN, **kw)


def codes(request):
    return [entry["code"] for entry in request["data"]["symbol_list"]]


def accept_all(net: FakeNetwork) -> None:
    """Answer every subscription request of every open connection not answered yet."""
    for conn in net.transports:
        if conn.closed:
            continue
        for request in conn.requests():
            if request["cmd_id"] in (22002, 22004, 22006) and not request.get("answered"):
                request["answered"] = True
                conn.answer(request)


async def converge(feed, net, count, timeout=60.0):
    """Play the venue until the feed converged over ``count`` connections opened so far."""
    with trio.fail_after(timeout):
        await net.wait_connections(count)
        while not feed.is_converged():
            accept_all(net)
            await trio.sleep(0.1)


async def test_symbols_spread_over_connections_under_the_cap(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, max_symbols_per_connection=2, max_connections=3
    ) as feed:
        feed.subscribe("A", "B", "C", "D", "E")
        await converge(feed, net, 3)
        assert len(net.transports) == 3
        conns = sorted(net.transports, key=lambda conn: codes(conn.requests(22004)[-1]))
        carried = [set(codes(conn.requests(22004)[-1])) for conn in conns]
        assert carried == [{"A", "B"}, {"C", "D"}, {"E"}]  # fill before opening
        assert feed.confirmed() == {"A", "B", "C", "D", "E"}
        stats = feed.statistics()
        assert [s["desired"]["trades"] for s in stats["slots"]] == [2, 2, 1]
        assert [s["slot"] for s in stats["slots"]] == [0, 1, 2]
        assert stats["connection"]["connects"] == 3
        # each connection's data reaches the user; a symbol another slot carries is a
        # ghost here (counted, never delivered: no duplicate from a stray subscription)
        conns[0].trade("A", seq=1)
        conns[1].trade("C", seq=1)
        conns[2].trade("E", seq=1)
        conns[2].trade("A", seq=1)
        got = []
        with trio.fail_after(1):
            while len(got) < 3:
                got += [(t.symbol, t.seq) for t in await feed.get_batch()]
        assert sorted(got) == [("A", 1), ("C", 1), ("E", 1)]
        await trio.testing.wait_all_tasks_blocked()
        assert feed.statistics()["slots"][2]["ghost_ticks"] == 1
        # a kind has its own cap: books go where there is most room for books
        feed.subscribe("A", "B", "C", kind=BOOK)
        await converge(feed, net, 3)
        assert len(net.transports) == 3
        assert [codes(conn.requests(22002)[-1]) for conn in conns] == [["A"], ["B"], ["C"]]


async def test_capacity_error_names_the_misfits_and_changes_nothing(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(plan="premium"), transport_factory=net) as feed:
        feed.subscribe(*[f"S{i:03d}" for i in range(600)])  # 3 connections of 200
        with pytest.raises(CapacityError) as info:
            feed.subscribe("S000", "X1", "X2")
        assert info.value.symbols == ("X1 (trades)", "X2 (trades)")
        assert (info.value.per_connection, info.value.connections) == (200, 3)
        assert "X1" not in feed.desired() and len(feed.desired()) == 600
        await converge(feed, net, 3)
        assert len(net.transports) == 3
        feed.unsubscribe("S000")
        feed.subscribe("X1")  # the room one removal freed
        await converge(feed, net, 3)
        assert len(net.transports) == 3 and "X1" in feed.confirmed()


async def test_the_token_rule_keeps_requests_of_all_connections_apart(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, max_symbols_per_connection=1, max_connections=4
    ) as feed:
        feed.subscribe("A", "B", "C", "D")
        await converge(feed, net, 4)
        feed.unsubscribe("B")
        feed.subscribe("B2")
        await converge(feed, net, 5)  # B's slot closed with B, then opened for B2
        times = sorted(
            t for conn in net.transports for t, m in conn.sent if m["cmd_id"] in (22004, 22006)
        )
        assert len(times) >= 5
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 3.25  # AllTick's 3 s across one token's connections, + margin
        assert feed.statistics()["gate"]["requests"] == len(times)


async def test_a_lone_connection_answers_to_its_own_pace_only(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(plan="professional"), transport_factory=net) as feed:
        feed.subscribe("A")
        await converge(feed, net, 1)
        feed.subscribe("B")
        await converge(feed, net, 1)
        (conn,) = net.transports
        first, second = (t for t, m in conn.sent if m["cmd_id"] == 22004)
        assert second - first < 3.0  # one connection: 1 request/s, not the token's 3 s


async def test_one_connections_failure_leaves_the_others_alone(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, max_symbols_per_connection=1, max_connections=3, seed=2
    ) as feed:
        feed.subscribe("A", "B", "C")
        await converge(feed, net, 3)
        by_code = {codes(conn.requests(22004)[-1])[0]: conn for conn in net.transports}
        a, b, c = by_code["A"], by_code["B"], by_code["C"]
        b.close_by_peer()
        await net.wait_connections(4)
        await converge(feed, net, 4)
        b2 = net.transports[3]
        assert codes(b2.requests(22004)[-1]) == ["B"]  # the whole slot, on its own
        assert not a.closed and not c.closed
        assert len(a.requests(22004)) == len(c.requests(22004)) == 1  # nothing resent
        slots = feed.statistics()["slots"]
        assert [s["disconnects"] for s in slots] == [0, 1, 0]
        a.trade("A", seq=7)
        (tick,) = await feed.get_batch()
        assert tick.symbol == "A"


async def test_a_slot_that_carries_nothing_closes_its_connection(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, max_symbols_per_connection=1, max_connections=2
    ) as feed:
        feed.subscribe("A", "B")
        await converge(feed, net, 2)
        by_code = {codes(conn.requests(22004)[-1])[0]: conn for conn in net.transports}
        a, b = by_code["A"], by_code["B"]
        feed.unsubscribe("B")
        await trio.testing.wait_all_tasks_blocked()
        assert b.closed and b.closed_politely
        assert not a.closed
        assert [s["slot"] for s in feed.statistics()["slots"]] == [0]
        feed.subscribe("C")  # fits slot 0? no: slot 0 is full, slot 1 opens again
        await converge(feed, net, 3)
        assert codes(net.transports[2].requests(22004)[-1]) == ["C"]


def test_limits_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="plan is one of"):
        AllTick(url=URL, plan="gold")
    assert AllTick(url=URL, plan="free").dialect.reconnect_floor == 10.0
    assert AllTick(url=URL, plan="basic").dialect.max_connections == 1
    dialect = AllTick(url=URL, plan="premium").dialect
    assert (dialect.max_symbols, dialect.max_connections) == (200, 3)
    with pytest.raises(TypeError):  # open_feed's limits, not the venue's
        AllTick(url=URL, plan="premium", max_symbols=50)  # type: ignore[call-arg]


async def test_rotation_needs_a_spare_connection():
    with pytest.raises(ValueError, match="spare connection"):
        async with tickactors.open_feed(venue(plan="basic"), max_connection_age=3600):
            pass
    with pytest.raises(ValueError, match="longer than connect_timeout"):
        async with tickactors.open_feed(venue(), max_connection_age=30):
            pass
