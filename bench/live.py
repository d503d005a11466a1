"""Stall detection, heartbeat punctuality and recovery, in real time (``bench/run.py``).

Every scenario wraps the default transport (``connect_batched``) in
:class:`Recorder`, which notes the Trio time of every connection attempt, of every
``receive_many`` return (the moment the feed's reader sees data) and of every
message sent. No hook in ``src`` is needed.

detect_and_heartbeat
    One process, seven feeds. Six read the replay server (``bench/_server.py``) at full
    speed with ``heartbeat_interval=hb`` (four drain ``get_batch`` at once, two are slow
    consumers: ``buffer=10_000``, 50 ms of sleep per batch, so their readers sit in
    back-pressure); six rather than three, so that the heartbeat's p99 rests on over a
    hundred intervals and not on the second-worst of a few dozen. The seventh, the probe,
    reads an in-process simulator (``tickactors.sim``, a trade every ~10 ms per symbol)
    with ``stale_after``; the simulator is stalled (``sim.faults.stall()``) again and
    again. Detection lateness = time of the ``stale`` event - (last ``receive_many``
    return on that connection + ``stale_after``). A timer task (``sleep_until`` every
    50 ms) records how late Trio wakes it under the same load. Heartbeat error =
    |interval between two 22000 sends - hb| on the six loaded feeds (client-side send
    times, at ``Transport.send``).
    The part runs as ``python -m tickactors`` runs a feed: what the process holds at its
    start is frozen out of full collections (``gc.freeze()``); ``gc_full_collections`` and
    ``gc_full_pause_ms_max`` say how many full collections ran meanwhile and the longest.
    Without the freeze each took 17-20 ms here (docs/performance.md, "Garbage
    collection"), enough to fail the heartbeat's 20 ms on a busy host.
recovery
    A feed on the in-process simulator, ``backoff_base`` 1 ms, ``reconnect_floor`` 0;
    ``sim.faults.drop()`` resets the TCP, each time at least ``request_spacing`` (1.17 s)
    after the last subscription request, which the reconciler keeps across reconnects.
    Recovery = (``disconnected`` event - drop) + (first tick delivered to ``get_batch``
    after the new connection's ``subscribed`` event - start of the new connection
    attempt, i.e. the transport factory's call): only the backoff sleep between the
    two is left out.

Churn is in ``bench/churn.py``.
"""

from __future__ import annotations

import gc
import itertools
import random
import ssl
import time
from collections.abc import Callable
from typing import Any

import orjson
import trio
import trio.lowlevel

import tickactors
from _common import TOKEN, Server, percentile
from tickactors._feed.feed import request_spacing
from tickactors._net.transport import Transport
from tickactors._secret import Secret
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick

SYMBOLS = ["BTCUSDT", "ETHUSDT", "EURUSD", "700.HK"]
HEARTBEAT, REQUESTS = 22000, (22002, 22004, 22006)


class Recorder:
    """A transport factory around ``connect_batched`` that notes times (Trio clock)."""

    def __init__(self) -> None:
        self.attempts: list[float] = []
        self.last_receive = 0.0
        self.heartbeats: list[list[float]] = []  # per connection
        self.requests: list[float] = []  # subscription requests sent
        self.sends: list[float] = []  # every message sent

    async def factory(
        self,
        nursery: trio.Nursery,
        url: str,
        token: Secret | None,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
    ) -> Transport:
        self.attempts.append(trio.current_time())
        inner = await tickactors.connect_batched(nursery, url, token, ssl_context, connect_timeout)
        self.heartbeats.append([])
        return _Recording(inner, self, self.heartbeats[-1])


class _Recording:
    def __init__(self, inner: Transport, rec: Recorder, beats: list[float]) -> None:
        self._inner, self._rec, self._beats = inner, rec, beats

    async def receive(self) -> str | bytes:
        message = await self._inner.receive()
        self._rec.last_receive = trio.current_time()
        return message

    async def receive_many(self, max_messages: int) -> list[str | bytes]:
        messages = await self._inner.receive_many(max_messages)
        self._rec.last_receive = trio.current_time()
        return messages

    async def send(self, message: str) -> None:
        now = trio.current_time()
        cmd = orjson.loads(message).get("cmd_id")
        self._rec.sends.append(now)
        if cmd == HEARTBEAT:
            self._beats.append(now)
        elif cmd in REQUESTS:
            self._rec.requests.append(now)
        await self._inner.send(message)

    async def aclose(self, *, polite: bool = True) -> None:
        await self._inner.aclose(polite=polite)


class Events:
    """Collects a feed's health events; ``wait`` for the next one matching."""

    def __init__(self, feed: tickactors.Feed) -> None:
        self.feed = feed
        self.seen: list[tickactors.HealthEvent] = []
        self._changed = trio.Event()

    async def run(self) -> None:
        async for event in self.feed.events():
            self.seen.append(event)
            self._changed.set()
            self._changed = trio.Event()

    async def wait(self, name: str, after: int) -> tickactors.HealthEvent:
        """The first ``name`` event at index ``after`` or later."""
        while True:
            for event in self.seen[after:]:
                if event.event == name:
                    return event
            await self._changed.wait()


async def _drain(feed: tickactors.Feed, counter: list[int], pause: float = 0.0) -> None:
    try:
        while True:
            counter[0] += len(await feed.get_batch())
            if pause:
                await trio.sleep(pause)
    except (trio.EndOfChannel, tickactors.FeedClosedError):
        pass  # the feed closed


#: The loaded feeds of :func:`detect_and_heartbeat`: these drain at full speed, the rest
#: (``SLOW``) are slow consumers.
FULL_SPEED = 4
SLOW = 2


class FullCollections:
    """The garbage collector's full (generation 2) collections while installed: how many,
    and the longest, in ms of wall time (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._started) * 1000)

    def summary(self) -> dict[str, Any]:
        return {
            "gc_full_collections": len(self.pauses),
            "gc_full_pause_ms_max": round(max(self.pauses, default=0.0), 3),
        }


async def detect_and_heartbeat(
    server: Server, *, cycles: int, min_seconds: float, stale_after: float, hb: float, log: Any
) -> dict[str, Any]:
    """Run :func:`_detect_and_heartbeat` as the runner runs a feed: with what the process
    holds at the start frozen out of full collections (``gc.freeze()``, as ``python -m
    tickactors`` does), and note the full collections meanwhile; thawed after."""
    full = FullCollections()
    gc.collect()
    gc.freeze()
    gc.callbacks.append(full.callback)
    try:
        result = await _detect_and_heartbeat(
            server, cycles=cycles, min_seconds=min_seconds, stale_after=stale_after, hb=hb, log=log
        )
    finally:
        gc.callbacks.remove(full.callback)
        gc.unfreeze()
    result.update(full.summary())
    log(
        f"  full garbage collections: {result['gc_full_collections']}, the longest "
        f"{result['gc_full_pause_ms_max']:.2f} ms (the heap of the start frozen)"
    )
    return result


async def _detect_and_heartbeat(
    server: Server, *, cycles: int, min_seconds: float, stale_after: float, hb: float, log: Any
) -> dict[str, Any]:
    rng = random.Random(5)
    lateness: list[float] = []
    timer_late: list[float] = []
    loaded = [Recorder() for _ in range(FULL_SPEED + SLOW)]
    flowing = [[0] for _ in loaded]
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i, rec in enumerate(loaded):
            venue = AllTick(url=server.url, token=TOKEN, heartbeat_interval=hb)
            feed = await nursery.start(
                _feed_task,
                venue,
                rec,
                {"buffer": 10_000},
                flowing[i],
                0.05 if i >= FULL_SPEED else 0.0,
            )
            feed.subscribe(*SYMBOLS)
        config = SimConfig(tick_interval=0.01, heartbeat_timeout=None)
        async with open_simulator("alltick", config=config, seed=3) as sim:
            probe_rec = Recorder()
            venue = AllTick(url=sim.url, token=TOKEN, reconnect_floor=0.0)
            async with tickactors.open_feed(
                venue,
                transport_factory=probe_rec.factory,
                stale_after=stale_after,
                backoff_base=0.001,
                backoff_cap=0.01,
            ) as probe:
                events = Events(probe)
                nursery.start_soon(events.run)
                nursery.start_soon(_drain, probe, [0])
                probe.subscribe(*SYMBOLS)
                nursery.start_soon(_timer_probe, timer_late)
                ticks_at_start = sum(c[0] for c in flowing)
                t_start = trio.current_time()
                done = 0
                while done < cycles or trio.current_time() - started < min_seconds:
                    with trio.fail_after(10):
                        await probe.wait_confirmed()
                    await trio.sleep(rng.uniform(0.1, 0.3))
                    mark = len(events.seen)
                    sim.faults.stall()
                    with trio.fail_after(stale_after + 10):
                        stale = await events.wait("stale", mark)
                    lateness.append(stale.time - (probe_rec.last_receive + stale_after))
                    sim.faults.resume()
                    with trio.fail_after(10):
                        await events.wait("subscribed", mark)
                    done += 1
                elapsed = trio.current_time() - t_start
                load_rate = (sum(c[0] for c in flowing) - ticks_at_start) / elapsed
        nursery.cancel_scope.cancel()
    fast, slow = (
        [b - a - hb for rec in part for beats in rec.heartbeats for a, b in _pairs(beats)]
        for part in (loaded[:FULL_SPEED], loaded[FULL_SPEED:])
    )
    errors = [abs(e) * 1000 for e in fast + slow]
    ms = [x * 1000 for x in lateness]
    log(
        f"  detection: {len(ms)} stalls, late by p50 {percentile(ms, 0.5):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms, while the loaded feeds took {load_rate:,.0f} ticks/s"
    )
    timer = [x * 1000 for x in timer_late]
    log(
        f"  a Trio timer in the same process wakes late by p50 {percentile(timer, 0.5):.2f} ms, "
        f"p99 {percentile(timer, 0.99):.2f} ms ({len(timer)} wake-ups)"
    )
    log(
        f"  heartbeat: {len(errors)} intervals ({len(fast)} full speed, {len(slow)} slow "
        f"consumer), |error| p50 {percentile(errors, 0.5):.2f} ms, "
        f"p99 {percentile(errors, 0.99):.2f} ms, max {max(errors, default=0):.2f} ms"
    )
    return {
        "detection_ms_p50": round(percentile(ms, 0.5), 3),
        "detection_ms_p99": round(percentile(ms, 0.99), 3),
        "detection_ms_max": round(max(ms, default=0.0), 3),
        "detection_stalls": len(ms),
        "detection_stale_after_s": stale_after,
        "detection_background_ticks_per_s": round(load_rate),
        "timer_wake_late_ms_p50": round(percentile(timer, 0.5), 3),
        "timer_wake_late_ms_p99": round(percentile(timer, 0.99), 3),
        "heartbeat_jitter_ms_p50": round(percentile(errors, 0.5), 3),
        "heartbeat_jitter_ms_p99": round(percentile(errors, 0.99), 3),
        "heartbeat_jitter_ms_max": round(max(errors, default=0.0), 3),
        "heartbeat_jitter_ms_p99_slow_consumer": round(
            percentile([abs(e) * 1000 for e in slow], 0.99), 3
        ),
        "heartbeat_intervals": len(errors),
        "heartbeat_interval_s": hb,
    }


async def _timer_probe(out: list[float]) -> None:
    """How late a Trio timer wakes in this process: what bounds any deadline's precision."""
    while True:
        due = trio.current_time() + 0.05
        await trio.sleep_until(due)
        out.append(trio.current_time() - due)


def _pairs(values: list[float]) -> list[tuple[float, float]]:
    return list(itertools.pairwise(values))


async def _feed_task(
    venue: AllTick,
    rec: Recorder,
    options: dict[str, Any],
    counter: list[int],
    pause: float,
    task_status: trio.TaskStatus[tickactors.Feed] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with tickactors.open_feed(venue, transport_factory=rec.factory, **options) as feed:
        task_status.started(feed)
        await _drain(feed, counter, pause)


async def recovery(*, cycles: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(7)
    totals: list[float] = []
    parts: dict[str, list[float]] = {"notice": [], "connect": [], "confirm": [], "tick": []}
    config = SimConfig(tick_interval=0.004, heartbeat_timeout=None)
    async with open_simulator("alltick", config=config, seed=4) as sim, trio.open_nursery() as n:
        rec = Recorder()
        venue = AllTick(url=sim.url, token=TOKEN, reconnect_floor=0.0)
        async with tickactors.open_feed(
            venue,
            transport_factory=rec.factory,
            backoff_base=0.001,
            backoff_cap=0.001,
            healthy_after=0.05,
        ) as feed:
            events = Events(feed)
            n.start_soon(events.run)
            feed.subscribe(*SYMBOLS)
            with trio.fail_after(10):
                await feed.wait_confirmed()
            spacing = request_spacing(venue.dialect)
            for _ in range(cycles):
                # The reconciler spaces subscription requests by ``spacing`` (1.17 s) even
                # across reconnects (by design): drop only once that has passed, so the
                # wait measured is the reconnect's, not the spacing's.
                await trio.sleep_until(rec.requests[-1] + spacing + rng.uniform(0.02, 0.1))
                mark, attempts = len(events.seen), len(rec.attempts)
                t_drop = trio.current_time()
                sim.faults.drop()
                with trio.fail_after(10):
                    gone = await events.wait("disconnected", mark)
                    confirmed = await events.wait("subscribed", mark)
                    connected = await events.wait("connected", mark)
                    while True:
                        batch = await feed.get_batch()
                        t_tick = trio.current_time()
                        if t_tick >= confirmed.time and batch[-1].received_at >= connected.time:
                            break
                t_attempt = rec.attempts[attempts]
                parts["notice"].append(gone.time - t_drop)
                parts["connect"].append(connected.time - t_attempt)
                parts["confirm"].append(confirmed.time - connected.time)
                parts["tick"].append(t_tick - confirmed.time)
                totals.append(gone.time - t_drop + t_tick - t_attempt)
        n.cancel_scope.cancel()
    ms = [x * 1000 for x in totals]
    medians = {k: round(percentile(v, 0.5) * 1000, 3) for k, v in parts.items()}
    log(
        f"  recovery: {len(ms)} drops, p50 {percentile(ms, 0.5):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms (medians: {medians})"
    )
    return {
        "recovery_ms_p50": round(percentile(ms, 0.5), 3),
        "recovery_ms_p99": round(percentile(ms, 0.99), 3),
        "recovery_ms_max": round(max(ms, default=0.0), 3),
        "recovery_drops": len(ms),
        "recovery_parts_ms_p50": medians,
    }
