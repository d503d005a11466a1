"""A bad network between the simulator and the feed: loss, delay, reordering, a bandwidth cut.

Run as root inside a fresh network namespace (``tests/test_netem.py`` and
``bench/netem.py`` do this)::

    unshare --net -- python tests/netem_scenario.py --venue alltick --phase steady

It brings ``lo`` up and runs the simulator and a feed on 127.0.0.1 in one Trio run (one
clock for both: the simulator stamps each trade when it generates it, the feed each
frame when it arrives), impairs ``lo`` for the simulator's port (``tests/netem_link.py``:
kernel ``netem`` where the kernel has it, else the same decisions through ``NFQUEUE``),
and prints what it measured as one JSON line on stdout. Phases:

``steady``
    The venue's own timings (``stale_after`` 30 s AllTick, 10 s Tradovate; the
    simulator's heartbeat deadlines), a realistic tick rate, and for ``--duration``
    seconds 2 % loss, 80 ms +- 40 ms delay, 1 % reordering on every packet both ways.
    Measured: stale verdicts, reconnects, heartbeats the venue missed, every trade of the
    simulator's ledger against what the feed delivered (once each, in order), tick latency
    (generation to the feed's reader), the longest silence the feed saw, TCP
    retransmissions (``ss -ti`` on both ends, the namespace's ``/proc/net/snmp``).
``bandwidth``
    The link is capped (``tbf``) at half the bytes a second the stream needs for
    ``--cut`` seconds, then restored. Measured: the ``lagging`` and ``caught_up`` events,
    how far behind the feed fell, that nothing was delivered out of order, and that what
    the ledger has and the feed did not deliver is exactly what its lane policy dropped
    and ``gap`` events counted (AllTick trades: ``block``, nothing may go; Tradovate
    quotes: ``conflate`` with a small buffer and a consumer slowed down while the
    backlog pours in, so some must go).
``rotation``
    A blackhole (iptables ``DROP`` both ways, as in ``tests/blackhole_scenario.py``) cut
    right after a make-before-break replacement connected, both connections open.
    Measured: each connection's ``stale`` against ``stale_after`` and the cut; then
    healed, recovery, and no trade delivered twice.
``order``
    Tradovate: a blackhole cut, then an ``order/placeorder`` through ``feed.request``
    with a long ``request_timeout``. Measured: the request fails with
    ``ConnectionLostError`` when the connection is declared stale, well before its
    deadline; the simulator's record of order requests after healing (never twice).

Real time on purpose: kernel TCP cannot run under a mock clock. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import socket
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

import tickactors
from tickactors import HealthEvent, Quote, Tick
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netem_link
from blackhole_scenario import blackhole
from netem_link import Impairment, Link

T = TypeVar("T")

SYMBOLS = {
    "alltick": ("BTCUSDT", "ETHUSDT", "EURUSD", "XAUUSD"),
    "tradovate": ("ESZ6", "NQZ6", "CLF7"),
}
TOKEN = "netem-token-4d4d"
BAD_NETWORK = Impairment(loss=0.02, delay=0.080, jitter=0.040, reorder=0.01)
TICK_INTERVAL = 0.05  # a trade per symbol every 25-75 ms: 80 a second on AllTick, 60 Tradovate
CLEAN = 5.0  # seconds of clean network before the impairment: the latency floor
BLACKHOLE_STALE_AFTER = 3.0
#: The capped link's queue, in seconds of traffic at the cap (tbf's ``latency``): deep, as
#: on most access links, so the cap delays rather than drops. A shallow one (2 s) drops the
#: tail, TCP's retransmission timer backs off, and the recovery after the lift waits for it
#: (17 s once); that is TCP's business, not the feed's, and too random for a test.
QUEUE = 30.0
MTU = 1500
VERBOSE = False
PHASES = ("steady", "bandwidth", "rotation", "order")


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000, 2)

    return {"n": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)}


class Recorder:
    """Every health event, every delivered item's key and arrival, and a way to wait."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.events: list[HealthEvent] = []
        #: symbol -> [(key, received_at)] in delivery order; key: AllTick seq, Tradovate
        #: TotalTradeVolume (strictly increasing per contract, one trade per quote)
        self.items: dict[str, list[tuple[int, float]]] = {}
        self.batch_times: list[float] = []
        self._changed = trio.Event()

    def _note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def follow_events(self, feed: tickactors.Feed) -> None:
        async for event in feed.events():
            self.events.append(event)
            if VERBOSE:
                print(
                    f"{event.time:.3f} [{event.connection}] {event.event} {event.message}",
                    file=sys.stderr,
                )
            self._note()

    async def follow_items(self, feed: tickactors.Feed) -> None:
        async for batch in feed.batches():
            self.batch_times.append(trio.current_time())
            for item in batch:
                if isinstance(item, Tick) and item.seq is not None:
                    key = item.seq
                elif isinstance(item, Quote) and item.total_volume is not None:
                    key = int(item.total_volume)
                else:
                    continue
                self.items.setdefault(item.symbol, []).append((key, item.received_at))
            self._note()

    async def until(self, found: Callable[[], T | None], timeout: float) -> T:
        with trio.fail_after(timeout):
            while (result := found()) is None:
                await self._changed.wait()
        return result

    def event(self, name: str, after: float, connection: int | None = None) -> HealthEvent | None:
        return next(
            (
                e
                for e in self.events
                if e.event == name
                and e.time >= after
                and (connection is None or e.connection == connection)
            ),
            None,
        )

    def named(
        self, name: str, start: float = -math.inf, end: float = math.inf
    ) -> list[HealthEvent]:
        return [e for e in self.events if e.event == name and start <= e.time <= end]

    def flowing(self, symbols: tuple[str, ...], after: float) -> float | None:
        """When every symbol had an item received after ``after`` (None: not yet)."""
        firsts = []
        for symbol in symbols:
            first = next((at for _, at in self.items.get(symbol, ()) if at >= after), None)
            if first is None:
                return None
            firsts.append(first)
        return max(firsts)

    def longest_silence(self, start: float, end: float) -> float:
        times = [t for t in self.batch_times if start <= t <= end]
        edges = [start, *times, end]
        return max((b - a for a, b in itertools.pairwise(edges)), default=0.0)


class Ledger:
    """The simulator's trades per symbol, as ids in order, with a way to map delivered keys.

    AllTick: a trade's key is its ``seq`` and ids are seqs (consecutive: no depth is
    streamed). Tradovate: the tick ledger's ids; a quote's key is ``TotalTradeVolume``,
    the running sum of trade sizes, which names the tick it carries. The simulator keeps
    the last 10,000 ticks of a contract, so :meth:`copy` takes them as they come.
    """

    def __init__(self, venue: str, sim: Any, symbols: tuple[str, ...]) -> None:
        self.venue, self.sim, self.symbols = venue, sim, symbols
        self._volume_to_id: dict[str, dict[int, int]] = {s: {} for s in symbols}
        self._volume: dict[str, int] = dict.fromkeys(symbols, 0)
        self._last: dict[str, int] = dict.fromkeys(symbols, 0)

    def copy(self) -> None:
        if self.venue != "tradovate":
            return
        for symbol in self.symbols:
            contract = self.sim.tradovate.contracts.find(symbol)
            for tick in self.sim.tradovate.ticks.history(contract.id):
                if tick.id <= self._last[symbol]:
                    continue
                assert tick.id == self._last[symbol] + 1, "the copy fell behind the ledger"
                self._volume[symbol] += tick.size
                self._volume_to_id[symbol][self._volume[symbol]] = tick.id
                self._last[symbol] = tick.id

    async def keep_copying(self) -> None:
        while True:
            self.copy()
            await trio.sleep(1.0)

    def last_ids(self) -> dict[str, int]:
        """Every symbol's newest trade id so far."""
        if self.venue == "tradovate":
            self.copy()
            return dict(self._last)
        runs = self.sim.stats.trades_generated
        return {s: runs[s].last for s in self.symbols}

    def first_id(self, symbol: str) -> int:
        if self.venue == "tradovate":
            return 1
        return int(self.sim.stats.trades_generated[symbol].first)

    def id_of(self, symbol: str, key: int) -> int | None:
        if self.venue == "tradovate":
            return self._volume_to_id[symbol].get(key)
        return key

    def delivered_ids(self, rec: Recorder, symbol: str) -> list[tuple[int | None, float]]:
        self.copy()
        return [(self.id_of(symbol, key), at) for key, at in rec.items.get(symbol, [])]

    def caught_up(self, rec: Recorder, upto: dict[str, int]) -> bool | None:
        """True once every symbol delivered (or dropped) past ``upto``."""
        for symbol, last in upto.items():
            ids = [i for i, _ in self.delivered_ids(rec, symbol) if i is not None]
            if not ids or max(ids) < last:
                return None
        return True


def account(
    ledger: Ledger, rec: Recorder, upto: dict[str, int], dropped: dict[str, int]
) -> dict[str, dict[str, int]]:
    """Per symbol: the ledger's trades up to ``upto`` against what the feed delivered."""
    out: dict[str, dict[str, int]] = {}
    for symbol, last in upto.items():
        first = ledger.first_id(symbol)
        delivered = ledger.delivered_ids(rec, symbol)
        ids = [i for i, _ in delivered]
        known = [i for i in ids if i is not None]
        within = [i for i in known if i <= last]
        expected = set(range(first, last + 1))
        out[symbol] = {
            "ledger": last - first + 1,
            "delivered": len(within),
            "duplicates": len(within) - len(set(within)),
            "out_of_order": sum(1 for a, b in itertools.pairwise(known) if b <= a),
            "missing": len(expected - set(within)),
            "unknown": len(ids) - len(known),
            "dropped_by_policy": dropped.get(symbol, 0),
        }
    return out


def missing_outside(
    ledger: Ledger, rec: Recorder, upto: dict[str, int], start: float, end: float
) -> int:
    """Trades the feed never delivered that were generated outside ``[start, end]``: a
    blackhole may lose what was written into it, nothing else."""
    times = ledger.sim.stats.trade_times
    count = 0
    for symbol, last in upto.items():
        got = {i for i, _ in ledger.delivered_ids(rec, symbol)}
        for trade_id in range(ledger.first_id(symbol), last + 1):
            made = times.get(symbol, {}).get(trade_id)
            if trade_id not in got and (made is None or not start <= made <= end):
                count += 1
    return count


def latencies(ledger: Ledger, rec: Recorder, start: float, end: float) -> list[float]:
    """Generation (simulator) to arrival (the feed's reader), for trades generated in
    ``[start, end)``: one clock, one process."""
    times = ledger.sim.stats.trade_times
    out: list[float] = []
    for symbol in ledger.symbols:
        stamps = times.get(symbol, {})
        for trade_id, received in ledger.delivered_ids(rec, symbol):
            made = stamps.get(trade_id) if trade_id is not None else None
            if made is not None and start <= made < end:
                out.append(received - made)
    return out


def _ss_fields(line: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for word in line.split():
        name, _, value = word.partition(":")
        if name in ("retrans", "bytes_retrans", "rtt", "reord_seen", "dsack_dups", "lost"):
            if name == "retrans":
                out[name] = int(value.split("/")[-1])  # current/total: the total
            elif name == "rtt":
                out["rtt_ms"] = float(value.split("/")[0])
            else:
                out[name] = float(value)
    for key in ("retrans", "bytes_retrans", "reord_seen", "dsack_dups", "lost"):
        out.setdefault(key, 0)
    return out


async def tcp_info(port: int) -> dict[str, dict[str, float]]:
    """``ss -ti`` of the feed's socket (``client``) and the simulator's (``server``)."""
    result = await trio.run_process(
        ["ss", "-tinH", "state", "established", f"( dport = :{port} or sport = :{port} )"],
        capture_stdout=True,
    )
    out: dict[str, dict[str, float]] = {}
    side = None
    for line in result.stdout.decode().splitlines():
        if not line[:1].isspace():
            fields = line.split()
            local, peer = fields[-2], fields[-1]
            side = (
                "client"
                if peer.endswith(f":{port}")
                else "server"
                if local.endswith(f":{port}")
                else None
            )
        elif side is not None and side not in out:
            out[side] = _ss_fields(line)
    return out


def snmp() -> dict[str, int]:
    """The namespace's TCP counters (``/proc/net/snmp`` and ``netstat``, this namespace's)."""
    wanted = {
        "Tcp": ("OutSegs", "InSegs", "RetransSegs"),
        "TcpExt": ("TCPSACKReorder", "TCPDSACKRecv", "TCPLossProbes", "TCPTimeouts"),
    }
    out: dict[str, int] = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = Path(path).read_text().splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            prefix, names = head.split(":", 1)
            if prefix in wanted:
                for name, value in zip(names.split(), values.split()[1:], strict=False):
                    if name in wanted[prefix]:
                        out[name] = int(value)
    return out


def lo_tx_bytes() -> int:
    """Bytes sent on this namespace's ``lo`` (``/proc/net`` is the reader's namespace's;
    ``/sys/class/net`` would be the host's: sysfs was mounted there)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            return int(counters.split()[8])
    raise RuntimeError("no lo in /proc/net/dev")


def venue_for(name: str, url: str) -> tickactors.venues.Venue:
    return AllTick(url=url, token=TOKEN) if name == "alltick" else Tradovate(url=url, token=TOKEN)


def sim_config(name: str, tick_interval: float) -> SimConfig:
    common: dict[str, Any] = {"tick_interval": tick_interval, "record_trade_times": True}
    if name == "tradovate":
        return SimConfig(tokens={TOKEN}, wire_variants="documented", **common)
    return SimConfig(**common)


def venue_figures(sim: Any) -> dict[str, Any]:
    """What the venue saw of the client's heartbeats, and every close and violation."""
    stats = sim.stats
    return {
        "heartbeats_received": stats.heartbeats,
        "server_closes": dict(stats.closes),
        "violations": dict(stats.violations),
    }


def feed_figures(feed: tickactors.Feed) -> dict[str, Any]:
    stats = feed.statistics()
    return {
        "connects": stats["connection"]["connects"],
        "events": stats["events"],
        "queue_dropped": stats["queue"].get("dropped_by_symbol", {}),
    }


def dropped_by_symbol(feed: tickactors.Feed) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, count in feed.statistics()["queue"].get("dropped_by_symbol", {}).items():
        _, _, symbol = key.partition(":")
        out[symbol] = out.get(symbol, 0) + count
    return out


def gap_counts(rec: Recorder) -> dict[str, int]:
    out: dict[str, int] = {}
    for event in rec.named("gap"):
        for counts in event.detail["streams"].values():
            for symbol, count in counts.items():
                out[symbol] = out.get(symbol, 0) + count
    return out


async def started(
    name: str, feed: tickactors.Feed, rec: Recorder, symbols: tuple[str, ...]
) -> None:
    feed.subscribe(*symbols)
    with trio.fail_after(20):
        await feed.wait_confirmed()
    await rec.until(lambda: rec.flowing(symbols, 0.0), 15)


async def settle(ledger: Ledger, rec: Recorder, timeout: float = 20.0) -> dict[str, int]:
    """The ledger now, once the feed delivered past it (or dropped what its policy drops)."""
    await trio.sleep(1.0)
    upto = ledger.last_ids()
    await rec.until(lambda: ledger.caught_up(rec, upto), timeout)
    return upto


# -- phases ----------------------------------------------------------------------------------


async def steady(name: str, args: argparse.Namespace, link: Link) -> dict[str, Any]:
    symbols = SYMBOLS[name]
    rec = Recorder(name)
    async with (
        open_simulator(name, config=sim_config(name, args.tick_interval), seed=args.seed) as sim,
        # every quote carries a trade: ``block`` them, so each must be delivered (the default,
        # ``conflate``, keeps the latest of a contract's waiting quotes: the bandwidth phase)
        tickactors.open_feed(
            venue_for(name, sim.url), seed=args.seed, policies="quotes=block"
        ) as feed,
        trio.open_nursery() as nursery,
    ):
        ledger = Ledger(name, sim, symbols)
        nursery.start_soon(rec.follow_events, feed)
        nursery.start_soon(rec.follow_items, feed)
        nursery.start_soon(ledger.keep_copying)
        await started(name, feed, rec, symbols)
        clean_from = trio.current_time()
        await trio.sleep(CLEAN)
        before = snmp()
        impaired_at = trio.current_time()
        impairment = Impairment(args.loss, args.delay, args.jitter, args.reorder, args.duplicate)
        link.impair(sim.port, impairment)
        await trio.sleep(args.duration)
        tcp = await tcp_info(sim.port)
        during = snmp()
        healed_at = trio.current_time()
        emulator = link.heal()
        upto = await settle(ledger, rec)
        nursery.cancel_scope.cancel()
        dropped = dropped_by_symbol(feed)
        return {
            "venue": name,
            "phase": "steady",
            "backend": link.backend,
            "impairment": impairment.describe(),
            "duration": args.duration,
            "stale_after": feed._slots.kit.stale_after,
            "tick_interval": args.tick_interval,
            "ticks_per_second": round(
                sum(len(v) for v in rec.items.values()) / (trio.current_time() - clean_from), 1
            ),
            "stale": len(rec.named("stale")),
            "reconnects": feed.statistics()["connection"]["connects"] - 1,
            "longest_silence": round(rec.longest_silence(impaired_at, healed_at), 3),
            "latency_clean": percentiles(latencies(ledger, rec, clean_from, impaired_at)),
            "latency_impaired": percentiles(latencies(ledger, rec, impaired_at, healed_at)),
            "ledger": account(ledger, rec, upto, dropped),
            "tcp": tcp,
            "snmp": {k: during[k] - before.get(k, 0) for k in during},
            "emulator": emulator,
            "venue_side": venue_figures(sim),
            "feed": feed_figures(feed),
            "events": [e.event for e in rec.events if e.event not in ("subscribed", "clock")],
        }


async def bandwidth(name: str, args: argparse.Namespace, link: Link) -> dict[str, Any]:
    symbols = SYMBOLS[name]
    # The venues' default policies: AllTick trades ``block`` (nothing may be dropped),
    # Tradovate quotes ``conflate`` (a contract's waiting quotes give way to its latest:
    # when the backlog pours in, some must go, and ``gap`` events must count them).
    rec = Recorder(name)
    async with (
        open_simulator(name, config=sim_config(name, args.tick_interval), seed=args.seed) as sim,
        tickactors.open_feed(venue_for(name, sim.url), seed=args.seed) as feed,
        trio.open_nursery() as nursery,
    ):
        ledger = Ledger(name, sim, symbols)
        nursery.start_soon(rec.follow_events, feed)
        nursery.start_soon(rec.follow_items, feed)
        nursery.start_soon(ledger.keep_copying)
        await started(name, feed, rec, symbols)
        await trio.sleep(1.0)
        sent_before, measured_from = lo_tx_bytes(), trio.current_time()
        await trio.sleep(CLEAN)
        needed = (lo_tx_bytes() - sent_before) * 8 / (trio.current_time() - measured_from)
        rate = int(needed * args.cap)
        cut_at = trio.current_time()
        netem_link.cap_rate(rate, latency=args.queue)
        await trio.sleep(args.cut)
        tbf = netem_link.restore_rate(latency=args.queue)
        restored_at = trio.current_time()
        caught = await rec.until(lambda: rec.event("caught_up", restored_at), 60)
        upto = await settle(ledger, rec, timeout=60)
        netem_link.remove_qdisc()
        nursery.cancel_scope.cancel()
        lagging = rec.named("lagging", cut_at)
        return {
            "venue": name,
            "phase": "bandwidth",
            "needed_bps": int(needed),
            "capped_bps": rate,
            "queue_s": args.queue,
            "cut": args.cut,
            "tbf": tbf,
            "lagging": [{"at": round(e.time - cut_at, 3), **e.detail} for e in lagging],
            "caught_up": {"at": round(caught.time - restored_at, 3), **caught.detail},
            "stale": len(rec.named("stale")),
            "reconnects": feed.statistics()["connection"]["connects"] - 1,
            "ledger": account(ledger, rec, upto, dropped_by_symbol(feed)),
            "gaps": gap_counts(rec),
            "venue_side": venue_figures(sim),
            "feed": feed_figures(feed),
            "events": [
                [round(e.time - cut_at, 3), e.event]
                for e in rec.events
                if e.event not in ("subscribed", "clock")
            ],
        }


async def rotation(name: str, args: argparse.Namespace, link: Link) -> dict[str, Any]:
    symbols = SYMBOLS[name]
    rec = Recorder(name)
    async with (
        open_simulator(name, config=sim_config(name, args.tick_interval), seed=args.seed) as sim,
        tickactors.open_feed(
            venue_for(name, sim.url),
            stale_after=BLACKHOLE_STALE_AFTER,
            connect_timeout=2.0,
            max_connection_age=14.0,
            rotation_patience=5.0,
            backoff_base=0.5,
            backoff_cap=1.0,
            seed=args.seed,
        ) as feed,
        trio.open_nursery() as nursery,
    ):
        ledger = Ledger(name, sim, symbols)
        nursery.start_soon(rec.follow_events, feed)
        nursery.start_soon(rec.follow_items, feed)
        nursery.start_soon(ledger.keep_copying)
        await started(name, feed, rec, symbols)
        rotating = await rec.until(lambda: rec.event("rotating", 0.0), 20)
        connected = await rec.until(partial(rec.event, "connected", rotating.time), 10)
        old, new = rotating.connection, connected.connection
        cutting_at = trio.current_time()
        await blackhole(sim.port, "-A")
        cut_at = trio.current_time()  # cut for sure from here (iptables-restore is atomic)
        stales = {}
        for number in (old, new):
            stale = await rec.until(partial(rec.event, "stale", cut_at, number), 15)
            stales[number] = stale
        detected_at = max(s.time for s in stales.values())
        await blackhole(sim.port, "-D")
        healed_at = trio.current_time()
        with trio.fail_after(30):
            await rec.until(lambda: rec.event("connected", healed_at), 30)
            await feed.wait_confirmed()
        confirmed_at = trio.current_time()
        flowing_at = await rec.until(lambda: rec.flowing(symbols, confirmed_at), 15)
        upto = await settle(ledger, rec)
        nursery.cancel_scope.cancel()
        return {
            "venue": name,
            "phase": "rotation",
            "stale_after": BLACKHOLE_STALE_AFTER,
            "old": old,
            "new": new,
            "cut_after_rotating": round(cut_at - rotating.time, 3),
            "cut_took": round(cut_at - cutting_at, 4),
            "stale": {
                ("old" if n == old else "new"): {
                    "after_cut": round(s.time - cut_at, 4),
                    "silent_for": s.detail["silent_for"],
                }
                for n, s in stales.items()
            },
            "rotation_events": [
                e.event
                for e in rec.events
                if e.event in ("rotating", "rotated", "rotation_failed", "handover_incomplete")
            ],
            "heal_to_flowing": round(flowing_at - healed_at, 3),
            "missing_outside_cut": missing_outside(
                ledger, rec, upto, cutting_at - 0.25, flowing_at
            ),
            "detected_to_heal": round(healed_at - detected_at, 3),
            "ledger": account(ledger, rec, upto, dropped_by_symbol(feed)),
            "venue_side": venue_figures(sim),
            "feed": feed_figures(feed),
            "events": [
                [round(e.time - cut_at, 3), e.connection, e.event]
                for e in rec.events
                if e.event not in ("subscribed", "clock")
            ],
        }


async def order(name: str, args: argparse.Namespace, link: Link) -> dict[str, Any]:
    assert name == "tradovate", "AllTick takes no requests of the user's own"
    symbols = SYMBOLS[name]
    rec = Recorder(name)
    request_timeout = 30.0
    async with (
        open_simulator(name, config=sim_config(name, args.tick_interval), seed=args.seed) as sim,
        tickactors.open_feed(
            venue_for(name, sim.url),
            stale_after=BLACKHOLE_STALE_AFTER,
            request_timeout=request_timeout,
            connect_timeout=2.0,
            backoff_base=0.5,
            backoff_cap=1.0,
            seed=args.seed,
        ) as feed,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(rec.follow_events, feed)
        nursery.start_soon(rec.follow_items, feed)
        await started(name, feed, rec, symbols)
        user = sim.tradovate.accounts.user("sim-user")
        body = {
            "accountSpec": user.account_name,
            "accountId": user.account_id,
            "action": "Buy",
            "symbol": symbols[0],
            "orderQty": 1,
            "orderType": "Market",
            "isAutomated": True,
        }
        placed = await feed.request("order/placeorder", body=body)  # the path works
        await trio.sleep(0.5)
        cutting_at = trio.current_time()
        await blackhole(sim.port, "-A")
        cut_at = trio.current_time()
        outcome: dict[str, Any] = {}

        async def place() -> None:
            start = trio.current_time()
            try:
                await feed.request("order/placeorder", body=body)
                outcome["result"] = "answered"
            except tickactors.FeedError as exc:
                outcome["result"] = type(exc).__name__
            outcome["took"] = trio.current_time() - start
            outcome["at"] = trio.current_time()

        nursery.start_soon(place)
        stale = await rec.until(lambda: rec.event("stale", cut_at), 15)
        await rec.until(lambda: outcome.get("at"), request_timeout + 5)
        await blackhole(sim.port, "-D")
        healed_at = trio.current_time()
        # The feed gave the socket up, but its kernel still holds what was written to it and
        # retransmits it until the socket dies: watch whether the order lands after all.
        late_at = None
        with trio.move_on_after(10.0):
            # the simulator has no event to wait on: polled, 10 ms resolution
            while sim.stats.requests_by_endpoint["order/placeorder"] < 2:  # noqa: ASYNC110
                await trio.sleep(0.01)
            late_at = trio.current_time()
        await rec.until(lambda: rec.event("authorized", healed_at), 30)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
        by_connection = {
            conn.id: sum(1 for _, endpoint, *_ in conn.requests if endpoint == "order/placeorder")
            for conn in sim.connections
        }
        return {
            "venue": name,
            "phase": "order",
            "stale_after": BLACKHOLE_STALE_AFTER,
            "request_timeout": request_timeout,
            "first_order": placed,
            "result": outcome["result"],
            "request_took": round(outcome["took"], 4),
            "stale_after_cut": round(stale.time - cut_at, 4),
            "silent_for": stale.detail["silent_for"],
            "failed_after_stale": round(outcome["at"] - stale.time, 4),
            "orders_received": sim.stats.requests_by_endpoint["order/placeorder"],
            "late_order_after_heal": None if late_at is None else round(late_at - healed_at, 3),
            "cut_took": round(cut_at - cutting_at, 4),
            "orders_on_live_connections": by_connection,
            "venue_side": venue_figures(sim),
            "feed": feed_figures(feed),
            "events": [
                [round(e.time - cut_at, 3), e.connection, e.event]
                for e in rec.events
                if e.event not in ("subscribed", "clock")
            ],
        }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    # Ethernet's MTU, not lo's 64 KiB: TCP segments the size of a real path's (a capped
    # link would otherwise pass one 64 KiB segment per several seconds, or drop it whole)
    await trio.run_process(["ip", "link", "set", "lo", "up", "mtu", str(MTU)])
    backend = args.backend
    reasons: list[str] = []
    if backend == "auto":
        backend, reasons = netem_link.probe()
        if backend is None:
            raise SystemExit(f"no way to impair the link here: {'; '.join(reasons)}")
    link = Link(backend, seed=args.seed)
    phase = {"steady": steady, "bandwidth": bandwidth, "rotation": rotation, "order": order}
    try:
        with trio.fail_after(args.duration + args.cut + 240):
            result = await phase[args.phase](args.venue, args, link)
    finally:
        link.close()
    result["unavailable"] = reasons
    return result


def fresh_namespace() -> bool:
    """A network namespace of our own has ``lo`` and nothing else: never touch the host's."""
    return [iface for _, iface in socket.if_nameindex()] == ["lo"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--venue", choices=sorted(SYMBOLS), required=True)
    parser.add_argument("--phase", choices=PHASES, required=True)
    parser.add_argument("--duration", type=float, default=90.0, help="steady: impaired seconds")
    parser.add_argument("--cut", type=float, default=30.0, help="bandwidth: capped seconds")
    parser.add_argument("--cap", type=float, default=0.3, help="bandwidth: cap / needed rate")
    parser.add_argument(
        "--queue",
        type=float,
        default=QUEUE,
        help="bandwidth: seconds of traffic the capped link queues before it drops",
    )
    for name in ("loss", "delay", "jitter", "reorder", "duplicate"):
        parser.add_argument(
            f"--{name}",
            type=float,
            default=getattr(BAD_NETWORK, name),
            help=f"steady: {name} ({'seconds' if name in ('delay', 'jitter') else 'fraction'})",
        )
    parser.add_argument("--tick-interval", type=float, default=TICK_INTERVAL)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=("auto", "netem", "nfqueue"), default="auto")
    parser.add_argument("--verbose", action="store_true", help="every event on stderr")
    args = parser.parse_args()
    VERBOSE = args.verbose
    if not fresh_namespace():
        sys.exit(
            "refusing to change lo's qdisc and iptables here: run me under `unshare --net` as root"
        )
    print(json.dumps(trio.run(main, args)), flush=True)
