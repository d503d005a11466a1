"""Make-before-break on the simulator: ten rotations, every trade the simulator sent, once.

The simulator cuts every connection at ``max_connection_age`` (close 1000 "max age") and
holds AllTick's premium plan: three connections per token, 3 s between subscription
requests across them. The feed rotates each connection before that age; the simulator's
trade ledger (``sim.stats.trades_generated``: every trade generated, by code) and its
per-connection ledgers (``trades_by_connection``) are the count the user's ticks must
match: no gap, no duplicate, over ten rotations. Under the autojump clock, about two
minutes of venue time.
"""

from __future__ import annotations

import itertools

import trio

import tickactors
from tickactors.sim import SeqRun, SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

from .event_log import EventLog

TOKEN = "rotation-e2e-token"
CODES = ("BTCUSDT", "ETHUSDT", "700.HK")
AGE = 20.0


async def test_ten_rotations_lose_nothing_and_repeat_nothing(autojump_clock):
    config = SimConfig(
        plan="premium",
        tokens={TOKEN},
        max_connection_age=AGE,
        record_connections=True,
        wire="varied",
    )
    delivered: dict[str, list[int]] = {code: [] for code in CODES}
    log = EventLog()
    async with open_simulator("alltick", config=config, seed=11) as sim:
        venue = AllTick(url=sim.url, token=TOKEN, plan="premium")
        options = dict(max_connection_age=AGE, rotation_patience=4.0, connect_timeout=4.0)
        async with (
            tickactors.open_feed(venue, seed=11, **options) as feed,
            trio.open_nursery() as nursery,
        ):

            async def consume() -> None:
                async for tick in feed.ticks():
                    assert tick.seq is not None
                    delivered[tick.symbol].append(tick.seq)

            nursery.start_soon(consume)
            nursery.start_soon(log.follow, feed)
            feed.subscribe(*CODES)
            with trio.fail_after(10 * AGE):
                await log.wait_for("rotated", 10)
            # The end of the count: no more trades (the market goes quiet for these codes),
            # then everything in flight reaches the user.
            for code in CODES:
                sim.faults.silence_symbol(code)
            await trio.sleep(2.0)
            stats = feed.statistics()
            nursery.cancel_scope.cancel()
    for code in CODES:
        seqs = delivered[code]
        assert seqs == list(range(seqs[0], seqs[-1] + 1))  # no gap, no duplicate, in order
        assert sim.stats.trades_generated[code] == SeqRun(seqs[0], seqs[-1], len(seqs))
    ids = sorted(sim.stats.trades_by_connection)
    assert len(ids) >= 11
    for old, new in itertools.pairwise(ids):
        for code in CODES:
            # each replacement started streaming before its predecessor stopped
            assert sim.stats.trades_by_connection[new][code].first <= (
                sim.stats.trades_by_connection[old][code].last
            )
    assert sim.stats.closes["max_age"] == 0  # every connection went before the venue cut it
    assert sim.stats.closes["connection_limit"] == 0
    assert dict(sim.stats.violations) == {}  # the token's 3 s rule held through the overlaps
    assert stats["connection"]["rotations"] >= 10
    assert stats["connection"]["backoff_attempts"] == 0
    assert sum(event.detail["duplicates"] for event in log.named("rotated")) > 0  # real overlap
    assert stats["events"].get("handover_incomplete", 0) == 0


async def test_a_shutdown_notice_takes_the_rotation_path(autojump_clock):
    """Tradovate announces a Maintenance shutdown, then closes: the replacement is already
    connecting, and takes over without a backoff."""
    token = "tv-rotation-token"
    config = SimConfig(tokens={token})
    log = EventLog()
    async with open_simulator("tradovate", config=config, seed=5) as sim:
        venue = Tradovate(url=sim.url, token=token)
        async with tickactors.open_feed(venue, seed=5) as feed, trio.open_nursery() as nursery:
            nursery.start_soon(log.follow, feed)
            feed.subscribe("ESZ6")
            with trio.fail_after(20):
                await feed.wait_confirmed("ESZ6")
            sim.faults.shutdown("Maintenance")
            with trio.fail_after(20):
                await log.wait_for("rotated")
                await feed.wait_confirmed("ESZ6")
                batch = await feed.get_batch()
            assert {q.symbol for q in batch} == {"ESZ6"}
            nursery.cancel_scope.cancel()
    assert "reconnecting" not in log.names()  # no backoff: the rotation path
    (shutdown,) = log.named("shutdown")
    (rotating,) = log.named("rotating")
    assert rotating.detail["reason"] == "shutdown" and rotating.time == shutdown.time
    # the venue closed the old connection before the replacement had data: the event says
    # so, and does not claim that the rotation's patience (30 s) ran out
    (incomplete,) = log.named("handover_incomplete")
    assert incomplete.detail["reason"] == "old_closed"
    assert incomplete.detail["waited"] < 1.0
    assert "within" not in incomplete.message and "Maintenance" in incomplete.message
    assert sim.stats.connections_opened == 2
