"""The simulator's trade ledger: a trade is a broadcast, and the stats count every one."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio

from tickactors.sim import SeqRun, SimConfig, open_simulator
from tickactors.sim._probe import Probe, open_probe
from tickactors.sim._tradovate_probe import open_tradovate_probe

CODES = ("BTCUSDT", "ETHUSDT", "700.HK")


def trades(probe: Probe) -> dict[str, list[int]]:
    """The ``seq`` of every trade push the probe has read, by code, in arrival order."""
    out: dict[str, list[int]] = {}
    for push in probe.pushes:
        if push["cmd_id"] == 22998:
            out.setdefault(push["data"]["code"], []).append(int(push["data"]["seq"]))
    return out


def run(seqs: list[int]) -> SeqRun:
    return SeqRun(seqs[0], seqs[-1], len(seqs))


async def drain(probe: Probe) -> None:
    """Cancel everything and read up to the answer: every trade queued before it is read."""
    await probe.cancel(0)
    assert (await probe.answer())["ret"] == 200


async def test_one_trade_reaches_every_listener_and_is_counted_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(record_connections=True, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        async with open_probe(sim.url) as a, open_probe(sim.url) as b:
            await a.trades("BTCUSDT")
            assert (await a.answer())["ret"] == 200
            await trio.sleep(2.0)
            await b.trades("BTCUSDT", "EURUSD")
            assert (await b.answer())["ret"] == 200
            ids = [conn.id for conn in sim.connections]
            await trio.sleep(2.0)
            await drain(a)
            await trio.sleep(2.0)
            await drain(b)
            got_a, got_b = trades(a), trades(b)
            frames_a = {int(p["data"]["seq"]): p for p in a.pushes}
            frames_b = {
                int(p["data"]["seq"]): p for p in b.pushes if p["data"]["code"] == "BTCUSDT"
            }
    both = sorted(set(frames_a) & set(frames_b))
    assert len(both) > 10  # the overlap: the same trades, byte for byte the same data
    assert all(frames_a[seq] == frames_b[seq] for seq in both)
    union = sorted(set(got_a["BTCUSDT"]) | set(got_b["BTCUSDT"]))
    generated = sim.stats.trades_generated
    assert generated["BTCUSDT"] == run(union)
    assert union == list(range(union[0], union[-1] + 1))  # no depth: consecutive
    assert generated["EURUSD"] == run(got_b["EURUSD"])
    assert sim.stats.trades_by_connection == {
        ids[0]: {"BTCUSDT": run(got_a["BTCUSDT"])},
        ids[1]: {"BTCUSDT": run(got_b["BTCUSDT"]), "EURUSD": run(got_b["EURUSD"])},
    }
    assert sim.stats.codes_by_connection == {ids[0]: {"BTCUSDT"}, ids[1]: {"BTCUSDT", "EURUSD"}}
    assert sim.stats.ticks_sent_by_symbol["BTCUSDT"] == len(got_a["BTCUSDT"]) + len(
        got_b["BTCUSDT"]
    )


async def test_depth_shares_the_seq_so_trade_seqs_skip(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator(config=SimConfig(heartbeat_timeout=None)) as sim:
        async with open_probe(sim.url) as probe:
            await probe.trades("BTCUSDT")
            assert (await probe.answer())["ret"] == 200
            await trio.sleep(1.0)
            await probe.depth("BTCUSDT")
            assert (await probe.answer())["ret"] == 200
            await trio.sleep(3.0)
            await drain(probe)
            got = trades(probe)["BTCUSDT"]
    run_ = sim.stats.trades_generated["BTCUSDT"]
    assert run_ == run(got) and got == sorted(set(got))
    assert run_.last - run_.first + 1 > run_.count  # depth snapshots took seqs in between
    assert sim.stats.trades_by_connection == {} and sim.stats.codes_by_connection == {}


async def test_rotations_make_before_break_lose_and_repeat_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    """What issue 6's feed test proves, done by hand: ten rotations, every trade once."""
    config = SimConfig(plan="premium", record_connections=True, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        async with AsyncExitStack() as stack:
            probes: list[Probe] = []
            ids: list[int] = []

            async def rotate_in() -> None:
                probe = await stack.enter_async_context(open_probe(sim.url))
                await probe.trades(*CODES)
                assert (await probe.answer())["ret"] == 200
                ids.append(sim.connections[-1].id)
                seen: set[str] = set()
                with trio.fail_after(5.0):  # confirmed: first data for every code
                    while seen != set(CODES):
                        frame = await probe.next_frame()
                        seen.add(frame["data"]["code"])
                probes.append(probe)

            await rotate_in()
            for _ in range(10):
                await trio.sleep(3.0)  # premium: 3 s between requests across connections
                await rotate_in()
                await trio.sleep(3.0)
                old = probes[-2]
                await drain(old)  # the sim stops streaming to old; nothing is left in flight
                await old.ws.aclose()
            await trio.sleep(3.0)
            await drain(probes[-1])
        assert dict(sim.stats.violations) == {} and sim.stats.closes["connection_limit"] == 0
    assert len(set(ids)) == 11
    delivered: dict[str, list[int]] = {code: [] for code in CODES}  # what a deduplicating feed
    last: dict[str, int] = {}  # passes on: each seq once, in order
    for probe in probes:
        for code, seqs in trades(probe).items():
            for seq in seqs:
                if seq > last.get(code, 0):
                    delivered[code].append(seq)
                    last[code] = seq
    for code in CODES:
        seqs = delivered[code]
        assert sim.stats.trades_generated[code] == run(seqs)
        assert seqs == list(range(seqs[0], seqs[-1] + 1))  # trades only: no gap at all
    for old, new, old_id, new_id in zip(probes, probes[1:], ids, ids[1:], strict=False):
        for code in CODES:
            old_seqs, new_seqs = trades(old)[code], trades(new)[code]
            assert new_seqs[0] <= old_seqs[-1]  # they overlapped: nothing fell between
            assert sim.stats.trades_by_connection[old_id][code] == run(old_seqs)
            assert sim.stats.trades_by_connection[new_id][code] == run(new_seqs)
    assert sim.stats.codes_by_connection == {id_: set(CODES) for id_ in ids}


async def test_firehose_counts_what_it_generates() -> None:
    config = SimConfig(firehose=True, record_connections=True, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT")
        assert (await probe.answer())["ret"] == 200
        with trio.fail_after(10.0):
            while len(probe.pushes) < 2000:
                await probe.next_frame()
        # still streaming (a request now would find the queue full: no clean end to wait
        # for), so what was read is a prefix of what was written, of what was generated
        seqs = trades(probe)["BTCUSDT"]
        generated = sim.stats.trades_generated["BTCUSDT"]
        (conn,) = sim.connections
        written = sim.stats.trades_by_connection[conn.id]["BTCUSDT"]
        assert seqs == list(range(generated.first, generated.first + len(seqs)))
        assert written.first == generated.first
        assert len(seqs) <= written.count <= generated.count
        assert written.last == written.first + written.count - 1


async def test_trade_times_say_when_each_trade_was_generated(
    autojump_clock: trio.abc.Clock,
) -> None:
    """``record_trade_times``: one trio time per generated trade, by ``seq``, in order; a
    trade's ``tick_time`` (seconds, the documented shape) is the floor of that moment."""
    config = SimConfig(record_trade_times=True, heartbeat_timeout=None, epoch=1_000_000.0)
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT", "EURUSD")
        assert (await probe.answer())["ret"] == 200
        await trio.sleep(3.0)
        await drain(probe)
        now = trio.current_time()
    for code in ("BTCUSDT", "EURUSD"):
        times = sim.stats.trade_times[code]
        generated = sim.stats.trades_generated[code]
        assert sorted(times) == list(range(generated.first, generated.last + 1))
        stamps = [times[seq] for seq in sorted(times)]
        assert stamps == sorted(stamps) and stamps[0] > 0 and stamps[-1] <= now
        pushed = [p["data"] for p in probe.pushes if p.get("cmd_id") == 22998]
        for data in pushed:
            if data["code"] == code:
                assert data["tick_time"] == int(1_000_000.0 + times[int(data["seq"])])
    async with open_simulator(config=SimConfig(heartbeat_timeout=None)) as sim:
        async with open_probe(sim.url) as probe:
            await probe.trades("BTCUSDT")
            await trio.sleep(1.0)
        assert sim.stats.trades_generated and sim.stats.trade_times == {}  # off by default


async def test_tradovate_trade_times_follow_the_tick_ledger(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(record_trade_times=True, epoch=1_000_000.0)
    async with open_simulator("tradovate", config=config) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            token = sim.tradovate.accounts.issue("trader").access
            assert (await probe.authorize(token))["s"] == 200
            answer = await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            assert answer["s"] == 200
            await probe.collect(3.0)
        es = sim.tradovate.contracts.find("ESZ6")
        ledger = sim.tradovate.ticks.history(es.id)
    times = sim.stats.trade_times["ESZ6"]
    assert len(ledger) > 10 and sorted(times) == [tick.id for tick in ledger]
    for tick in ledger:  # the ledger's wall time in ms is the same moment
        assert tick.ms == round((1_000_000.0 + times[tick.id]) * 1000)
