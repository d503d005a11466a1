"""Churn: 10,000 random subscribe/unsubscribe calls in one second (``bench/run.py``).

A feed on the in-process simulator with AllTick's one-request-per-second rule on (no
symbol cap); 10,000 random ``subscribe``/``unsubscribe`` calls over 200 symbols (drawn
beforehand) in 100 slices of 100, one slice every 10 ms, starting with a fresh request
budget. Cost = the time in the calls + the time of every step of the feed's reconciler
actor (timed around each step, where the changes are handled and requests decided) from
the first call until the feed has converged; ``churn_ops_per_s`` = calls / cost. Requests
are counted at ``Transport.send`` (:class:`live.Recorder`).

For scale, the process's whole CPU time over the same span is reported beside it
(``churn_process_cpu_ms``), and over one second of the same loop without calls just
before (``churn_idle_process_cpu_ms``): the simulator's ticks, the wake-ups and the
kernel's share make most of both.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import trio

import tickactors
from _common import TOKEN
from live import Recorder, _drain
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick


class _StepTimer:
    """Times every step of a reconciler actor while in use (wraps its ``_step``)."""

    def __init__(self, actor: Any) -> None:
        self.actor, self.seconds, self.count = actor, 0.0, 0

    def __enter__(self) -> None:
        step = self.actor._step

        def timed(item: Any) -> None:
            t0 = time.perf_counter()
            try:
                step(item)
            finally:
                self.seconds += time.perf_counter() - t0
                self.count += 1

        self.actor._step = timed

    def __exit__(self, *exc: object) -> None:
        del self.actor._step


async def _idle_cpu(slices: int) -> float:
    """The process's CPU time over one second of the churn loop without calls."""
    start, cpu_start = trio.current_time(), time.process_time()
    for k in range(slices):
        await trio.sleep_until(start + (k + 1) / slices)
    return time.process_time() - cpu_start


async def churn(*, calls: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(11)
    universe = [f"SYM{i:04d}" for i in range(200)]
    config = SimConfig(tick_interval=1.0, max_symbols=1000, heartbeat_timeout=None)
    async with open_simulator("alltick", config=config, seed=5) as sim, trio.open_nursery() as n:
        rec = Recorder()
        venue = AllTick(url=sim.url, token=TOKEN)
        async with tickactors.open_feed(venue, transport_factory=rec.factory) as feed:
            n.start_soon(_drain, feed, [0])
            feed.subscribe(*rng.sample(universe, 50))
            with trio.fail_after(15):
                await feed.wait_converged()
            slices, per = 100, max(1, calls // 100)
            idle_cpu = await _idle_cpu(slices)
            await trio.sleep(0.2)  # a fresh request budget: over 1.17 s since the last
            in_calls = 0.0
            # The random calls are drawn before the clock starts: their cost is the
            # benchmark's, not the feed's.
            plan = [
                [(feed.subscribe if rng.random() < 0.5 else feed.unsubscribe, symbol)
                 for symbol in rng.choices(universe, k=per)]
                for _ in range(slices)
            ]  # fmt: skip
            # The cost per call: the calls themselves plus every step of the reconciler
            # actor until converged (timed around each step), where the changes are handled.
            # The process's whole CPU time over the same span is reported beside it, with
            # the same span idle, for scale: it is mostly the simulator's ticks and wake-ups.
            steps = _StepTimer(feed._reconciler)
            t_first = trio.current_time()
            cpu_start = time.process_time()
            with steps:
                for k, calls_of_slice in enumerate(plan):
                    t0 = time.perf_counter()
                    for call, symbol in calls_of_slice:
                        call(symbol)
                    in_calls += time.perf_counter() - t0
                    await trio.sleep_until(t_first + (k + 1) / slices)
                t_last = trio.current_time()
                converged_s = math.inf
                with trio.move_on_after(10):
                    await feed.wait_converged()
                    converged_s = trio.current_time() - t_last
            cpu = time.process_time() - cpu_start
            sent = [t for t in rec.requests if t >= t_first]
            wire = sorted(t for t in rec.sends if t >= t_first - 1.0)
            max_in_1s = max((sum(1 for u in wire if t <= u < t + 1.0) for t in wire), default=0)
            rate_limited = feed.statistics()["events"].get("rate_limited", 0)
        n.cancel_scope.cancel()
    total = slices * per
    cost = in_calls + steps.seconds
    ops = total / cost if cost else 0.0
    log(
        f"  churn: {total:,} calls, {ops:,.0f} calls/s with the reconciler's "
        f"{steps.count} steps ({total / in_calls if in_calls else 0:,.0f} calls/s in the calls "
        f"alone; the process: {cpu * 1e3:.0f} ms of CPU, {idle_cpu * 1e3:.0f} ms idle), "
        f"{len(sent)} requests on the wire, at most {max_in_1s} frame(s) in any 1 s, "
        f"converged {converged_s:.3f} s after the last call, rate_limited events {rate_limited}"
    )
    return {
        "churn_calls": total,
        "churn_ops_per_s": round(ops),
        "churn_call_only_ops_per_s": round(total / in_calls) if in_calls else 0,
        "churn_reconciler_steps": steps.count,
        "churn_process_cpu_ms": round(cpu * 1e3, 1),
        "churn_idle_process_cpu_ms": round(idle_cpu * 1e3, 1),
        "churn_requests_sent": len(sent),
        "churn_wire_max_frames_in_1s": max_in_1s,
        "churn_converged_s": round(converged_s, 3) if math.isfinite(converged_s) else None,
        "churn_rate_limited": rate_limited,
    }
