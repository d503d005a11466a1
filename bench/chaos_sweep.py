"""Many chaos soaks on the virtual clock: one per seed, and what they add up to.

    python bench/chaos_sweep.py --venue tradovate --seeds 40 --duration 300

Each seed runs ``python -m tickactors chaos --clock virtual`` in process (the same
soak as the command). The last stdout line is one JSON object: runs, runs that lost
something (with their seeds), faults injected and recovered in all, and the
percentiles of detection and recovery over every fault of every run.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import trio
import trio.testing

from tickactors._chaos.ledger import Ledger, percentile
from tickactors._chaos.soak import SoakOptions, soak


def sweep(venue: str, seeds: range, duration: float) -> dict[str, Any]:
    failed: list[int] = []
    injected = recovered = ghosts = overdue = unhandled = 0
    recoveries: list[float] = []
    detections: list[float] = []
    started = time.perf_counter()
    for seed in seeds:
        ledger = Ledger()
        options = SoakOptions(venue=venue, duration=duration, seed=seed)
        clock = trio.testing.MockClock(autojump_threshold=0)
        summary = trio.run(soak, options, None, ledger, clock=clock)
        if not summary["ok"]:
            failed.append(seed)
        injected += summary["faults_injected"]
        recovered += summary["faults_recovered"]
        ghosts += summary["ghost_ticks_delivered"]
        overdue += summary["requests_past_deadline"]
        unhandled += summary["unhandled_exceptions"]
        recoveries += [r.recovery for r in ledger.faults if r.recovery is not None]
        detections += [r.detection for r in ledger.faults if r.detection is not None]

    def ms(values: list[float], q: float) -> float | None:
        value = percentile(values, q)
        return None if value is None else round(value * 1000.0, 1)

    return {
        "venue": venue,
        "runs": len(seeds),
        "simulated_s_each": duration,
        "failed_seeds": failed,
        "faults_injected": injected,
        "faults_recovered": recovered,
        "ghost_ticks_delivered": ghosts,
        "requests_past_deadline": overdue,
        "unhandled_exceptions": unhandled,
        "detection_ms_p50": ms(detections, 50),
        "detection_ms_p99": ms(detections, 99),
        "recovery_ms_p50": ms(recoveries, 50),
        "recovery_ms_p99": ms(recoveries, 99),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", choices=("alltick", "tradovate"), default="alltick")
    parser.add_argument("--seeds", type=int, default=40, help="seeds 0 .. N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=300.0, help="simulated seconds each")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    result = sweep(args.venue, seeds, args.duration)
    print(json.dumps(result), flush=True)
    raise SystemExit(1 if result["failed_seeds"] else 0)


if __name__ == "__main__":
    main()
