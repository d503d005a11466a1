"""Revoked tokens: each revocation is an episode of its own; a fresh token refused ends the feed.

Found by the chaos soak: a revocation, a refresh that worked, a few short-lived
connections, then a second revocation ended the feed with AuthenticationError, because
the count of refusals "in a row" only reset after a connection stayed healthy.
"""

from __future__ import annotations

import pytest
import trio

import tickactors
from tickactors._chaos.setups import RotatingToken
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick


async def ticks_of(feed: tickactors.Feed, symbol: str, timeout: float = 30.0) -> None:
    with trio.fail_after(timeout):
        while not any(item.symbol == symbol for item in await feed.get_batch()):
            pass


async def test_two_revocations_with_short_connections_between_both_recover(autojump_clock):
    config = SimConfig(tokens={"tok-1", "tok-2", "tok-3"})
    async with open_simulator("alltick", config=config, seed=3) as sim:
        venue = AllTick(url=sim.url, token=RotatingToken(["tok-1", "tok-2", "tok-3"]))
        # healthy_after: no connection here lives long enough to count as healthy
        async with tickactors.open_feed(venue, healthy_after=1000.0, seed=3) as feed:
            feed.subscribe("BTCUSDT")
            await ticks_of(feed, "BTCUSDT")
            sim.faults.expire_token("tok-1")
            await ticks_of(feed, "BTCUSDT")  # refreshed to tok-2
            for _ in range(2):
                sim.faults.drop()
                await ticks_of(feed, "BTCUSDT")
            sim.faults.expire_token("tok-2")
            await ticks_of(feed, "BTCUSDT")  # refreshed to tok-3: a new episode
            assert feed.statistics()["events"]["auth_failed"] == 2


async def test_a_refreshed_token_refused_at_once_still_ends_the_feed(autojump_clock):
    config = SimConfig(tokens={"tok-1"})
    async with open_simulator("alltick", config=config, seed=3) as sim:
        venue = AllTick(url=sim.url, token=RotatingToken(["tok-1", "not-a-token"]))
        with pytest.raises(tickactors.AuthenticationError):
            async with tickactors.open_feed(venue, seed=3) as feed:
                feed.subscribe("BTCUSDT")
                await ticks_of(feed, "BTCUSDT")
                sim.faults.expire_token("tok-1")
                with trio.fail_after(60):
                    await trio.sleep_forever()
