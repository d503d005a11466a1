"""``python -m tickactors chaos``: a feed against the simulator under random faults and churn.

Progress goes to stdout as JSON lines (one per fault, ghost tick or overdue
request); the LAST line is the summary object. Exit status 0 only when nothing
was lost: every fault recovered, no ghost tick, no request past its deadline,
no unhandled exception, and the feed converged (desired == confirmed == what the
simulator streams) after the faults stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio
import trio.testing

from .._chaos.plan import COMMON_KINDS, TRADOVATE_KINDS
from .._chaos.setups import VENUES
from .._chaos.soak import SoakOptions, soak


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", choices=tuple(VENUES), default="alltick")
    parser.add_argument(
        "--duration", type=float, default=60.0, metavar="S",
        help="seconds of faults and churn (then up to --settle seconds to settle)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="repeat a run: same seed, same plan")
    parser.add_argument(
        "--settle", type=float, default=30.0, metavar="S",
        help="after the faults stop, at most this long for the feed to converge",
    )  # fmt: skip
    parser.add_argument(
        "--kinds", default=None, metavar="K,K",
        help="only these faults (default: every fault the venue's simulator knows: "
        f"{', '.join(COMMON_KINDS + TRADOVATE_KINDS)})",
    )  # fmt: skip
    parser.add_argument(
        "--clock", choices=("real", "virtual"), default="real",
        help="real: wall-clock time (the default); virtual: trio's MockClock jumps whenever "
        "every task waits, so --duration 86400 (a simulated day) runs in minutes. Same "
        "simulator, sockets and feed; only the waiting is skipped",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="print the summary line only")


def main(args: argparse.Namespace) -> int:
    """Run the soak on the clock ``--clock`` asks for."""
    if args.clock == "virtual":
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(run_from_args, args, clock=clock)
    return trio.run(run_from_args, args)


def _kinds(text: str | None, venue: str) -> tuple[str, ...] | None:
    if not text:
        return None
    known = COMMON_KINDS + (TRADOVATE_KINDS if venue == "tradovate" else ())
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise SystemExit(f"chaos: unknown fault kind(s) for {venue}: {', '.join(unknown)}")
    return kinds


async def run_from_args(args: argparse.Namespace) -> int:
    if not args.duration > 0 or not args.settle > 0:
        print("chaos: --duration and --settle must be > 0", file=sys.stderr)
        return 2
    options = SoakOptions(
        venue=args.venue,
        duration=args.duration,
        seed=args.seed,
        settle=args.settle,
        kinds=_kinds(args.kinds, args.venue),
    )

    def progress(line: dict[str, Any]) -> None:
        if not args.quiet:
            print(json.dumps(line), flush=True)

    summary = await soak(options, progress)
    summary["clock"] = args.clock
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1
