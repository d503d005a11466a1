"""End to end on Tradovate: a real feed against the simulated Tradovate venue on loopback.

The simulator enforces what Tradovate does (authorize first, heartbeats, contract ids in
quotes); the feed must authorize before anything else on every connection, resolve names to
contract ids, and stream quotes under their names.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime

import pytest
import trio

import tickactors
from tickactors import BOOK, QUOTES, Quote
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import Tradovate

from .fake_venue import FakeNetwork

TOKEN = "tv-e2e-token-5b5b"


@asynccontextmanager
async def tradovate_feed(config=None, token=TOKEN, **feed_kw):
    config = config or SimConfig(tokens={TOKEN})
    feed_kw.setdefault("seed", 5)
    async with open_simulator("tradovate", config=config, seed=5) as sim:
        async with tickactors.open_feed(Tradovate(url=sim.url, token=token), **feed_kw) as feed:
            yield sim, feed


async def quotes_for(feed, symbols, timeout=20.0):
    missing = set(symbols)
    seen = []
    with trio.fail_after(timeout):
        while missing:
            for item in await feed.get_batch():
                seen.append(item)
                missing.discard(item.symbol)
    return seen


async def until_event(feed, name, timeout=60.0):
    with trio.fail_after(timeout):
        async for event in feed.events():
            if event.event == name:
                return event
    raise AssertionError(name)


def endpoints(connection):
    return [endpoint for _, endpoint, *_ in connection.requests]


async def test_authorize_first_then_quotes_under_their_names(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        feed.subscribe("ESZ6", "nqz6")  # quotes are Tradovate's main stream
        with trio.fail_after(20):
            await feed.wait_confirmed("ESZ6", "NQZ6")
        seen = await quotes_for(feed, ["ESZ6", "NQZ6"])
        assert all(isinstance(q, Quote) and q.kind is QUOTES for q in seen)
        assert {q.symbol for q in seen} <= {"ESZ6", "NQZ6"}
        assert all(q.contract_id for q in seen)
        (conn,) = sim.connections
        assert endpoints(conn)[:2] == ["authorize", "contract/find"]
        assert dict(sim.stats.violations) == {}
        await trio.sleep(10)
        assert sim.stats.heartbeats >= 3  # [] every 2.5 s on our own timer


async def test_unknown_contract_is_rejected_once_and_the_rest_flows(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        feed.subscribe("ESZ6", "NOSUCH9")
        with trio.fail_after(30):
            await feed.wait_converged()
        assert set(feed.rejected()) == {"NOSUCH9"}
        assert feed.confirmed() == {"ESZ6"}
        await quotes_for(feed, ["ESZ6"])
        sent = sum(sim.stats.requests_by_endpoint.values())
        await trio.sleep(30)
        later = sum(sim.stats.requests_by_endpoint.values())
        assert later == sent  # no resend loop (heartbeats are not requests)


async def test_every_new_connection_authorizes_before_resubscribing(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        feed.subscribe("ESZ6")
        feed.subscribe("ESZ6", kind=BOOK)
        await quotes_for(feed, ["ESZ6"])
        sim.faults.drop()
        await until_event(feed, "disconnected")
        await until_event(feed, "authorized")
        with trio.fail_after(30):
            await feed.wait_confirmed("ESZ6")
            await feed.wait_confirmed("ESZ6", kind=BOOK)
        (conn,) = sim.connections
        assert conn.requests[0][1] == "authorize"
        assert dict(sim.stats.violations) == {}


async def test_a_refused_token_ends_the_feed_with_authentication_error(autojump_clock):
    with pytest.raises(tickactors.AuthenticationError):
        async with tradovate_feed(token="not-the-token"):
            await trio.sleep_forever()


async def test_quota_shutdown_stops_for_good_and_maintenance_reconnects(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        feed.subscribe("ESZ6")
        await quotes_for(feed, ["ESZ6"])
        sim.faults.shutdown("Maintenance")
        await until_event(feed, "shutdown")
        await until_event(feed, "authorized")
        await quotes_for(feed, ["ESZ6"])
    with pytest.raises(tickactors.VenueShutdownError) as info:
        async with tradovate_feed() as (sim, feed):
            feed.subscribe("ESZ6")
            await quotes_for(feed, ["ESZ6"])
            sim.faults.shutdown("ConnectionQuotaReached")
            await trio.sleep_forever()
    assert info.value.reason == "ConnectionQuotaReached"


async def test_many_symbols_subscribe_at_the_venues_pace_not_alltick_s(autojump_clock):
    symbols = ["ESZ6", "NQZ6", "CLF7", "GCG7"]
    async with tradovate_feed() as (sim, feed):
        start = trio.current_time()
        feed.subscribe(*symbols)
        with trio.fail_after(30):
            await feed.wait_confirmed(*symbols)
        # a lookup and a subscribe per symbol, ten requests a second at most
        assert trio.current_time() - start <= len(symbols) * 2 * 0.1 + 0.5
        assert dict(sim.stats.violations) == {}


async def test_a_penalty_ticket_is_waited_out_exactly_and_resent_with_the_ticket(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        await until_event(feed, "authorized")
        beats_before = sim.stats.heartbeats
        sim.faults.p_ticket(1, p_time=60)
        start = trio.current_time()
        feed.subscribe("ESZ6")
        penalty = await until_event(feed, "penalty")
        assert penalty.detail["wait"] == 60
        with trio.fail_after(90):
            await feed.wait_confirmed("ESZ6")
        assert trio.current_time() - start >= 60
        assert sim.stats.heartbeats - beats_before >= 60 / 2.5 - 1  # never blocked
        assert sim.stats.violations.get("penalty_ignored", 0) == 0
        assert dict(sim.stats.violations) == {}
        await quotes_for(feed, ["ESZ6"])


async def test_a_captcha_stops_the_feed_with_a_typed_error(autojump_clock):
    with pytest.raises(tickactors.CaptchaRequiredError):
        async with tradovate_feed() as (sim, feed):
            await until_event(feed, "authorized")
            sim.faults.p_ticket(1, p_time=60, captcha=True)
            feed.subscribe("ESZ6")
            await trio.sleep_forever()


async def test_the_users_own_requests_are_answered_or_fail_typed(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        # made before the first connection is ready: it waits for it, then goes on it
        found = await feed.request("contract/find", "name=ESZ6")
        assert found["name"] == "ESZ6" and isinstance(found["id"], int)
        (conn,) = sim.connections
        assert endpoints(conn)[:2] == ["authorize", "contract/find"]
        with pytest.raises(tickactors.VenueRejectedError) as info:
            await feed.request("contract/find", "name=NOSUCH9")
        assert info.value.code == 404
        sim.faults.p_ticket(1, p_time=30)
        start = trio.current_time()
        assert (await feed.request("contract/find", "name=NQZ6"))["name"] == "NQZ6"
        assert trio.current_time() - start >= 30
        sim.faults.lose_acks(1)
        with pytest.raises(tickactors.RequestTimeoutError):
            await feed.request("contract/find", "name=CLF7")
        assert dict(sim.stats.violations) == {}


async def test_alltick_has_no_requests_of_the_users_own(autojump_clock):
    async with open_simulator("alltick", seed=1) as sim:
        from tickactors.venues import AllTick

        async with tickactors.open_feed(AllTick(url=sim.url, token="t")) as feed:
            start = trio.current_time()
            with pytest.raises(tickactors.VenueRejectedError):
                await feed.request("anything")  # refused at once, not after a connection
            assert trio.current_time() == start
            feed.subscribe("BTCUSDT")
            await feed.wait_confirmed()
            with pytest.raises(tickactors.VenueRejectedError):
                await feed.request("anything")


async def test_replay_initializes_its_clock_and_resumes_it_after_a_drop(autojump_clock):
    from tickactors.venues import Replay

    start = "2024-01-02T14:30:00.000Z"
    config = SimConfig(tokens={TOKEN}, replay_drop_after=60.0)
    async with open_simulator("tradovate", config=config, seed=5) as sim:
        venue = Tradovate(url=sim.replay_url, token=TOKEN, replay=Replay(start, speed=400))
        async with tickactors.open_feed(venue, seed=5) as feed:
            feed.subscribe("ESZ6")
            await quotes_for(feed, ["ESZ6"])
            clock = await until_event(feed, "clock")
            assert clock.detail["s"] == 400
            (first,) = sim.connections
            assert endpoints(first)[:2] == ["authorize", "replay/initializeClock"]
            # replay sessions drop after a minute (docs/venues.md, Tradovate, "Market replay"):
            # we resume, not restart
            await until_event(feed, "disconnected", timeout=90)
            last_clock = venue.dialect.replay_clock
            assert last_clock is not None and last_clock > start
            await until_event(feed, "setup", timeout=30)
            (second,) = sim.connections
            assert endpoints(second)[:2] == ["authorize", "replay/initializeClock"]
            resumed_at = second.replay.start_wall
            assert (
                resumed_at == datetime.fromisoformat(last_clock.replace("Z", "+00:00")).timestamp()
            )
            # about a minute at 4x real time after the start, not the start again
            assert (
                resumed_at - datetime.fromisoformat("2024-01-02T14:30:00+00:00").timestamp() > 200
            )
            await quotes_for(feed, ["ESZ6"])
            assert dict(sim.stats.violations) == {}


async def test_a_request_in_flight_fails_at_once_when_its_connection_drops(autojump_clock):
    async with tradovate_feed(request_timeout=30.0) as (sim, feed):
        await until_event(feed, "authorized")
        sim.faults.lose_acks(1)  # the request stays in flight
        failed_at = []

        async def ask():
            with pytest.raises(tickactors.ConnectionLostError):
                await feed.request("contract/find", "name=ESZ6")
            failed_at.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.sleep(2)
            dropped_at = trio.current_time()
            sim.faults.drop()
        assert failed_at and failed_at[0] - dropped_at < 1.0  # not at its 30 s deadline
        await until_event(feed, "authorized")  # the next connection
        await trio.sleep(35)  # past the deadline it had
        assert sim.stats.requests_by_endpoint["contract/find"] == 1  # never sent again


async def test_a_request_before_the_first_connection_waits_for_it_within_its_deadline(
    autojump_clock,
):
    net = FakeNetwork()
    net.refuse = 10**6  # the venue stays unreachable
    venue = Tradovate(url="ws://127.0.0.1:1/v1/websocket", token=TOKEN)
    async with tickactors.open_feed(venue, transport_factory=net, request_timeout=7.0) as feed:
        start = trio.current_time()
        with pytest.raises(tickactors.RequestTimeoutError):
            await feed.request("contract/find", "name=ESZ6")
        assert trio.current_time() - start == 7.0  # its deadline, not at once
        assert len(net.connect_times) >= 2  # the feed kept trying meanwhile
        assert feed.statistics()["events"]["request_timeout"] == 1


async def test_a_request_made_while_reconnecting_fails_at_once(autojump_clock):
    """Only the first connection is waited for: later, no ready connection fails at once."""
    async with tradovate_feed(request_timeout=30.0) as (sim, feed):
        await until_event(feed, "authorized")
        sim.faults.drop()
        await until_event(feed, "disconnected")
        start = trio.current_time()
        with pytest.raises(tickactors.ConnectionLostError):
            await feed.request("contract/find", "name=ESZ6")
        assert trio.current_time() == start


async def test_a_request_waiting_out_a_penalty_fails_at_once_when_its_connection_drops(
    autojump_clock,
):
    # Found by the chaos soak: the held resend was forgotten with its connection and the
    # caller's await never returned.
    async with tradovate_feed() as (sim, feed):
        await until_event(feed, "authorized")
        sim.faults.p_ticket(1, p_time=60)
        failed_at = []

        async def ask():
            with pytest.raises(tickactors.ConnectionLostError):
                await feed.request("contract/find", "name=ESZ6")
            failed_at.append(trio.current_time())

        with trio.fail_after(300):  # without the fix, the caller would wait forever
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await until_event(feed, "penalty")
                dropped_at = trio.current_time()
                sim.faults.drop()
        assert failed_at and failed_at[0] - dropped_at < 1.0  # not after the 60 s penalty


async def test_request_ids_never_repeat_across_three_reconnects(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        feed.subscribe("ESZ6", "NQZ6")
        ids = []
        for _ in range(3):
            await quotes_for(feed, ["ESZ6", "NQZ6"])
            ids.extend(request[2] for request in sim.connections[0].requests)
            sim.faults.drop()
            await until_event(feed, "authorized")
        await quotes_for(feed, ["ESZ6", "NQZ6"])
        ids.extend(request[2] for request in sim.connections[0].requests)
        assert len(ids) == len(set(ids)) >= 4 * 3  # authorize + 2 subscribes per connection


async def test_a_token_renewed_while_streaming_is_the_one_the_next_connection_uses(
    autojump_clock,
):
    from tickactors.venues._tradovate_auth import TradovateCredentials, TradovateTokenSource

    epoch = 1_700_000_000.0
    config = SimConfig(
        epoch=epoch, token_lifetime=120.0, tradovate_user="erin", tradovate_password="pw-9"
    )
    credentials = TradovateCredentials(
        name="erin", password="pw-9", app_id="app", app_version="1.0", cid="8", sec="s"
    )
    async with open_simulator("tradovate", config=config, seed=5) as sim:
        source = TradovateTokenSource(
            sim.rest_url, credentials, wall_clock=lambda: epoch + trio.current_time()
        )
        async with source:
            async with tickactors.open_feed(Tradovate(url=sim.url, token=source)) as feed:
                feed.subscribe("ESZ6")
                await quotes_for(feed, ["ESZ6"])
                first_token = feed._tokens.current()
                assert sim.connections[0].uses_token(first_token.reveal())
                # a 120 s token is renewed 30 s before it expires, while quotes stream
                with trio.fail_after(120):
                    async for renewed in feed.events():
                        if renewed.event == "token_refreshed" and renewed.detail["generation"] == 2:
                            break
                assert renewed.time == pytest.approx(90.0, abs=1.0)
                assert sim.stats.tokens_renewed == 1
                second_token = feed._tokens.current()
                assert second_token != first_token
                sim.faults.drop()
                await until_event(feed, "authorized")
                await quotes_for(feed, ["ESZ6"])
                assert sim.connections[0].uses_token(second_token.reveal())


async def test_a_socket_muted_when_its_token_expires_is_declared_stale_and_replaced(
    autojump_clock,
):
    from tickactors.venues._tradovate_auth import TradovateCredentials, TradovateTokenSource

    epoch = 1_700_000_000.0
    config = SimConfig(
        epoch=epoch,
        token_lifetime=120.0,
        mute_on_token_expiry=True,
        tradovate_user="erin",
        tradovate_password="pw-9",
    )
    credentials = TradovateCredentials(
        name="erin", password="pw-9", app_id="app", app_version="1.0", cid="8", sec="s"
    )
    async with open_simulator("tradovate", config=config, seed=5) as sim:
        source = TradovateTokenSource(
            sim.rest_url, credentials, wall_clock=lambda: epoch + trio.current_time()
        )
        async with source:
            venue = Tradovate(url=sim.url, token=source)
            async with tickactors.open_feed(venue, stale_after=10) as feed:
                feed.subscribe("ESZ6")
                await quotes_for(feed, ["ESZ6"])
                first = sim.connections[0]
                events = []
                with trio.fail_after(200):
                    async for event in feed.events():
                        events.append(event)
                        if event.event == "authorized" and event.time > 100:
                            break
                names = [e.event for e in events]
                # renewed 30 s before expiry; the old socket still mutes when ITS token expires
                (renewed,) = [
                    e
                    for e in events
                    if e.event == "token_refreshed" and e.detail["generation"] == 2
                ]
                assert renewed.time == pytest.approx(90.0, abs=1.0)
                assert first.muted_at == pytest.approx(120.0, abs=0.01)
                assert sim.stats.faults_injected["token_mute"] == 1
                # nothing lost silently: the mute socket is declared stale within stale_after
                (stale,) = [e for e in events if e.event == "stale"]
                assert first.muted_at < stale.time <= first.muted_at + 10.0
                assert names.index("token_refreshed") < names.index("stale")
                assert names.index("stale") < len(names) - 1  # then authorized again
                with trio.fail_after(30):
                    await feed.wait_confirmed("ESZ6")
                seen = await quotes_for(feed, ["ESZ6"])
                assert seen and trio.current_time() < 160
                (second,) = sim.connections
                assert second is not first and second.muted_at is None
                assert second.uses_token(feed._tokens.current().reveal())
                assert sim.stats.tokens_renewed == 1
                assert dict(sim.stats.violations) == {}


async def test_a_429_pauses_the_request_and_a_close_frame_reconnects(autojump_clock):
    async with tradovate_feed() as (sim, feed):
        await until_event(feed, "authorized")
        sim.faults.rate_limit_429(1)
        feed.subscribe("ESZ6")
        limited = await until_event(feed, "rate_limited")
        assert limited.detail["code"] == 429
        with trio.fail_after(10):
            await feed.wait_confirmed("ESZ6")
        sim.faults.kick()  # c[3000, ...] then the close frame
        closing = await until_event(feed, "venue_closing")
        assert closing.detail["code"] == 3000
        await until_event(feed, "authorized")
        await quotes_for(feed, ["ESZ6"])
        assert dict(sim.stats.violations) == {}


@asynccontextmanager
async def recording(feed):
    """Every health event of the feed, in a list, while the block runs."""
    events = []

    async def record():
        async for event in feed.events():
            events.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(record)
        yield events
        nursery.cancel_scope.cancel()


async def test_a_close_frame_on_an_open_socket_ends_the_session_at_once(autojump_clock):
    """``c[...]`` with the socket left open: the feed closes it and reconnects within the
    backoff's first step, not after ``stale_after``; a request in flight fails at once and
    is never sent again."""
    async with tradovate_feed(request_timeout=30.0, stale_after=10.0) as (sim, feed):
        async with recording(feed) as events:
            feed.subscribe("ESZ6")
            await quotes_for(feed, ["ESZ6"])
            await trio.sleep(12)  # healthy with data: the backoff starts from its first step
            (first,) = sim.connections
            sim.faults.lose_acks(1)  # the next request stays in flight
            failed_at = []

            async def ask():
                with pytest.raises(tickactors.ConnectionLostError):
                    await feed.request("contract/find", "name=NQZ6")
                failed_at.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await trio.sleep(1)
                closed_at = trio.current_time()
                sim.faults.close_frame_keep_open(3000, "Session closed")
            assert failed_at[0] - closed_at < 0.1  # at once, not at its 30 s deadline
            # a quote received after the c[...] came on the new connection
            first_data_at = None
            with trio.fail_after(30):
                while first_data_at is None:
                    later_quotes = [q for q in await feed.get_batch() if q.received_at > closed_at]
                    if later_quotes:
                        first_data_at = later_quotes[0].received_at
            await trio.sleep(35)  # past the request's deadline and several stale_after
        names = [e.event for e in events]
        (closing,) = [e for e in events if e.event == "venue_closing"]
        assert (closing.detail["code"], closing.message) == (3000, "Session closed")
        (gone,) = [e for e in events if e.event == "disconnected"]
        assert gone.detail["reason"] == "VenueClosed" and gone.connection == first.id
        assert gone.time - closed_at < 0.1  # closed at once (the polite close answered)
        (again,) = [e for e in events if e.event == "reconnecting"]
        assert again.detail["attempt"] == 1 and again.detail["delay"] <= 2.0  # floor 1 + 1
        assert "stale" not in names
        later = [e.event for e in events if e.time >= closed_at]
        assert later.count("connecting") == later.count("authorized") == 1  # one new connection
        assert first_data_at - closed_at < 10.0  # well before stale_after
        (second,) = sim.connections
        assert second is not first and first.closed_reason == "close_frame_keep_open"
        assert endpoints(second)[0] == "authorize" and "md/subscribeQuote" in endpoints(second)
        asked = [r for c in (first, second) for r in c.requests if r[3] == "name=NQZ6"]
        assert len(asked) == 1  # seen by the venue exactly once, never sent again
        print(f"c[...] -> first data on the new connection: {first_data_at - closed_at:.3f} s")
        assert dict(sim.stats.violations) == {}


async def test_a_shutdown_notice_then_its_close_frame_open_one_new_connection(autojump_clock):
    """Maintenance: the notice starts a rotation, the ``c[...]`` right behind it ends the old
    session at once; the two do not fight: exactly one new connection, no stale wait."""
    async with tradovate_feed(stale_after=10.0) as (sim, feed):
        async with recording(feed) as events:
            feed.subscribe("ESZ6")
            await quotes_for(feed, ["ESZ6"])
            await trio.sleep(12)
            (first,) = sim.connections
            closed_at = trio.current_time()
            sim.faults.shutdown("Maintenance")  # the event, c[3000,...], the close
            await trio.sleep(30)
            seen = await quotes_for(feed, ["ESZ6"])
            assert any(q.received_at > closed_at for q in seen)
        later = [e for e in events if e.time >= closed_at]
        names = [e.event for e in later]
        assert names.count("connecting") == names.count("authorized") == 1
        assert "stale" not in names and "rotation_failed" not in names
        (gone,) = [e for e in later if e.event == "disconnected"]
        assert gone.connection == first.id and gone.time - closed_at < 0.1
        # the rotation took over (no backoff) or, had the old session ended before the
        # rotation began, the supervisor reconnected: one or the other, never both
        assert ("rotated" in names) != ("reconnecting" in names)
        (second,) = sim.connections
        assert second is not first and second.quote_symbols == ("ESZ6",)
        assert dict(sim.stats.violations) == {}


async def test_a_request_awaited_outside_the_feed_ends_when_the_feed_closes(autojump_clock):
    """Nothing waits forever: a ``feed.request`` that another task still awaits when the
    feed closes (the venue never answered) raises FeedClosedError at once, instead of
    waiting for an answer that can no longer come."""
    ended: list[tuple[float, BaseException]] = []

    async def ask(feed: tickactors.Feed) -> None:
        try:
            await feed.request("contract/find", "name=NQZ6")
        except tickactors.FeedError as exc:
            ended.append((trio.current_time(), exc))

    async with open_simulator("tradovate", config=SimConfig(tokens={TOKEN}), seed=5) as sim:
        with trio.fail_after(60):  # what this guards against is a wait without end
            async with trio.open_nursery() as nursery:
                venue = Tradovate(url=sim.url, token=TOKEN)
                async with tickactors.open_feed(venue, request_timeout=600) as feed:
                    await feed.request("contract/find", "name=ESZ6")  # connected, answering
                    sim.faults.drop_requests(5)  # from now on the venue never answers
                    nursery.start_soon(ask, feed)
                    await trio.sleep(5)
                    assert ended == []  # still waiting, within its 600 s
                closed_at = trio.current_time()
    ((at, exc),) = ended
    assert isinstance(exc, tickactors.FeedClosedError) and at - closed_at < 0.01


async def test_a_captcha_on_a_request_awaited_outside_the_feed_reaches_its_caller(autojump_clock):
    """The request the venue answered with a captcha ticket raises CaptchaRequiredError in
    its caller, as the feed stops with the same error: it no longer waits for ever (it was
    out of the request table by then, so the feed's closing did not end it)."""
    ended: list[BaseException] = []

    async def ask(feed: tickactors.Feed) -> None:
        try:
            await feed.request("contract/find", "name=NQZ6")
        except tickactors.FeedError as exc:
            ended.append(exc)

    async with open_simulator("tradovate", config=SimConfig(tokens={TOKEN}), seed=5) as sim:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                venue = Tradovate(url=sim.url, token=TOKEN)
                with pytest.raises(tickactors.CaptchaRequiredError):
                    async with tickactors.open_feed(venue) as feed:
                        await feed.request("contract/find", "name=ESZ6")
                        sim.faults.p_ticket(1, p_time=60, captcha=True)
                        nursery.start_soon(ask, feed)
                        await trio.sleep_forever()
    ((exc,),) = [ended]
    assert isinstance(exc, tickactors.CaptchaRequiredError) and "contract/find" in str(exc)
