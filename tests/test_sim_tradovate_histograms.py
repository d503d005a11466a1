"""The simulated Tradovate venue's histograms (``md/subscribeHistogram``), over a raw WebSocket."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_histograms import Histograms
from tickactors.sim._tradovate_probe import TradovateProbe, open_tradovate_probe
from tickactors.sim._tradovate_ticks import Tick

EPOCH = 1_800_000_000.0
CONFIG = SimConfig(error_text="plain", tick_interval=0.05, epoch=EPOCH)
KEYS = {"contractId", "timestamp", "tradeDate", "base", "items", "refresh"}


async def authorized(sim: Any, probe: TradovateProbe) -> None:
    token = str(sim.tradovate.accounts.issue("alice").access)
    assert (await probe.authorize(token)) == {"i": 0, "s": 200}


def histograms_after(probe: TradovateProbe, answer: dict[str, Any]) -> list[dict[str, Any]]:
    start = next(k for k, item in enumerate(probe.items) if item is answer) + 1
    return [
        h
        for item in probe.items[start:]
        if item.get("e") == "md"
        for h in item["d"].get("histograms", [])
    ]


def ms_of(histogram: dict[str, Any]) -> int:
    stamp = datetime.fromisoformat(histogram["timestamp"].replace("Z", "+00:00"))
    return round(stamp.timestamp() * 1000)


def first_histogram_at(probe: TradovateProbe, since: float) -> float:
    """When the first frame holding a histogram arrived at or after ``since``."""
    return next(
        t for t, raw in probe.frames if t >= since and isinstance(raw, str) and "histograms" in raw
    )


def volume_by_price(ticks: list[Tick]) -> dict[float, int]:
    """What the ledger says was traded at each price (prices in the wire's units)."""
    out: Counter[float] = Counter()
    for t in ticks:
        out[round(t.price * 0.01, 2)] += t.size
    return dict(out)


def prices(histogram: dict[str, Any]) -> dict[float, int]:
    base = histogram["base"]
    return {round(base + int(k) * 0.01, 2): v for k, v in histogram["items"].items()}


async def test_snapshot_then_one_whole_histogram_per_trade(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=CONFIG, seed=6) as sim:
        nq = sim.tradovate.contracts.find("NQZ6").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            await probe.call("md/subscribeQuote", {"symbol": "NQZ6"})
            await probe.collect(1.0)  # it trades before anyone asks for its histogram
            answer = await probe.call("md/subscribeHistogram", {"symbol": "NQZ6"})
            asked = trio.current_time()
            assert answer == {"i": 2, "s": 200, "d": {"subscriptionId": nq}}
            await probe.collect(2.0)
            # the snapshot follows the answer by tradovate_history_delay (0.25 s)
            assert first_histogram_at(probe, asked) == asked + 0.25
            got = histograms_after(probe, answer)
            gone = await probe.call("md/unsubscribeHistogram", {"symbol": "NQZ6"})
            assert gone == {"i": 3, "s": 200, "d": {}}
            await probe.collect(1.0)
            assert histograms_after(probe, gone) == []  # stopped at once
            again = await probe.call("md/unsubscribeHistogram", {"symbol": "NQZ6"})
            assert (again["s"], again["d"]) == (400, "Not subscribed: NQZ6")
        ledger = list(sim.tradovate.ticks.history(nq))
    assert len(got) > 30
    assert all(set(h) == KEYS and h["contractId"] == nq and h["refresh"] for h in got)
    day = datetime.fromtimestamp(EPOCH, tz=UTC)
    assert all(
        h["tradeDate"] == {"year": day.year, "month": day.month, "day": day.day} for h in got
    )
    assert all(h["base"] == round(ledger[0].price * 0.01, 2) for h in got)  # the day's first trade
    assert all(isinstance(k, str) and int(k) == int(k.strip()) for h in got for k in h["items"])
    # each histogram is the ledger's volume by price up to its trade, stamped with its time
    by_ms = {t.ms: k for k, t in enumerate(ledger)}
    for h in got:
        upto = by_ms[ms_of(h)]
        assert prices(h) == volume_by_price(ledger[: upto + 1])
    # the first one (the snapshot) covers the trades before the subscription
    assert by_ms[ms_of(got[0])] >= 10


async def test_changes_mode_sends_one_level_after_the_first(autojump_clock: trio.abc.Clock) -> None:
    config = attrs.evolve(CONFIG, tradovate_histogram="changes")
    async with open_simulator("tradovate", config=config, seed=9) as sim:
        es = sim.tradovate.contracts.find("ESZ6").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            # nobody streams ESZ6: the histogram subscription alone makes it trade
            answer = await probe.call("md/subscribeHistogram", {"symbol": str(es)})
            await probe.collect(2.0)
            got = histograms_after(probe, answer)
        ledger = list(sim.tradovate.ticks.history(es))
    assert sim.stats.tradovate_ticks["ESZ6"].count == len(ledger) >= len(got) > 20
    assert got[0]["refresh"] is True  # the snapshot after the delay: whole
    assert all(h["refresh"] is False and len(h["items"]) == 1 for h in got[1:])
    merged: dict[str, int] = {}
    for h in got:  # refresh false: these levels replace theirs, the others stand
        merged = dict(h["items"]) if h["refresh"] else {**merged, **h["items"]}
    last = ms_of(got[-1])
    done = [t for t in ledger if t.ms <= last]
    assert prices({"base": got[0]["base"], "items": merged}) == volume_by_price(done)
    assert sum(got[0]["items"].values()) > 0 and len(done) > len(got)  # traded while pending


async def test_no_history_delay_and_a_second_connection(autojump_clock: trio.abc.Clock) -> None:
    config = attrs.evolve(CONFIG, tradovate_history_delay=0.0)
    async with open_simulator("tradovate", config=config, seed=3) as sim:
        async with open_tradovate_probe(sim.url) as first, open_tradovate_probe(sim.url) as late:
            await authorized(sim, first)
            await first.call("md/subscribeHistogram", {"symbol": "CLF7"})
            await first.collect(1.0)
            await authorized(sim, late)
            answer = await late.call("md/subscribeHistogram", {"symbol": "CLF7"})
            asked = trio.current_time()
            await late.collect(0.5)
            assert first_histogram_at(late, asked) == asked  # right after the answer
            snapshot = histograms_after(late, answer)[0]
            ledger = sim.tradovate.ticks.history(snapshot["contractId"])
            done = [t for t in ledger if t.ms <= round((EPOCH + asked) * 1000)]
            assert prices(snapshot) == volume_by_price(done) and len(done) > 10


def test_a_new_trade_date_starts_a_new_histogram() -> None:
    book = Histograms()
    midnight = int(EPOCH // 86_400 + 1) * 86_400_000
    first = book.add(7, midnight - 1000, 500, 3)
    assert first.new_day and first.offset == 0
    assert not book.add(7, midnight - 10, 498, 2).new_day
    assert book.update(7, "changes") == {**book.get(7).to_json([-2]), "refresh": False}  # type: ignore[union-attr]
    late = book.add(7, midnight + 5, 510, 1)
    assert late.new_day and late.histogram.base == 510 and late.histogram.volume == {0: 1}
    assert book.update(7, "changes")["refresh"] is True  # type: ignore[index]
    assert book.update(8, "full") is None
