"""subscribe/unsubscribe as the user's hot path, and how the reconciler actor takes them.

A call validates its symbols (once per symbol: the feed remembers what it validated), changes
the feed's desired sets, and appends the change to the reconciler actor's ``intents``; the
first change since the actor last took them puts that list in the actor's inbox, so a burst of
calls costs one inbox item and one step, never one per call. Under the autojump clock.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import tickactors
from tickactors import InvalidSymbolError
from tickactors._feed.feed import request_spacing
from tickactors.venues import AllTick, Tradovate

from .fake_venue import FakeNetwork

TOKEN = "tok-SECRET-a1b2c3"
URL = "ws://127.0.0.1:9/quote-b-ws-api"


async def subscribed(net: FakeNetwork, feed: tickactors.Feed, *symbols: str) -> Any:
    conn = await net.wait_connections(1)
    feed.subscribe(*symbols)
    await conn.wait_sent(1)
    conn.answer(conn.requests(22004)[0])
    await feed.wait_confirmed(*symbols)
    return conn


def codes(request: dict[str, Any]) -> list[str]:
    return [entry["code"] for entry in request["data"]["symbol_list"]]


class CountingValidator:
    """Wraps a dialect's validate_symbol and counts its calls."""

    def __init__(self, feed: tickactors.Feed) -> None:
        self.calls: list[object] = []
        self._validate = feed.dialect.validate_symbol
        feed.dialect.validate_symbol = self  # type: ignore[method-assign]

    def __call__(self, symbol: object) -> str:
        self.calls.append(symbol)
        return self._validate(symbol)


def churn(feed: tickactors.Feed, wanted: set[str], calls: int) -> None:
    for i in range(calls):
        symbol = f"S{i * 7 % 31:02d}"
        if symbol in wanted:
            feed.unsubscribe(symbol)
        else:
            feed.subscribe(symbol)
        wanted ^= {symbol}


async def test_a_burst_of_calls_is_one_inbox_item_one_step_and_one_request(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(AllTick(url=URL, token=TOKEN), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A", "B")
        await trio.sleep(5)  # the spacing since that request is over: the actor is eager
        assert feed.reconciler.eager
        inbox = feed.reconciler.inbox
        wanted = {"A", "B"}
        churn(feed, wanted, 300)
        # One wake-up for the whole burst (handed to the waiting actor or in the buffer).
        assert inbox.statistics().current_buffer_used <= 1
        assert len(feed.reconciler.intents) == 300
        await trio.testing.wait_all_tasks_blocked()
        assert feed.reconciler.intents == []
        assert feed.reconciler_machine.desired(tickactors.TRADES) == wanted == feed.desired()
        await conn.wait_sent(2)
        assert codes(conn.requests(22004)[1]) == sorted(wanted)
        await trio.sleep(5)
        assert len(conn.requests(22004)) == 2  # one request for the burst, not one per call


async def test_while_the_spacing_holds_requests_back_changes_wait_without_a_wake_up(
    autojump_clock,
):
    net = FakeNetwork()
    async with tickactors.open_feed(AllTick(url=URL, token=TOKEN), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A", "B")
        await trio.testing.wait_all_tasks_blocked()
        actor = feed.reconciler
        assert not actor.eager  # the next request may go one spacing after the last one
        sent_at = trio.current_time()
        wanted = {"A", "B"}
        steps = 0
        step = actor._step

        def counted(item: Any) -> None:
            nonlocal steps
            steps += 1
            step(item)

        actor._step = counted  # type: ignore[method-assign]
        for _ in range(5):  # bursts while the spacing runs: no wake-up, nothing handled
            churn(feed, wanted, 60)
            assert actor.inbox.statistics().current_buffer_used == 0
            await trio.sleep(0.1)
        assert steps == 0
        assert len(actor.intents) == 300
        assert feed.is_converged() is False  # the feed knows what is still to do
        await conn.wait_sent(2)  # when the spacing allows: one step, one request, all of it
        assert steps == 1
        assert trio.current_time() - sent_at == pytest.approx(request_spacing(feed.dialect))
        assert codes(conn.requests(22004)[1]) == sorted(wanted)
        assert actor.intents == []
        assert feed.reconciler_machine.desired(tickactors.TRADES) == wanted
        conn.answer(conn.requests(22004)[1])
        with trio.fail_after(1):
            await feed.wait_converged()


async def test_changes_made_while_disconnected_go_in_the_first_request(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(AllTick(url=URL, token=TOKEN), transport_factory=net) as feed:
        conn = await subscribed(net, feed, "A")
        conn.close_by_peer()
        await trio.testing.wait_all_tasks_blocked()
        actor = feed.reconciler
        feed.subscribe("B")
        feed.unsubscribe("A")
        feed.subscribe("C")
        assert not actor.eager and len(actor.intents) == 3  # kept until connected again
        again = await net.wait_connections(2)
        await again.wait_sent(1)
        assert codes(again.requests(22004)[0]) == ["B", "C"]
        again.answer(again.requests(22004)[0])
        await feed.wait_confirmed()
        assert feed.slots.confirmed(tickactors.TRADES) == {"B", "C"}


async def test_calls_that_change_nothing_hand_nothing_over(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(AllTick(url=URL, token=TOKEN), transport_factory=net) as feed:
        await subscribed(net, feed, "A")
        await trio.testing.wait_all_tasks_blocked()
        feed.subscribe("A")
        feed.unsubscribe("Z")
        feed.subscribe("A", "A")
        feed.unsubscribe("Y", "Z")
        assert feed.reconciler.intents == []
        assert feed.reconciler.inbox.statistics().current_buffer_used == 0


async def test_the_reconciler_sees_changes_in_the_order_the_user_made_them(autojump_clock):
    net = FakeNetwork()
    venue = AllTick(url=URL, token=TOKEN)
    async with tickactors.open_feed(venue, transport_factory=net) as feed:
        feed.subscribe("C")
        feed.subscribe("A")
        feed.subscribe("Z", "B")  # several in one call go in sorted order
        feed.unsubscribe("C")
        feed.subscribe("BTC", kind=tickactors.BOOK)
        feed.subscribe("C")
        feed.unsubscribe("A")
        await trio.testing.wait_all_tasks_blocked()
        machine = feed.reconciler_machine
        assert list(machine.wanted_view(tickactors.TRADES)) == ["B", "Z", "C"]
        assert list(machine.wanted_view(tickactors.BOOK)) == ["BTC"]
        assert feed.desired() == {"B", "Z", "C"}
        assert feed.desired(tickactors.BOOK) == {"BTC"}


async def test_a_symbol_is_validated_once_and_a_bad_one_every_time(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(AllTick(url=URL, token=TOKEN), transport_factory=net) as feed:
        conn = await net.wait_connections(1)
        validator = CountingValidator(feed)
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
    async with tickactors.open_feed(
        AllTick(url=URL, token=TOKEN), transport_factory=FakeNetwork()
    ) as feed:
        for i in range(5000):
            feed.subscribe(f"S{i}")
        assert len(feed._known) <= 4096
        assert len(feed.desired()) == 5000
        for i in range(5000):
            feed.unsubscribe(f"S{i}")
        assert feed.desired() == set()


async def test_the_hot_path_uses_the_venues_spelling(autojump_clock):
    async def never(*args: object) -> Any:
        await trio.sleep_forever()

    async with tickactors.open_feed(Tradovate(token=TOKEN), transport_factory=never) as feed:
        feed.subscribe("esz6")
        feed.subscribe("esz6")  # known now: the hot path
        assert feed.desired() == {"ESZ6"}
        feed.unsubscribe("esz6")
        assert feed.desired() == set()
        feed.subscribe("0042")
        assert feed.desired() == {"42"}
        kind = feed.dialect.kinds[0]
        assert feed.reconciler.intents == [
            (kind, ("ESZ6",), True),
            (kind, ("ESZ6",), False),
            (kind, ("42",), True),
        ]


async def test_a_closed_feed_refuses_known_symbols_too(autojump_clock):
    async with tickactors.open_feed(
        AllTick(url=URL, token=TOKEN), transport_factory=FakeNetwork()
    ) as feed:
        feed.subscribe("A")
    with pytest.raises(tickactors.FeedClosedError):
        feed.subscribe("A")
    with pytest.raises(tickactors.FeedClosedError):
        feed.unsubscribe("A")


async def test_rewatching_does_not_wake_the_detector_when_symbol_staleness_is_off(
    autojump_clock,
):
    net = FakeNetwork()
    async with tickactors.open_feed(AllTick(url=URL, token=TOKEN), transport_factory=net) as feed:
        await subscribed(net, feed, "A", "B")
        await trio.testing.wait_all_tasks_blocked()
        watch_changed = feed.reconciler.watch_changed
        feed.unsubscribe("A")
        await trio.testing.wait_all_tasks_blocked()
        assert feed.statistics()["staleness"]["watched"] == 0  # no clocks kept when off
        feed.subscribe("A")
        feed.unsubscribe("B")
        await trio.testing.wait_all_tasks_blocked()
        assert feed.statistics()["staleness"]["watched"] == 0
        assert feed.reconciler.watch_changed is watch_changed
        assert not watch_changed.is_set()


async def test_watching_a_first_symbol_wakes_the_detector_when_symbol_staleness_is_on(
    autojump_clock,
):
    net = FakeNetwork()
    venue = AllTick(url=URL, token=TOKEN)
    async with tickactors.open_feed(venue, transport_factory=net, symbol_stale_after=2) as feed:
        await net.wait_connections(1)
        await trio.testing.wait_all_tasks_blocked()
        watch_changed = feed.reconciler.watch_changed
        await subscribed(net, feed, "A")
        assert watch_changed.is_set()
        assert feed.reconciler.watch_changed is not watch_changed
