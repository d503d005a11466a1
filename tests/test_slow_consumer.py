"""A consumer that sleeps 5 s per batch (issue 6): heartbeats stay on time, no false
staleness verdict, bounded memory; every drop counted and announced as a ``gap`` event.

The in-process simulator streams trades and books of two symbols under the autojump
clock; the feed's transport is wrapped to note when each heartbeat (22000) leaves.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio

import tickactors
from tickactors import BOOK, TRADES, connect_batched
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick

TOKEN = "slow-SECRET-5e5e"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
BUFFER = 40


class HeartbeatClock:
    """A transport factory around ``connect_batched`` noting each heartbeat's send time."""

    def __init__(self) -> None:
        self.sent: list[float] = []

    async def __call__(self, *args: Any) -> Any:
        inner = await connect_batched(*args)
        sent = self.sent

        class Noting:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            async def send(self, message: str) -> None:
                if '"cmd_id":22000' in message:
                    sent.append(trio.current_time())
                await inner.send(message)

        return Noting()


async def slow_consumer(policies: Any, tick_interval: float = 0.02) -> dict[str, Any]:
    config = SimConfig(tokens={TOKEN}, tick_interval=tick_interval, book_interval=0.05)
    clock = HeartbeatClock()
    waiting: list[int] = []
    gaps: list[tickactors.HealthEvent] = []
    async with open_simulator("alltick", config=config, seed=3) as sim:
        venue = AllTick(url=sim.url, token=TOKEN)
        async with tickactors.open_feed(
            venue, buffer=BUFFER, policies=policies, transport_factory=clock, seed=3
        ) as feed:

            async def note_gaps() -> None:
                async for event in feed.events():
                    if event.event == "gap":
                        gaps.append(event)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(note_gaps)
                feed.subscribe(*SYMBOLS)
                feed.subscribe(*SYMBOLS, kind=BOOK)
                started = trio.current_time()  # slow from the start
                got = 0
                while trio.current_time() - started < 60:
                    got += len(await feed.get_batch())
                    await trio.sleep(5)  # the slow consumer
                    waiting.append(feed.statistics()["queue"]["waiting"])  # at its fullest
                nursery.cancel_scope.cancel()
            converged = feed.is_converged()
            stats = feed.statistics()
    beats = clock.sent
    return {
        "got": got,
        "waiting": waiting,
        "gaps": gaps,
        "intervals": [b - a for a, b in itertools.pairwise(beats)],
        "stats": stats,
        "converged": converged,
    }


def check_never_late_never_stale(run: dict[str, Any]) -> None:
    assert len(run["intervals"]) >= 5  # a minute of 10 s heartbeats
    assert all(abs(gap - 10.0) < 0.01 for gap in run["intervals"]), run["intervals"]
    stats = run["stats"]
    assert stats["events"].get("stale", 0) == 0
    assert stats["connection"]["connects"] == 1 and stats["connection"]["disconnects"] == 0
    # The reader's pauses stop the request clocks: no answer is called late for them.
    assert stats["events"].get("request_timeout", 0) == 0
    assert stats["requests"]["timed_out"] == 0
    assert run["converged"]


async def test_blocked_trades_and_conflated_books(autojump_clock):
    # The defaults: trades block, books conflate. Blocking makes the venue buffer what we
    # do not read; at 20 trades/s a real venue (and the simulator's 4,096-frame queue)
    # holds a minute of it, at 100/s it would drop us as a slow consumer: that is what
    # "block" means, and why books conflate by default.
    run = await slow_consumer(None, tick_interval=0.1)
    check_never_late_never_stale(run)
    queue = run["stats"]["queue"]
    # Bounded: a trade lane of BUFFER (one reader batch may overshoot), one book per symbol.
    assert max(run["waiting"]) <= BUFFER + 128 + len(SYMBOLS)
    assert queue["producer_blocked"] > 0  # the reader did wait: that is the trade policy
    assert set(queue["dropped_by_symbol"]) == {f"book:{s}" for s in SYMBOLS}  # never a trade
    assert run["gaps"] and all(set(g.detail["streams"]) == {"book"} for g in run["gaps"])
    announced = sum(g.detail["dropped"] for g in run["gaps"])
    assert announced <= queue["dropped"]
    assert run["gaps"][0].detail["streams"]["book"].keys() <= set(SYMBOLS)


@pytest.mark.parametrize("policies", ["trades=drop-oldest", {TRADES: "drop-oldest"}])
async def test_dropped_trades_are_counted_by_symbol_and_announced(autojump_clock, policies):
    run = await slow_consumer(policies)
    check_never_late_never_stale(run)
    queue = run["stats"]["queue"]
    assert max(run["waiting"]) <= BUFFER + len(SYMBOLS)  # neither lane grows
    assert queue["producer_blocked"] == 0  # the reader never waited
    trades_dropped = {k: v for k, v in queue["dropped_by_symbol"].items() if k.startswith("trades")}
    assert set(trades_dropped) == {f"trades:{s}" for s in SYMBOLS}
    gap_events = run["gaps"]
    # One at once, then at most one a second: never a flood.
    times = [g.time for g in gap_events]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    announced: dict[str, int] = {}
    for gap in gap_events:
        for kind, symbols in gap.detail["streams"].items():
            for symbol, count in symbols.items():
                announced[f"{kind}:{symbol}"] = announced.get(f"{kind}:{symbol}", 0) + count
    assert gap_events[-1].detail["total"] == sum(announced.values())
    for key, count in announced.items():
        assert count <= queue["dropped_by_symbol"][key]


async def test_bad_policies_are_refused_at_once():
    with pytest.raises(ValueError, match="KIND=POLICY"):
        async with tickactors.open_feed(
            AllTick(url="ws://127.0.0.1:9/x", token=TOKEN), policies="trades=fast"
        ):
            pass
