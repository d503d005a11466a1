"""The actors around the core, against a fake venue, under the autojump clock.

Times are exact: the mock clock only moves when every task is blocked.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import tickactors
from tickactors import BOOK, TRADES, AuthenticationError, FeedError, IssuedToken, Secret
from tickactors.venues import AllTick

from .fake_venue import FakeNetwork

TOKEN = "tok-SECRET-a1b2c3"
URL = "ws://127.0.0.1:9/quote-b-ws-api"


def venue(**kw):
    return AllTick(url=URL, token=kw.pop("token", TOKEN), **kw)


async def subscribed(net, feed, *symbols):
    """Subscribe on the first connection and let the fake venue accept it."""
    conn = await net.wait_connections(1)
    feed.subscribe(*symbols)
    await conn.wait_sent(1)
    conn.answer(conn.requests(22004)[0])
    return conn


async def events_until(feed, name):
    async for event in feed.events():
        if event.event == name:
            return event
    raise AssertionError(f"no {name} event")


async def test_heartbeat_every_10_seconds_on_its_own_timer(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        t0 = net.connect_times[0]
        await trio.sleep_until(t0 + 34)
        beats = [t - t0 for t, m in conn.sent if m["cmd_id"] == 22000]
        assert beats == [10.0, 20.0, 30.0]
        # the heartbeat's request ids are unique and come from the one request table
        ids = [m["seq_id"] for m in conn.requests(22000)]
        assert len(set(ids)) == 3
        assert feed.statistics()["requests"]["timed_out"] == 2  # nobody answered: 15 s and 25 s


async def test_silent_connection_is_stale_after_exactly_stale_after(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=5, seed=1) as feed:
        first = await net.wait_connections(1)
        t0 = net.connect_times[0]
        first.trade("A")  # a message at t0 resets nothing: the clock started at t0
        await trio.sleep(2)
        first.trade("A")
        stale = await events_until(feed, "stale")
        assert stale.time == t0 + 2 + 5
        assert stale.detail["silent_for"] == 5.0
        await net.wait_connections(2)
        assert first.closed and first.closed_politely is False
        delay = net.connect_times[1] - stale.time
        assert 3.0 <= delay <= 3.0 + 1.0  # AllTick's 3 s floor plus full jitter of the first step


async def test_subscribe_is_replace_all_and_paced_one_request_per_second(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("A", "B")
        await conn.wait_sent(1)
        (first,) = conn.requests(22004)
        assert [e["code"] for e in first["data"]["symbol_list"]] == ["A", "B"]
        t_first = conn.sent[0][0]
        conn.answer(first)
        with trio.fail_after(1):
            await feed.wait_confirmed("A", "B")
        feed.subscribe("C")
        feed.unsubscribe("A")
        feed.subscribe("D")
        await conn.wait_sent(2)
        t_second, second = conn.sent[1]
        assert [e["code"] for e in second["data"]["symbol_list"]] == ["B", "C", "D"]
        assert t_second - t_first >= 1.05
        conn.answer(second)
        with trio.fail_after(1):
            await feed.wait_converged()
        assert feed.confirmed() == {"B", "C", "D"}


async def test_ticks_reach_the_user_in_batches_and_ghosts_never_do(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await subscribed(net, feed, "A")
        for seq in range(5):
            conn.trade("A", seq=seq)
            conn.trade("GHOST", seq=seq)
        batch = await feed.get_batch()
        assert [t.seq for t in batch] == [0, 1, 2, 3, 4]
        assert {t.symbol for t in batch} == {"A"}
        assert feed.statistics()["connection"]["ghost_ticks"] == 5
        # after an unsubscribe, even ticks already queued are not delivered
        conn.trade("A", seq=9)
        conn.trade("B", seq=1)
        await trio.testing.wait_all_tasks_blocked()
        feed.unsubscribe("A")
        feed.subscribe("B")
        conn.trade("B", seq=2)
        batch = await feed.get_batch()
        assert [(t.symbol, t.seq) for t in batch] == [("B", 2)]


async def test_lost_connection_resubscribes_the_whole_set_and_fails_requests_at_once(
    autojump_clock,
):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=1000, request_timeout=30
    ) as feed:
        first = await net.wait_connections(1)
        feed.subscribe("A", "B")
        feed.subscribe("A", kind=BOOK)
        await first.wait_sent(2)
        first.answer(first.requests(22004)[0])
        # the book request stays unanswered; the connection dies 5 s later
        await trio.sleep(5)
        lost_at = trio.current_time()
        first.close_by_peer()
        second = await net.wait_connections(2)
        stats = feed.statistics()["requests"]
        assert stats["connection_lost"] == 1
        assert stats["timed_out"] == 0
        assert trio.current_time() - lost_at < 30
        await second.wait_sent(2)
        sent = {m["cmd_id"]: [e["code"] for e in m["data"]["symbol_list"]] for _, m in second.sent}
        assert sent == {22004: ["A", "B"], 22002: ["A"]}
        ids_first = {m["seq_id"] for _, m in first.sent}
        ids_second = {m["seq_id"] for _, m in second.sent}
        assert not ids_first & ids_second  # request ids unique across reconnects


async def test_bad_symbols_raise_at_once_and_nothing_reaches_the_wire(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        with pytest.raises(tickactors.InvalidSymbolError):
            feed.subscribe("GOOD", "b a d")
        with pytest.raises(tickactors.InvalidSymbolError):
            feed.subscribe("")
        feed.subscribe()  # nothing at all: nothing to do
        await trio.sleep(5)
        assert conn.requests(22004) == []
        assert feed.desired() == frozenset()


async def test_malformed_frames_are_counted_and_the_connection_lives(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await subscribed(net, feed, "A")
        conn.push("{not json")
        conn.push(b"\xff\xfe")
        conn.push({"cmd_id": 22998, "data": {"code": "A", "price": "-3"}})
        conn.trade("A", seq=7)
        batch = await feed.get_batch()
        assert [t.seq for t in batch] == [7]
        stats = feed.statistics()
        assert stats["connection"]["decode_errors"] == 3
        assert stats["connection"]["connects"] == 1


class RotatingTokens:
    def __init__(self) -> None:
        self.issued = 0

    async def fetch(self) -> IssuedToken:
        self.issued += 1
        return IssuedToken(Secret(f"tok-{self.issued}"), lifetime=120.0)


async def test_each_new_connection_uses_the_token_current_at_that_moment(autojump_clock):
    net = FakeNetwork()
    source = RotatingTokens()
    async with tickactors.open_feed(
        AllTick(url=URL, token=source), transport_factory=net, stale_after=1000
    ):
        first = await net.wait_connections(1)
        assert first.url.endswith("token=tok-1")
        # a 120 s token is renewed 30 s before it expires
        await trio.sleep(95)
        assert source.issued == 2
        first.close_by_peer()
        second = await net.wait_connections(2)
        assert second.url.endswith("token=tok-2")


async def test_refused_token_is_refreshed_once_then_the_feed_fails(autojump_clock):
    net = FakeNetwork()
    source = RotatingTokens()

    async def refuse_every_connection():
        for n in (1, 2):
            conn = await net.wait_connections(n)
            conn.push(
                {
                    "ret": 401,
                    "msg": "token invalid",
                    "cmd_id": 0,
                    "seq_id": 0,
                    "trace": "",
                    "data": {},
                }
            )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(refuse_every_connection)
        with pytest.raises(AuthenticationError):
            async with tickactors.open_feed(
                AllTick(url=URL, token=source), transport_factory=net, stale_after=1000
            ):
                await trio.sleep_forever()
    assert source.issued == 2
    assert net.transports[1].url.endswith("token=tok-2")


async def test_an_actor_bug_reaches_the_user_as_one_feed_error(autojump_clock):
    async def broken_factory(*args):
        raise KeyError("bug")

    with pytest.raises(FeedError) as info:
        async with tickactors.open_feed(venue(), transport_factory=broken_factory):
            await trio.sleep_forever()
    assert not isinstance(info.value, BaseExceptionGroup)
    assert isinstance(info.value.__cause__, KeyError)


async def test_the_users_own_exception_comes_back_unchanged(autojump_clock):
    net = FakeNetwork()

    class Mine(Exception):
        pass

    with pytest.raises(Mine):
        async with tickactors.open_feed(venue(), transport_factory=net):
            raise Mine


async def test_refused_connects_back_off_with_growing_delays(autojump_clock):
    net = FakeNetwork()
    net.refuse = 6
    async with tickactors.open_feed(
        venue(), transport_factory=net, seed=3, backoff_base=1.0, backoff_cap=60
    ):
        await net.wait_connections(1)
    gaps = [b - a for a, b in zip(net.connect_times, net.connect_times[1:], strict=False)]
    assert len(gaps) == 6
    assert all(gap >= 3.0 for gap in gaps)  # AllTick's reconnect floor
    assert all(gap <= 3.0 + min(60, 2**n) for n, gap in enumerate(gaps))


async def test_secrets_never_reach_events_or_statistics(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=3) as feed:
        await net.wait_connections(2)
        text = repr(feed.statistics()) + repr(feed.venue)
        feed._health.close()
        async for event in feed.events():
            text += repr(event) + repr(event.to_dict())
    assert TOKEN not in text
    assert "token=***" in text


async def test_trades_and_books_are_separate_sets(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        feed.subscribe("A")
        feed.subscribe("B", kind=BOOK)
        assert feed.desired(TRADES) == {"A"}
        assert feed.desired(BOOK) == {"B"}


async def test_rate_limited_answer_is_retried_after_a_pause_not_at_once(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("A")
        await conn.wait_sent(1)
        first = conn.requests(22004)[0]
        conn.answer(first, ret=605, msg="too many requests")
        await conn.wait_sent(2)
        retry_at, retry = conn.sent[1]
        assert retry["cmd_id"] == 22004 and retry["seq_id"] != first["seq_id"]
        assert retry_at - conn.sent[0][0] >= 1.0
        conn.answer(retry)
        with trio.fail_after(1):
            await feed.wait_confirmed("A")
        assert feed._health.counts["rate_limited"] == 1


async def test_kick_606_then_close_reconnects_and_resubscribes(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        first = await net.wait_connections(1)
        feed.subscribe("A", "B")
        await first.wait_sent(1)
        first.answer(first.requests(22004)[0], ret=606, msg="closing")
        first.close_by_peer(1008)
        second = await net.wait_connections(2)
        await second.wait_sent(1)
        second.answer(second.requests(22004)[0])
        with trio.fail_after(1):
            await feed.wait_confirmed("A", "B")


async def test_venue_rejection_reaches_wait_confirmed_as_a_typed_error(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("NOPE")
        await conn.wait_sent(1)
        conn.answer(conn.requests(22004)[0], ret=604, msg="code unauthorized")
        with pytest.raises(tickactors.VenueRejectedError) as info:
            with trio.fail_after(1):
                await feed.wait_confirmed("NOPE")
        assert info.value.code == 604
        assert feed.rejected() == {"NOPE": (604, "code unauthorized")}
        # no resend loop: nothing more goes out for NOPE
        await trio.sleep(30)
        assert len(conn.requests(22004)) == 1


async def test_slow_consumer_does_not_cause_a_false_stale_verdict(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=5, buffer=10
    ) as feed:
        conn = await subscribed(net, feed, "A")

        async def venue_streams():
            for seq in range(60):
                conn.trade("A", seq=seq)
                await trio.sleep(0.5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(venue_streams)
            await trio.sleep(20)  # nobody consumes: the reader waits for room
            assert feed.statistics()["queue"]["producer_blocked"] >= 1
            assert feed._health.counts.get("stale", 0) == 0
            got: list[int] = []
            while len(got) < 60:
                got.extend(t.seq for t in await feed.get_batch())
        assert got == list(range(60))  # nothing lost, nothing reordered
        assert feed._health.counts.get("stale", 0) == 0
        assert feed.statistics()["connection"]["connects"] == 1


async def test_symbols_over_the_plan_cap_are_refused_up_front(autojump_clock):
    net = FakeNetwork()
    plan, _ = AllTick.PLANS["free"]
    async with tickactors.open_feed(
        venue(plan="free"), transport_factory=net, stale_after=1000
    ) as feed:
        conn = await net.wait_connections(1)
        symbols = [f"S{i}" for i in range(plan + 2)]
        with pytest.raises(tickactors.CapacityError) as refused:
            feed.subscribe(*symbols)
        assert len(refused.value.symbols) == 2 and feed.desired() == set()
        feed.subscribe(*symbols[:plan])
        await conn.wait_sent(1)
        (request,) = conn.requests(22004)
        assert {e["code"] for e in request["data"]["symbol_list"]} == set(symbols[:plan])


async def test_an_error_group_from_the_users_own_nursery_comes_back_unchanged(autojump_clock):
    net = FakeNetwork()

    async def fails():
        raise ValueError("mine")

    with pytest.raises(BaseExceptionGroup) as info:
        async with tickactors.open_feed(venue(), transport_factory=net):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fails)
    assert not isinstance(info.value, FeedError)
    assert [type(e) for e in info.value.exceptions] == [ValueError]


async def test_a_failing_token_source_does_not_block_open_feed(autojump_clock):
    class Broken:
        async def fetch(self):
            raise OSError("auth server down")

    net = FakeNetwork()
    with trio.fail_after(1):
        async with tickactors.open_feed(
            AllTick(url=URL, token=Broken()), transport_factory=net
        ) as feed:
            failed = await events_until(feed, "token_failed")
            assert "auth server down" in failed.message
            assert net.transports == []  # no connection without a token


async def test_one_silent_symbol_is_resubscribed_after_exactly_symbol_stale_after(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=30, symbol_stale_after=2
    ) as feed:
        conn = await subscribed(net, feed, "A", "B")
        await feed.wait_confirmed("A", "B")
        confirmed_at = trio.current_time()

        async def only_a_flows():
            while True:
                conn.trade("A")
                await trio.sleep(0.25)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(only_a_flows)
            event = await events_until(feed, "symbol_stale")
            assert event.detail["symbol"] == "B"
            assert event.time == confirmed_at + 2
            await conn.wait_sent(2)
            assert conn.sent[1][1]["cmd_id"] == 22004  # the set again, B included
            nursery.cancel_scope.cancel()
        assert feed.statistics()["connection"]["connects"] == 1


async def test_a_silent_connection_is_not_mistaken_for_silent_symbols(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=5, symbol_stale_after=2
    ) as feed:
        conn = await subscribed(net, feed, "A", "B")
        await feed.wait_confirmed("A", "B")
        for seq in range(20):  # both flow, interleaved, then everything stops (a stall)
            conn.trade("A" if seq % 2 else "B", seq=seq)
            await trio.sleep(0.1)
        stale = await events_until(feed, "stale")
        assert feed._health.counts.get("symbol_stale", 0) == 0
        assert len(conn.requests(22004)) == 1  # no resubscribe spent on a dead socket
        assert stale.detail["silent_for"] == 5.0


def test_heartbeats_keep_their_grid_when_one_wakes_late() -> None:
    """A late wake-up is not carried into the next interval (issue 5: heartbeat jitter)."""
    from types import SimpleNamespace

    from tickactors._actors.market_delivery import SessionCounters
    from tickactors._actors.session import Session

    clock = trio.testing.MockClock(rate=0)
    sent: list[float] = []
    counters = SessionCounters()

    async def main() -> None:
        tracker = SimpleNamespace(send_nowait=lambda _: sent.append(trio.current_time()))
        stub = SimpleNamespace(
            _dialect=SimpleNamespace(heartbeat_interval=2.0),
            _tracker=tracker,
            _counters=counters,
            connection=1,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(Session._heartbeat, stub)
            await trio.testing.wait_all_tasks_blocked()
            clock.jump(2.3)  # the first wake-up comes 0.3 s late
            await trio.testing.wait_all_tasks_blocked()
            clock.jump(1.7)  # t = 4.0: the second is due on the grid, not at 4.3
            await trio.testing.wait_all_tasks_blocked()
            clock.jump(7.0)  # a long pause: one heartbeat, then the next a full interval on
            await trio.testing.wait_all_tasks_blocked()
            clock.jump(2.0)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)
    assert sent == [2.3, 4.0, 11.0, 13.0]
    # how late each woke against its grid (tickactors_heartbeat_lateness_seconds):
    # 0.3, on time, 5 s (due at 6), on time
    lateness = counters.heartbeat_lateness
    assert lateness.count == 4 and lateness.sum == pytest.approx(5.3)
    assert lateness.counts[0] == 2 and lateness.counts[-1] == 1
