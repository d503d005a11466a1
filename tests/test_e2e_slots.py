"""Sharding on the simulator: AllTick's per-token limits as the venue enforces them.

The simulator refuses an over-cap list with 603 (asked to: ``over_cap="reject"``), a
connection too many with 429 and close 1008, and a subscription request within 3 s of the
token's previous one (while two or more of its connections live) with 605, counting each
in ``sim.stats``. A sharded feed must never meet any of them, and one connection's failure
must leave the others alone.
"""

from __future__ import annotations

import pytest
import trio

import tickactors
from tickactors import CapacityError
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick

from .event_log import EventLog

TOKEN = "slots-e2e-token"
CODES = [f"S{i:02d}.US" for i in range(10)]


async def until_ticks(feed, symbols, timeout=30.0) -> set[str]:
    missing = set(symbols)
    with trio.fail_after(timeout):
        while missing:
            missing -= {tick.symbol for tick in await feed.get_batch()}
    return set(symbols)


async def test_caps_and_the_token_rule_hold_and_failures_stay_apart(autojump_clock):
    # premium: three connections per token, 3 s between requests; four symbols each here
    config = SimConfig(
        plan="premium",
        tokens={TOKEN},
        max_symbols=4,
        over_cap="reject",  # a breach is refused, not hidden
        record_connections=True,
    )
    async with open_simulator("alltick", config=config, seed=7) as sim:
        venue = AllTick(url=sim.url, token=TOKEN, plan="premium")
        log = EventLog()
        async with (
            tickactors.open_feed(venue, seed=7, max_symbols_per_connection=4) as feed,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(log.follow, feed)
            feed.subscribe(*CODES)
            with trio.fail_after(60):
                await feed.wait_converged()
            assert feed.confirmed() == set(CODES) and feed.rejected() == {}
            conns = {conn.id: conn for conn in sim.connections}
            assert sorted(len(conn.trade_symbols) for conn in conns.values()) == [2, 4, 4]
            await until_ticks(feed, CODES)
            with pytest.raises(CapacityError) as info:
                feed.subscribe("X1.US", "X2.US", "X3.US")  # 13 > 3 x 4
            assert len(info.value.symbols) == 1
            assert feed.desired() == set(CODES)

            # One connection fails: it alone reconnects and resubscribes.
            victim = next(c for c in conns.values() if "S00.US" in c.trade_symbols)
            theirs = set(victim.trade_symbols)
            others = [c for c in conns.values() if c is not victim]
            victim.abort("drop")
            with trio.fail_after(5):
                await log.wait_for("disconnected")
            # the others stream on while the victim's slot is away
            await until_ticks(feed, set(CODES) - theirs, timeout=2.0)
            with trio.fail_after(60):
                await feed.wait_converged()
                await until_ticks(feed, CODES)
            assert all(c in sim.connections for c in others)
            replacement = [c for c in sim.connections if c.id not in conns]
            assert [set(c.trade_symbols) for c in replacement] == [theirs]
            slots = feed.statistics()["slots"]
            assert sorted(s["disconnects"] for s in slots) == [0, 0, 1]
            nursery.cancel_scope.cancel()
    assert dict(sim.stats.violations) == {}  # no 603, no 605: the caps and the 3 s rule held
    assert sim.stats.closes["connection_limit"] == 0
    assert sim.stats.closes["rate_kick"] == 0


async def test_rotation_across_slots_uses_the_one_spare_in_turn(autojump_clock):
    config = SimConfig(
        plan="premium", tokens={TOKEN}, max_symbols=2, max_connection_age=30.0
    )  # three connections: two slots and the spare
    log = EventLog()
    async with open_simulator("alltick", config=config, seed=8) as sim:
        venue = AllTick(url=sim.url, token=TOKEN, plan="premium")
        options = dict(
            max_symbols_per_connection=2,
            max_connection_age=30.0,
            rotation_patience=4.0,
            connect_timeout=4.0,
        )
        async with (
            tickactors.open_feed(venue, seed=8, **options) as feed,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(log.follow, feed)
            feed.subscribe(*CODES[:4])  # two slots of two
            with pytest.raises(CapacityError):
                feed.subscribe(CODES[4])  # the third connection is the rotation's spare
            with trio.fail_after(120):
                await log.wait_for("rotated", 6)
                await until_ticks(feed, CODES[:4])
            nursery.cancel_scope.cancel()
    assert sim.stats.closes["connection_limit"] == 0  # never more than three at once
    assert sim.stats.closes["max_age"] == 0
    assert dict(sim.stats.violations) == {}
