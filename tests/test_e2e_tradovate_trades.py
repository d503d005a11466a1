"""Tradovate trades end to end: a real feed subscribes Tick charts on the simulated venue,
and every trade of the simulator's ledger reaches the user once, across forced
reconnects and a rotation; cancelled charts stop; ghosts are counted, never delivered.

The measurement (``test_ten_forced_reconnects_lose_and_repeat_no_trade``) drops every
connection ten times while two contracts trade, then compares what the user got with
the simulator's ledger (``sim.tradovate.ticks.history``): no hole, no duplicate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import orjson
import trio

import tickactors
from tickactors import TRADES, Tick
from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_probe import open_tradovate_probe
from tickactors.venues import Tradovate

TOKEN = "tv-trades-token-6c6c"
EPOCH = 1_800_000_000.0
CONFIG = SimConfig(tokens={TOKEN}, tick_interval=0.05, epoch=EPOCH, error_text="plain")


@asynccontextmanager
async def trades_feed(**feed_kw: Any) -> AsyncIterator[tuple[Any, tickactors.Feed]]:
    feed_kw.setdefault("seed", 5)
    async with open_simulator("tradovate", config=CONFIG, seed=5) as sim:
        async with tickactors.open_feed(Tradovate(url=sim.url, token=TOKEN), **feed_kw) as feed:
            yield sim, feed


async def collect(feed: tickactors.Feed, out: list[Tick], seconds: float) -> None:
    with trio.move_on_after(seconds):
        async for tick in feed.ticks(kind=TRADES):
            out.append(tick)


def ledger_ids(sim: Any, symbol: str) -> dict[int, Any]:
    contract = sim.tradovate.contracts.find(symbol).id
    return {t.id: t for t in sim.tradovate.ticks.history(contract)}


def check_against_ledger(sim: Any, got: list[Tick], symbol: str) -> tuple[int, int, int]:
    """(delivered, holes, duplicates) of ``symbol``; every tick equals its ledger entry."""
    ledger = ledger_ids(sim, symbol)
    seqs = [t.seq for t in got if t.symbol == symbol]
    assert seqs, f"no trade of {symbol}"
    for tick in (t for t in got if t.symbol == symbol):
        entry = ledger[tick.seq]
        assert tick.price == Decimal(entry.price) / 100
        assert tick.volume == entry.size and tick.exchange_time == entry.ms / 1000
        assert tick.fields["bid"] == Decimal(entry.bid) / 100
        assert tick.fields["ask"] == Decimal(entry.ask) / 100
    duplicates = len(seqs) - len(set(seqs))
    span = range(min(seqs), max(seqs) + 1)
    holes = sum(1 for i in span if i not in set(seqs))
    return len(set(seqs)), holes, duplicates


async def test_trades_from_tick_charts_match_the_ledger_and_stop_when_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trades_feed() as (sim, feed):
        feed.subscribe("ESZ6", "NQZ6", "NOSUCH9", kind=TRADES)
        with trio.fail_after(20):
            await feed.wait_converged()
        assert feed.confirmed(TRADES) == {"ESZ6", "NQZ6"}
        assert set(feed.rejected(TRADES)) == {"NOSUCH9"}  # contract/find found none
        assert feed.desired() == set() and feed.desired(TRADES) == {"ESZ6", "NQZ6", "NOSUCH9"}
        got: list[Tick] = []
        await collect(feed, got, 3.0)
        (conn,) = sim.connections
        requests = [endpoint for _, endpoint, *_ in conn.requests]
        assert requests[:2] == ["authorize", "contract/find"]
        assert requests.count("md/getChart") == 2 and requests.count("contract/find") == 3
        for symbol in ("ESZ6", "NQZ6"):
            delivered, holes, duplicates = check_against_ledger(sim, got, symbol)
            assert (holes, duplicates) == (0, 0) and delivered > 20
        assert all(t.kind is TRADES for t in got)
        bodies = [orjson.loads(body) for _, e, _, _, body in conn.requests if e == "md/getChart"]
        assert [b["timeRange"] for b in bodies] == [{"asMuchAsElements": 1}] * 2
        assert bodies[0]["chartDescription"]["underlyingType"] == "Tick"
        feed.unsubscribe("NQZ6", kind=TRADES)
        with trio.fail_after(20):
            await feed.wait_converged()
        assert conn.subs.tick_charts and len(conn.subs.tick_charts) == 1
        cancels = [body for _, e, _, _, body in conn.requests if e == "md/cancelChart"]
        assert len(cancels) == 1 and orjson.loads(cancels[0])["subscriptionId"] > 0
        after: list[Tick] = []
        await collect(feed, after, 2.0)
        assert {t.symbol for t in after} == {"ESZ6"}
        stats = feed.statistics()["dialect"]
        assert stats["trade_charts"] == 1 and stats["trade_charts_cancelled"] == 1
        assert stats["trade_gaps"] == 0
        assert dict(sim.stats.violations) == {}


async def test_ghost_packets_of_a_chart_the_feed_did_not_open_are_counted_not_delivered(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trades_feed() as (_, feed):
        feed.subscribe("ESZ6", kind=TRADES)
        with trio.fail_after(20):
            await feed.wait_confirmed("ESZ6", kind=TRADES)
        # a chart of the user's own, through the feed's connection: not the feed's trades
        chart = {
            "symbol": "NQZ6",
            "chartDescription": {"underlyingType": "Tick", "elementSize": 1},
            "timeRange": {"asMuchAsElements": 5},
        }
        answered = await feed.request("md/getChart", body=chart)
        assert "historicalId" in answered
        got: list[Tick] = []
        await collect(feed, got, 2.0)
        assert {t.symbol for t in got} == {"ESZ6"}
        stats = feed.statistics()
        assert stats["dialect"]["chart_ghosts"] > 10
        assert stats["dialect"]["trade_charts"] == 1


async def test_a_rotation_hands_trades_over_without_a_hole_or_a_duplicate(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trades_feed(max_connection_age=60.0, rotation_patience=10.0) as (sim, feed):
        feed.subscribe("ESZ6", kind=TRADES)
        got: list[Tick] = []
        rotated = trio.Event()

        async def watch() -> None:
            async for event in feed.events():
                if event.event == "rotated":
                    rotated.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await collect(feed, got, 120.0)
            nursery.cancel_scope.cancel()
        assert rotated.is_set()
        stats = feed.statistics()
        assert stats["events"].get("handover_incomplete", 0) == 0
        delivered, holes, duplicates = check_against_ledger(sim, got, "ESZ6")
        assert (holes, duplicates) == (0, 0) and delivered > 1000
        assert stats["dialect"]["trade_gaps"] == 0


async def keep_trading(sim: Any, symbols: tuple[str, ...], ready: trio.Event) -> None:
    """A client of its own subscribes the quotes of ``symbols`` and stays: the contracts
    trade on while the feed is away (the simulator trades only what someone streams)."""
    async with open_tradovate_probe(sim.url) as probe:
        token = str(sim.tradovate.accounts.issue("keeper").access)
        assert (await probe.authorize(token))["s"] == 200
        for symbol in symbols:
            assert (await probe.call("md/subscribeQuote", {"symbol": symbol}))["s"] == 200
        ready.set()
        while True:
            await probe.heartbeat()
            with trio.move_on_after(2.0):
                while True:
                    await probe.receive()
                    probe.items.clear()


async def test_ten_forced_reconnects_lose_and_repeat_no_trade(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The measurement: the feed's connection dropped ten times (a TCP reset, no close
    frame: what ``sim.faults.drop`` does to every connection, here to the feed's alone)
    while ESZ6 and NQZ6 keep trading for another client; every trade of the ledger from
    the feed's first to its last reaches the user once."""
    symbols = ("ESZ6", "NQZ6")
    async with open_simulator("tradovate", config=CONFIG, seed=5) as sim:
        async with trio.open_nursery() as background:
            ready = trio.Event()
            background.start_soon(keep_trading, sim, symbols, ready)
            await ready.wait()
            keeper = {c.id for c in sim.connections}
            venue = Tradovate(url=sim.url, token=TOKEN)
            async with tickactors.open_feed(venue, seed=5, backoff_cap=5.0) as feed:
                feed.subscribe(*symbols, kind=TRADES)
                got: list[Tick] = []
                dropped: set[int] = set(keeper)
                outages: list[float] = []

                async def streaming() -> None:
                    """Until a new connection of the feed streams both charts, 3 s more."""
                    while True:  # the simulator has no event for it: look every 50 ms
                        if any(
                            len(c.subs.tick_charts) == 2 and c.id not in dropped
                            for c in sim.connections
                        ):
                            break
                        await trio.sleep(0.05)
                    await trio.sleep(3.0)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(collect, feed, got, 1e9)
                    for _ in range(10):
                        await streaming()
                        for conn in list(sim.connections):
                            if conn.id not in dropped:
                                dropped.add(conn.id)
                                conn.abort("drop")
                        lost_at = trio.current_time()
                        await streaming()
                        outages.append(trio.current_time() - 3.0 - lost_at)
                    nursery.cancel_scope.cancel()
                stats = feed.statistics()
            background.cancel_scope.cancel()
        assert stats["events"]["disconnected"] == 10
        report = {}
        for symbol in symbols:
            seqs = {t.seq for t in got if t.symbol == symbol}
            window = [i for i in ledger_ids(sim, symbol) if min(seqs) <= i <= max(seqs)]
            delivered, holes, duplicates = check_against_ledger(sim, got, symbol)
            report[symbol] = (len(window), delivered, holes, duplicates)
            assert holes == 0 and duplicates == 0 and delivered == len(window)
        dialect = stats["dialect"]
        print(
            f"\nten reconnects, outages {min(outages):.2f}-{max(outages):.2f} s: {report} "
            f"(ledger, delivered, holes, duplicates); duplicates dropped by the dialect "
            f"{dialect['trade_duplicates']}, gaps {dialect['trade_gaps']}, charts opened "
            f"{dialect['trade_charts_opened']}, ghost packets {dialect['chart_ghosts']}"
        )
        assert dialect["trade_gaps"] == 0 and dialect["trade_charts_opened"] == 22
        assert dialect["trade_charts"] == 2  # the dropped connections' charts are forgotten
        assert dialect["trade_duplicates"] >= 20  # each resume starts with the last trade
        assert min(outages) > 0.5  # trades happened while the feed was away


async def test_history_that_does_not_reach_back_is_announced_as_a_trade_gap(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_simulator("tradovate", config=CONFIG, seed=6) as sim:
        async with trio.open_nursery() as background:
            ready = trio.Event()
            background.start_soon(keep_trading, sim, ("ESZ6",), ready)
            await ready.wait()
            keeper = {c.id for c in sim.connections}
            venue = Tradovate(url=sim.url, token=TOKEN)
            async with tickactors.open_feed(venue, seed=5) as feed:
                feed.subscribe("ESZ6", kind=TRADES)
                got: list[Tick] = []
                await collect(feed, got, 3.0)
                (conn,) = [c for c in sim.connections if c.id not in keeper]
                conn.abort("drop")
                await trio.sleep(0.5)  # the feed is away; the contract trades on
                es = sim.tradovate.contracts.find("ESZ6").id
                kept = sim.tradovate.ticks._ticks[es]  # the venue forgets all but the last 3
                while len(kept) > 3:
                    kept.popleft()
                first_kept = kept[0].id
                with trio.fail_after(30):
                    async for event in feed.events():
                        if event.event == "trade_gap":
                            break
                await collect(feed, got, 2.0)
                stats = feed.statistics()
            background.cancel_scope.cancel()
    last = max(t.seq for t in got if t.seq is not None and t.seq < first_kept)
    assert dict(event.detail) == {
        "symbol": "ESZ6",
        "after": last,
        "first": first_kept,
        "missing": first_kept - last - 1,
    }
    assert event.detail["missing"] > 5
    assert stats["dialect"]["trade_gaps"] == 1 and stats["events"]["trade_gap"] == 1
    seqs = [t.seq for t in got]
    assert len(seqs) == len(set(seqs))  # still each once
