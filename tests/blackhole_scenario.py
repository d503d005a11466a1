"""A real blackhole: the kernel drops the simulator's traffic in the middle of streaming.

Run as root inside a fresh network namespace (``tests/test_blackhole.py`` does this)::

    unshare --net -- python tests/blackhole_scenario.py --venue alltick   # or tradovate

It brings ``lo`` up, starts the simulator on 127.0.0.1 and a feed against it, and once
ticks flow, cuts the path with ``iptables -j DROP`` on ``lo`` for the simulator's port
(INPUT and OUTPUT, both directions; never REJECT). The TCP connection stays open: no
FIN, no RST, no close frame, only silence, so the feed's staleness deadline alone can
notice. While the path is cut, every reconnect sends SYNs into the void and must end at
the feed's own connect deadline, then back off. The scenario heals the path while the
feed waits out a backoff delay, waits until every symbol is confirmed again and ticks
for each, and prints what it measured as one JSON line on stdout.

Real time on purpose: kernel TCP cannot run under a mock clock. Every wait is bounded.
The rules live in the namespace and die with it, even if the scenario fails half-way.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import trio

import tickactors
from tickactors import HealthEvent
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

T = TypeVar("T")

STALE_AFTER = 3.0  # the feed's staleness deadline in this scenario
CONNECT_TIMEOUT = 2.0  # the feed's connect deadline: the first SYN and one retransmission
FAILED_ATTEMPTS = 2  # connect attempts that must fail into the blackhole before healing
SYMBOLS = {"alltick": ("BTCUSDT", "ETHUSDT", "EURUSD"), "tradovate": ("ESZ6", "NQZ6")}
TOKEN = "blackhole-token-3c3c"
SEED = 4


class Recorder:
    """Every health event and every tick's arrival time, and a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[HealthEvent] = []
        self.ticks: list[tuple[float, str]] = []
        self._changed = trio.Event()

    def _note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def follow_events(self, feed: tickactors.Feed) -> None:
        async for event in feed.events():
            self.events.append(event)
            self._note()

    async def follow_ticks(self, feed: tickactors.Feed) -> None:
        async for batch in feed.batches():
            now = trio.current_time()
            self.ticks.extend((now, item.symbol) for item in batch)
            self._note()

    async def until(self, found: Callable[[], T | None], timeout: float) -> T:
        with trio.fail_after(timeout):
            while (result := found()) is None:
                await self._changed.wait()
        return result

    def event(self, name: str, after: float) -> HealthEvent | None:
        return next((e for e in self.events if e.event == name and e.time >= after), None)

    def events_between(self, start: float, end: float) -> list[HealthEvent]:
        return [e for e in self.events if start <= e.time <= end]

    def ticks_after(self, symbols: tuple[str, ...], after: float) -> float | None:
        """When the last of ``symbols`` had its first tick after ``after`` (None: not yet)."""
        first: dict[str, float] = {}
        for at, symbol in self.ticks:
            if at >= after and symbol not in first:
                first[symbol] = at
        return max(first.values()) if set(symbols) <= first.keys() else None


async def run(*command: str) -> str:
    """Its stdout; its stderr goes to ours, so a failing tool explains itself."""
    result = await trio.run_process(list(command), capture_stdout=True)
    return result.stdout.decode()


def rules(port: int, action: str) -> bytes:
    """iptables-restore input that adds (``-A``) or deletes (``-D``) the blackhole."""
    lines = ["*filter"]
    for chain, iface in (("INPUT", "-i"), ("OUTPUT", "-o")):
        for side in ("--dport", "--sport"):
            lines.append(f"{action} {chain} {iface} lo -p tcp {side} {port} -j DROP")
    return ("\n".join([*lines, "COMMIT", ""])).encode()


async def blackhole(port: int, action: str) -> None:
    """Cut (``-A``) or heal (``-D``) both directions at once: iptables-restore is atomic."""
    await trio.run_process(["iptables-restore", "--noflush", "-w"], stdin=rules(port, action))


async def dropped_packets() -> dict[str, int]:
    """Packets our DROP rules caught, per chain (on lo, OUTPUT drops first; INPUT stays 0)."""
    out: dict[str, int] = {}
    for chain in ("INPUT", "OUTPUT"):
        listing = await run("iptables", "-w", "-L", chain, "-v", "-n", "-x")
        out[chain] = sum(
            int(line.split()[0]) for line in listing.splitlines()[2:] if " DROP " in line
        )
    return out


async def sockets(state: str, port: int) -> dict[str, int]:
    """How many TCP sockets in ``state`` are the client's (to port) and the server's (from it)."""
    listing = await run("ss", "-tnH", "state", state, f"( dport = :{port} or sport = :{port} )")
    counts = {"client": 0, "server": 0}
    for line in listing.splitlines():
        fields = line.split()  # Recv-Q Send-Q Local Peer (no State column under a filter)
        local, peer = fields[-2], fields[-1]
        if peer.endswith(f":{port}"):
            counts["client"] += 1
        elif local.endswith(f":{port}"):
            counts["server"] += 1
    return counts


def venue_for(name: str, url: str) -> tickactors.venues.Venue:
    return AllTick(url=url, token=TOKEN) if name == "alltick" else Tradovate(url=url, token=TOKEN)


async def scenario(name: str) -> dict[str, Any]:
    symbols = SYMBOLS[name]
    config = SimConfig(tokens={TOKEN}) if name == "tradovate" else SimConfig()
    rec = Recorder()
    async with (
        open_simulator(name, config=config, seed=SEED) as sim,
        tickactors.open_feed(
            venue_for(name, sim.url),
            stale_after=STALE_AFTER,
            connect_timeout=CONNECT_TIMEOUT,
            backoff_base=0.5,
            backoff_cap=1.0,  # delays in [floor, floor + 1]: AllTick 3-4 s, Tradovate 1-2 s
            seed=SEED,
        ) as feed,
        trio.open_nursery() as nursery,
    ):
        port = sim.port
        nursery.start_soon(rec.follow_events, feed)
        nursery.start_soon(rec.follow_ticks, feed)
        feed.subscribe(*symbols)
        with trio.fail_after(15):
            await feed.wait_confirmed()
        await rec.until(lambda: rec.ticks_after(symbols, 0.0), 10)
        await trio.sleep(0.5)  # streaming steadily

        # -- cut: the socket stays open, nothing crosses it any more ---------------------
        cut_at = trio.current_time()
        await blackhole(port, "-A")
        cut_took = trio.current_time() - cut_at
        await trio.sleep(1.0)
        established = await sockets("established", port)  # both ends, well before the deadline
        stale = await rec.until(lambda: rec.event("stale", cut_at), STALE_AFTER + 5)
        gone = await rec.until(lambda: rec.event("disconnected", cut_at), 5)
        # the client gave up, but its FIN never arrived: the server's end is still open
        after_detection = await sockets("established", port)
        closes_before_stale = [
            e.event
            for e in rec.events_between(cut_at, stale.time)
            if e.event in ("disconnected", "venue_closing", "shutdown", "auth_failed")
        ]
        last_tick = max((at for at, _ in rec.ticks if at <= stale.time), default=cut_at)

        # -- every reconnect dies at the connect deadline, then backs off ---------------
        attempts: list[dict[str, Any]] = []
        since = gone.time
        for _ in range(FAILED_ATTEMPTS):
            connecting = await rec.until(partial(rec.event, "connecting", since), 10)
            await trio.sleep(CONNECT_TIMEOUT / 2)
            syn_sent = await sockets("syn-sent", port)
            failed = await rec.until(partial(rec.event, "connect_failed", connecting.time), 10)
            backoff = await rec.until(partial(rec.event, "reconnecting", failed.time), 5)
            attempts.append(
                {
                    "took": round(failed.time - connecting.time, 3),
                    "message": failed.message,
                    "syn_sent": syn_sent["client"],
                    "then_delay": backoff.detail["delay"],
                    "attempt": backoff.detail["attempt"],
                }
            )
            since = backoff.time
        confirmed_during_cut = sorted(feed.confirmed())
        dropped = await dropped_packets()

        # -- heal while the feed waits out its backoff -----------------------------------
        await blackhole(port, "-D")
        healed_at = trio.current_time()
        delay_left = backoff.time + backoff.detail["delay"] - healed_at
        connected = await rec.until(lambda: rec.event("connected", healed_at), 15)
        with trio.fail_after(15):
            await feed.wait_confirmed()
        confirmed_at = trio.current_time()
        flowing_at = await rec.until(lambda: rec.ticks_after(symbols, confirmed_at), 10)
        after_heal = rec.events_between(healed_at, flowing_at)
        nursery.cancel_scope.cancel()
        return {
            "venue": name,
            "port": port,
            "stale_after": STALE_AFTER,
            "connect_timeout": CONNECT_TIMEOUT,
            "reconnect_floor": feed._dialect.reconnect_floor,
            "cut_took": round(cut_took, 3),
            "last_tick_after_cut": round(last_tick - cut_at, 3),
            "established_during_cut": established,
            "established_after_detection": after_detection,
            "detection_latency": round(stale.time - cut_at, 3),
            "stale_silent_for": stale.detail["silent_for"],
            "disconnect_reason": gone.detail["reason"],
            "closes_before_stale": closes_before_stale,
            "failed_attempts": attempts,
            "confirmed_during_cut": confirmed_during_cut,
            "dropped_packets": dropped,
            "backoff_delay_left_at_heal": round(delay_left, 3),
            "heal_to_connected": round(connected.time - healed_at, 3),
            "heal_to_confirmed": round(confirmed_at - healed_at, 3),
            "heal_to_tick": round(flowing_at - healed_at, 3),
            "events_after_heal": [e.event for e in after_heal],
            "confirmed": sorted(feed.confirmed()),
            "connects": feed.statistics()["connection"]["connects"],
            "violations": dict(sim.stats.violations),
            "events": [[round(e.time - cut_at, 3), e.event] for e in rec.events],
        }


async def main(name: str) -> dict[str, Any]:
    await run("ip", "link", "set", "lo", "up")
    with trio.fail_after(50):
        return await scenario(name)


def fresh_namespace() -> bool:
    """A network namespace of our own has ``lo`` and nothing else: never touch the host's."""
    return [iface for _, iface in socket.if_nameindex()] == ["lo"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--venue", choices=sorted(SYMBOLS), required=True)
    args = parser.parse_args()
    if not fresh_namespace():
        sys.exit("refusing to add iptables rules here: run me under `unshare --net` as root")
    print(json.dumps(trio.run(main, args.venue)), flush=True)
