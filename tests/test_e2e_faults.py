"""End to end: a real feed against the real simulator on loopback, one test per fault.

Both run in the same Trio run under the autojump clock, so seconds of venue
time pass in milliseconds and every verdict is exact. The simulator enforces
AllTick's rules (1 request/s, 30 s heartbeat), so a clean run also proves the
feed never broke them: ``sim.stats.violations`` must stay empty.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

import tickactors
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick

TOKEN = "e2e-token-7a7a"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "EURUSD")


@asynccontextmanager
async def feed_on_sim(config: SimConfig | None = None, seed: int = 7, **feed_kw):
    feed_kw.setdefault("stale_after", 5.0)
    feed_kw.setdefault("seed", seed)
    async with open_simulator("alltick", config=config, seed=seed) as sim:
        async with tickactors.open_feed(AllTick(url=sim.url, token=TOKEN), **feed_kw) as feed:
            yield sim, feed


async def flowing(feed, symbols=SYMBOLS, timeout=30.0):
    """Wait until every symbol delivered a tick; return the time it took."""
    start = trio.current_time()
    missing = set(symbols)
    with trio.fail_after(timeout):
        while missing:
            for tick in await feed.get_batch():
                missing.discard(tick.symbol)
    return trio.current_time() - start


async def until_event(feed, name, timeout=60.0):
    with trio.fail_after(timeout):
        async for event in feed.events():
            if event.event == name:
                return event
    raise AssertionError(name)


async def drain(feed, seconds):
    """Consume ticks for ``seconds`` (0: what is queued now); return them."""
    out = []
    if seconds == 0:
        while feed.statistics()["queue"]["waiting"]:
            out.extend(await feed.get_batch())
        return out
    with trio.move_on_after(seconds):
        while True:
            out.extend(await feed.get_batch())
    return out


def assert_clean(sim):
    assert dict(sim.stats.violations) == {}, sim.stats.violations


TRANSPORTS = pytest.mark.parametrize(
    "transport",
    [tickactors.connect_batched, tickactors.connect_websocket],
    ids=["batched", "trio-websocket"],
)


@TRANSPORTS
async def test_streams_the_desired_set(autojump_clock, transport):
    async with feed_on_sim(transport_factory=transport) as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        with trio.fail_after(5):
            await feed.wait_confirmed()
        assert sim.connections[0].trade_symbols == set(SYMBOLS) or set(
            sim.connections[0].trade_symbols
        ) == set(SYMBOLS)
        assert_clean(sim)


@TRANSPORTS
async def test_silent_stall_is_detected_at_stale_after_and_repaired(autojump_clock, transport):
    async with feed_on_sim(transport_factory=transport) as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        sim.faults.stall(8.0)
        stalled_at = trio.current_time()
        stale = await until_event(feed, "stale")
        # ticks flow every ~0.1 s, so the last message came within a tick interval of the stall
        assert 5.0 <= stale.time - stalled_at <= 5.0 + 0.2
        await drain(feed, 0)  # ticks queued before the stall are not the repair
        await flowing(feed)
        with trio.fail_after(30):
            await feed.wait_confirmed()
        assert feed.statistics()["connection"]["connects"] >= 2
        assert_clean(sim)


@TRANSPORTS
async def test_drop_without_close_frame_reconnects_and_resubscribes(autojump_clock, transport):
    async with feed_on_sim(transport_factory=transport) as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        sim.faults.drop()
        await until_event(feed, "disconnected")
        await drain(feed, 0)
        await flowing(feed)
        assert sim.stats.connections_opened == 2
        live = [c for c in sim.connections if not c._closing]
        assert len(live) == 1 and set(live[0].trade_symbols) == set(SYMBOLS)
        assert_clean(sim)


async def test_accept_then_close_cannot_cause_a_reconnect_storm(autojump_clock):
    async with feed_on_sim(backoff_base=1.0, backoff_cap=30.0) as (sim, feed):
        feed.subscribe("BTCUSDT")
        await flowing(feed, ["BTCUSDT"])
        sim.faults.accept_then_close(8)
        sim.faults.drop()
        await trio.sleep(60)
        # floor 3 s + full jitter doubling: 8 bad connections take well over a minute
        assert sim.stats.connections_opened <= 1 + 8
        gaps = feed.statistics()["connection"]
        assert gaps["backoff_attempts"] >= 5  # never reset by the handshakes that succeeded
        assert_clean(sim)


@TRANSPORTS
async def test_a_server_that_never_answers_the_upgrade_hits_our_connect_deadline(
    autojump_clock, transport
):
    async with feed_on_sim(connect_timeout=4.0, transport_factory=transport) as (sim, feed):
        sim.faults.hang_upgrade(1)
        failed = await until_event(feed, "connect_failed")
        assert "within 4 s" in failed.message
        assert failed.time == 4.0
        feed.subscribe("BTCUSDT")
        await flowing(feed, ["BTCUSDT"])


async def test_one_silent_symbol_is_resubscribed_without_dropping_the_connection(
    autojump_clock,
):
    async with feed_on_sim(symbol_stale_after=2.0) as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        sent_before = sim.stats.requests_by_cmd[22004]
        sim.faults.silence_symbol("EURUSD", 5.0)
        event = await until_event(feed, "symbol_stale")
        assert event.detail["symbol"] == "EURUSD"
        await drain(feed, 0)
        await flowing(feed, ["EURUSD"])
        assert sim.stats.requests_by_cmd[22004] > sent_before  # re-subscribed
        assert feed.statistics()["connection"]["connects"] == 1  # the socket stayed
        assert_clean(sim)


async def test_ghost_data_after_unsubscribe_never_reaches_the_user(autojump_clock):
    async with feed_on_sim() as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        sim.faults.ghost(["ETHUSDT"], duration=30.0)
        feed.unsubscribe("ETHUSDT")
        ghost = await until_event(feed, "ghost")
        assert ghost.detail["symbol"] == "ETHUSDT"
        ticks = await drain(feed, 10)
        assert ticks and "ETHUSDT" not in {t.symbol for t in ticks}
        assert feed.statistics()["connection"]["ghost_ticks"] > 0
        assert_clean(sim)


async def test_lost_and_late_acks_still_converge(autojump_clock):
    async with feed_on_sim(request_timeout=3.0) as (sim, feed):
        sim.faults.lose_acks(1)
        feed.subscribe(*SYMBOLS)
        await until_event(feed, "request_timeout")
        with trio.fail_after(20):
            await feed.wait_confirmed()
        sim.faults.delay_acks(6.0, 1)
        feed.subscribe("XAUUSD")
        with trio.fail_after(30):
            await feed.wait_converged()
        assert feed.confirmed() == {*SYMBOLS, "XAUUSD"}
        assert_clean(sim)


@TRANSPORTS
async def test_a_kick_reconnects_and_restores_the_subscription(autojump_clock, transport):
    async with feed_on_sim(transport_factory=transport) as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        sim.faults.kick()
        await until_event(feed, "disconnected")
        await drain(feed, 0)
        await flowing(feed)
        assert_clean(sim)


async def test_heartbeats_keep_a_quiet_connection_alive_past_the_venues_timeout(autojump_clock):
    # No subscription at all: only our 22000 heartbeats keep the venue from dropping us.
    async with feed_on_sim(stale_after=1000) as (sim, feed):
        await trio.sleep(125)
        assert sim.stats.connections_opened == 1
        assert sim.stats.heartbeats == 12
        assert feed.statistics()["connection"]["connects"] == 1
        assert_clean(sim)


async def test_maximum_connection_age_is_survived(autojump_clock):
    async with feed_on_sim(SimConfig(max_connection_age=20.0)) as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        closed = await until_event(feed, "disconnected")
        assert closed.time == 20.0
        assert "max age" in closed.message
        await drain(feed, 0)
        await flowing(feed)
        assert sim.stats.connections_opened == 2
        assert_clean(sim)


async def test_malformed_frames_are_counted_and_the_connection_lives(autojump_clock):
    async with feed_on_sim() as (sim, feed):
        feed.subscribe(*SYMBOLS)
        await flowing(feed)
        sim.faults.malformed(8)
        await drain(feed, 1)
        await flowing(feed)
        stats = feed.statistics()["connection"]
        assert stats["decode_errors"] >= 6
        assert stats["connects"] == 1
        assert_clean(sim)


async def test_rejected_symbols_are_found_and_the_rest_keeps_flowing(autojump_clock):
    config = SimConfig(invalid_codes={"BAD1"}, unauthorized_codes={"NOPE"})
    async with feed_on_sim(config) as (sim, feed):
        feed.subscribe(*SYMBOLS, "BAD1", "NOPE", "XAUUSD")
        with trio.fail_after(60):
            await feed.wait_converged()
        assert feed.rejected() == {
            "BAD1": (600, "code invalid"),
            "NOPE": (604, "code unauthorized"),
        } or set(feed.rejected()) == {"BAD1", "NOPE"}
        assert feed.confirmed() == {*SYMBOLS, "XAUUSD"}
        await drain(feed, 0)
        await flowing(feed, [*SYMBOLS, "XAUUSD"])
        sent = sim.stats.requests_by_cmd[22004]
        await trio.sleep(30)
        assert sim.stats.requests_by_cmd[22004] == sent  # no resend loop
        assert_clean(sim)


async def test_a_thousand_subscription_changes_in_a_second(autojump_clock):
    pool = [f"SYM{i}" for i in range(20)]
    async with feed_on_sim() as (sim, feed):
        start = trio.current_time()
        for i in range(1000):
            symbol = pool[(i * 7) % len(pool)]
            if i % 3 == 2:
                feed.unsubscribe(symbol)
            else:
                feed.subscribe(symbol)
            await trio.sleep(0.001)
        assert trio.current_time() - start <= 1.0 + 1e-9
        desired = feed.desired()
        with trio.fail_after(10):
            await feed.wait_converged()
        assert feed.confirmed() == desired
        live = sim.connections[0]
        assert set(live.trade_symbols) == desired
        # coalesced: a handful of requests, never faster than one a second
        assert sim.stats.requests_by_cmd[22004] <= 4
        assert_clean(sim)
        ticks = await drain(feed, 2)
        assert {t.symbol for t in ticks} <= desired


async def test_random_faults_end_converged_with_nothing_lost(autojump_clock):
    config = SimConfig(random_faults=8.0)
    async with feed_on_sim(config, seed=11, symbol_stale_after=3.0, request_timeout=3.0) as (
        sim,
        feed,
    ):
        feed.subscribe(*SYMBOLS)
        with trio.move_on_after(120):
            while True:
                for tick in await feed.get_batch():
                    assert tick.symbol in feed.desired()
        assert sum(sim.stats.faults_injected.values()) >= 5
        sim.faults.clear()
        with trio.fail_after(60):
            await feed.wait_converged()
        await drain(feed, 0)
        await flowing(feed)
        assert feed.confirmed() == set(SYMBOLS)


async def test_an_expired_static_token_ends_the_feed_with_authentication_error(autojump_clock):
    with pytest.raises(tickactors.AuthenticationError):
        async with open_simulator("alltick", seed=2) as sim:
            async with tickactors.open_feed(
                AllTick(url=sim.url, token=TOKEN), stale_after=5
            ) as feed:
                feed.subscribe("BTCUSDT")
                await flowing(feed, ["BTCUSDT"])
                sim.faults.expire_token(TOKEN)
                await trio.sleep_forever()


async def test_a_venue_stricter_than_documented_answers_605_and_the_feed_still_converges(
    autojump_clock,
):
    # The venue wants 1.5 s between requests; we pace at 1.05 s. Its 605 answers
    # must become pauses, not a storm of retries, and must not get us kicked.
    async with feed_on_sim(SimConfig(rate_interval=1.5)) as (sim, feed):
        feed.subscribe("BTCUSDT")
        await trio.sleep(0.5)
        feed.subscribe("ETHUSDT")
        await trio.sleep(0.7)
        feed.subscribe("EURUSD")
        with trio.fail_after(30):
            await feed.wait_converged()
        assert feed.confirmed() == set(SYMBOLS)
        assert sim.stats.violations["rate"] >= 1
        assert feed._health.counts["rate_limited"] >= 1
        assert sim.stats.closes.get("rate_kick", 0) == 0
        assert feed.statistics()["connection"]["connects"] == 1
