"""The simulated Tradovate venue's Tick charts (``md/getChart``), over a raw WebSocket."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._stats import SeqRun, SimStats
from tickactors.sim._tradovate_contracts import Contracts
from tickactors.sim._tradovate_probe import TradovateProbe, open_tradovate_probe
from tickactors.sim._tradovate_protocol import iso
from tickactors.sim._tradovate_ticks import Tick, TickLedger

EPOCH = 1_800_000_000.0  # wall time at trio time 0: a minute boundary, the same every run
CONFIG = SimConfig(error_text="plain", tick_interval=0.05, wire_variants="documented", epoch=EPOCH)

# (id, ms, price, size, bid, ask, bid size, ask size), prices as the wire gives them
Decoded = tuple[int, int, float, int, float, float, int, int]


async def authorized(sim: Any, probe: TradovateProbe) -> None:
    token = str(sim.tradovate.accounts.issue("alice").access)
    assert (await probe.authorize(token)) == {"i": 0, "s": 200}


def tick_chart(symbol: str, **time_range: Any) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "chartDescription": {
            "underlyingType": "Tick",
            "elementSize": 1,
            "elementSizeUnit": "UnderlyingUnits",
        },
        "timeRange": time_range,
    }


def packets_after(probe: TradovateProbe, answer: dict[str, Any], chart_id: int) -> list[Any]:
    """The chart packets of ``chart_id`` received after ``answer``, in order."""
    start = next(k for k, item in enumerate(probe.items) if item is answer) + 1
    out: list[Any] = []
    for item in probe.items[start:]:
        if item.get("e") == "chart":
            out.extend(p for p in item["d"]["charts"] if p["id"] == chart_id)
    return out


def decode(packet: dict[str, Any]) -> list[Decoded]:
    bp, bt, ts = packet["bp"], packet["bt"], packet["ts"]
    return [
        (
            t["id"],
            bt + t["t"],
            round((bp + t["p"]) * ts, 2),
            t["s"],
            round((bp + t["b"]) * ts, 2),
            round((bp + t["a"]) * ts, 2),
            t["bs"],
            t["as"],
        )
        for t in packet["tks"]
    ]


def as_wire(tick: Tick) -> Decoded:
    c = 0.01
    return (
        tick.id,
        tick.ms,
        round(tick.price * c, 2),
        tick.size,
        round(tick.bid * c, 2),
        round(tick.ask * c, 2),
        tick.bid_size,
        tick.ask_size,
    )


def split(packets: list[Any]) -> tuple[list[Decoded], list[Decoded]]:
    """(history ticks, live ticks): the packets before and after the ``eoh`` marker."""
    marks = [k for k, p in enumerate(packets) if p.get("eoh")]
    assert len(marks) == 1, "exactly one end-of-history marker"
    history = [t for p in packets[: marks[0]] for t in decode(p)]
    live = [t for p in packets[marks[0] + 1 :] for t in decode(p)]
    assert all(p["s"] == "db" for p in packets[: marks[0]])
    assert all(p["s"] == "rt" and len(p["tks"]) == 1 for p in packets[marks[0] + 1 :])
    return history, live


async def test_tick_chart_history_eoh_then_live_ticks(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=CONFIG, seed=5) as sim:
        es = sim.tradovate.contracts.find("ESZ6").id
        async with open_tradovate_probe(sim.url) as first, open_tradovate_probe(sim.url) as late:
            await authorized(sim, first)
            # nobody streams ESZ6 yet: no trades, so an empty history, then live ticks
            a1 = await first.call("md/getChart", tick_chart("ESZ6", asMuchAsElements=50))
            c1 = a1["d"]["historicalId"]
            assert a1["d"] == {"historicalId": c1, "realtimeId": c1}
            await first.collect(3.0)
            history, live = split(packets_after(first, a1, c1))
            assert history == [] and len(live) > 30
            assert [t[0] for t in live] == list(range(1, len(live) + 1))
            # a later chart: the last N of the ledger, eoh, then the same live ticks
            await authorized(sim, late)
            a2 = await late.call("md/getChart", tick_chart(str(es), asMuchAsElements=20))
            c2 = a2["d"]["realtimeId"]
            assert c2 != c1
            await late.collect(2.0)
            history2, live2 = split(packets_after(late, a2, c2))
            ids = [t[0] for t in history2 + live2]
            assert len(history2) == 20 and ids == list(range(ids[0], ids[0] + len(ids)))
            await first.collect(0.5)
            _, live = split(packets_after(first, a1, c1))
        ledger = {t.id: t for t in sim.tradovate.ticks.history(es)}
        assert live == [as_wire(ledger[t[0]]) for t in live]
        assert history2 + live2 == [as_wire(ledger[t[0]]) for t in history2 + live2]
        assert set(history2 + live2) <= set(live)  # both sockets saw the same trades
        assert all(b <= p <= a for _, _, p, _, b, a, _, _ in live)
        assert [t[1] for t in live] == sorted(t[1] for t in live)
        run = sim.stats.tradovate_ticks["ESZ6"]
        assert run.first == 1 and run.count == run.last >= live[-1][0]


async def test_tick_chart_trades_are_the_quotes_trades(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=CONFIG, seed=8) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            await probe.call("md/subscribeQuote", {"symbol": "NQZ6"})
            answer = await probe.call("md/getChart", tick_chart("NQZ6", asMuchAsElements=0))
            await probe.collect(2.0)
            chart = answer["d"]["realtimeId"]
            history, live = split(packets_after(probe, answer, chart))
            # the chart goes live when its history (here: none) goes out, after the delay
            start = next(
                k
                for k, item in enumerate(probe.items)
                if item.get("e") == "chart" and {"id": chart, "eoh": True} in item["d"]["charts"]
            )
            trades = [
                (q["entries"]["Trade"]["price"], q["entries"]["Trade"]["size"])
                for item in probe.items[start:]
                if item.get("e") == "md"
                for q in item["d"].get("quotes", [])
            ]
        assert history == [] and len(live) > 20
        assert trades[: len(live)] == [(t[2], t[3]) for t in live]


async def test_as_far_as_timestamp_after_a_gap_and_cancel(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=CONFIG, seed=11) as sim:
        cl = sim.tradovate.contracts.find("CLF7").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            await probe.call("md/subscribeQuote", {"symbol": "CLF7"})  # trades go on
            first = await probe.call("md/getChart", tick_chart("CLF7", asMuchAsElements=0))
            c1 = first["d"]["realtimeId"]
            await probe.collect(2.0)
            cancel = await probe.call("md/cancelChart", {"subscriptionId": c1})
            assert cancel["s"] == 200
            _, seen = split(packets_after(probe, first, c1))
            await probe.collect(3.0)  # the gap: trades the chart no longer sees
            assert packets_after(probe, cancel, c1) == []
            assert (await probe.call("md/cancelChart", {"subscriptionId": c1}))["s"] == 400
            since = iso(seen[-1][1] / 1000)
            again = await probe.call("md/getChart", tick_chart("CLF7", asFarAsTimestamp=since))
            c2 = again["d"]["realtimeId"]
            await probe.collect(1.0)
            history, live = split(packets_after(probe, again, c2))
        ledger = sim.tradovate.ticks.history(cl)
        wanted = [as_wire(t) for t in ledger if t.ms >= seen[-1][1] and t.id <= history[-1][0]]
        assert history == wanted and history[0] == seen[-1]  # from the last tick seen, on
        joined = {t[0]: t for t in seen + history + live}
        ids = sorted(joined)
        assert ids == list(range(seen[0][0], live[-1][0] + 1))  # no hole
        assert len(history) > 30 and live[0][0] == history[-1][0] + 1  # no duplicate
        assert [joined[i] for i in ids] == [as_wire(t) for t in ledger if t.id in joined]


async def test_closest_timestamp_and_bad_time_ranges(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=CONFIG, seed=2) as sim:
        gc = sim.tradovate.contracts.find("GCG7").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            await probe.call("md/subscribeQuote", {"symbol": "GCG7"})
            await probe.collect(2.0)
            middle = sim.tradovate.ticks.history(gc)[15]
            await probe.collect(1.0)
            body = tick_chart("GCG7", closestTimestamp=iso(middle.ms / 1000), asMuchAsElements=5)
            answer = await probe.call("md/getChart", body)
            chart = answer["d"]["historicalId"]
            await probe.collect(0.5)  # the history comes tradovate_history_delay (0.25 s) later
            history, _ = split(packets_after(probe, answer, chart))
            assert [t[0] for t in history] == list(range(middle.id - 4, middle.id + 1))
            bad = await probe.call("md/getChart", tick_chart("GCG7", closestTimestamp="soon"))
            assert bad["s"] == 400 and "Invalid timestamp" in bad["d"]
            bad = await probe.call("md/getChart", tick_chart("GCG7", asMuchAsElements="all"))
            assert bad["s"] == 400
            assert sim.connections[0].subs.tick_charts == {chart: gc}


def test_the_ledger_is_bounded_and_counts_every_tick() -> None:
    stats = SimStats()
    ledger = TickLedger(stats, size=5)
    contract = next(iter(Contracts(__import__("random").Random(1))))
    for k in range(12):
        ledger.record(contract, 1000.0 + k, 100 + k, 1, (99 + k, 101 + k, 3, 4))
    assert [t.id for t in ledger.history(contract.id)] == [8, 9, 10, 11, 12]
    assert stats.tradovate_ticks[contract.name] == SeqRun(1, 12, 12)
    assert [t.id for t in ledger.select(contract.id, {})] == [8, 9, 10, 11, 12][-5:]
    far = ledger.select(contract.id, {"asFarAsTimestamp": iso(1010.0)})
    assert [t.id for t in far] == [11, 12]  # type: ignore[union-attr]
    assert ledger.select(contract.id, {"asFarAsTimestamp": 5}) == "Invalid timestamp: 5"


async def test_daily_bars_keep_their_history_only(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=CONFIG) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            body = {"symbol": "ESZ6", "chartDescription": {"underlyingType": "DailyBar"}}
            answer = await probe.call("md/getChart", body)
            chart = answer["d"]["historicalId"]
            await probe.collect(2.0)
            packets = packets_after(probe, answer, chart)
            assert packets[-1] == {"id": chart, "eoh": True} and len(packets) == 2
            assert sim.stats.tradovate_ticks == {}


async def test_minute_bars_get_their_current_bar_after_each_trade(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = attrs.evolve(CONFIG, tick_interval=0.5)
    async with open_simulator("tradovate", config=config, seed=4) as sim:
        zn = sim.tradovate.contracts.find("ZNH7").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            body = {
                "symbol": "ZNH7",
                "chartDescription": {"underlyingType": "MinuteBar", "elementSize": 1},
                "timeRange": {"asMuchAsElements": 3},
            }
            answer = await probe.call("md/getChart", body)
            chart = answer["d"]["realtimeId"]
            for _ in range(60):  # 150 s: three minute bars at least, heartbeats on
                await probe.collect(2.5)
                await probe.heartbeat()
            cancel = await probe.call("md/cancelChart", {"subscriptionId": chart})
            packets = packets_after(probe, answer, chart)
            await probe.collect(5.0)
            assert packets_after(probe, cancel, chart) == []
        assert packets[1] == {"id": chart, "eoh": True}
        history, live = packets[0]["bars"], [p["bars"][0] for p in packets[2:]]
        ticks = sim.tradovate.ticks.history(zn)
        assert len(live) == len(ticks) > 200  # one update per trade
        assert [b["close"] for b in live] == [round(t.price * 0.01, 2) for t in ticks]
        stamps = [b["timestamp"] for b in live]
        assert stamps[0] == history[-1]["timestamp"] and len(set(stamps)) >= 3
        assert stamps == sorted(stamps)
        for before, after, tick in zip(live, live[1:], ticks[1:], strict=False):
            if before["timestamp"] == after["timestamp"]:
                assert after["open"] == before["open"]
                assert after["high"] == max(before["high"], after["close"])
                volume = after["upVolume"] + after["downVolume"]
                assert volume == before["upVolume"] + before["downVolume"] + tick.size
            else:
                assert after["open"] == after["high"] == after["low"] == after["close"]
                assert after["upTicks"] + after["downTicks"] == 1
            assert after["low"] <= min(after["open"], after["close"])
