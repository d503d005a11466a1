"""``python -m tickactors chaos``: a feed against the simulator under random faults and churn.

Progress goes to stdout as JSON lines (one per fault, ghost tick or overdue
request); the LAST line is the summary object. Exit status 0 only when nothing
was lost: every fault recovered, no ghost tick, no request past its deadline,
no unhandled exception, and the feed converged (desired == confirmed == what the
simulator streams) after the faults stopped.

SIGINT or SIGTERM (in the foreground or in the background, on either clock) end
the faults and the churn at once; the soak then settles as at a normal end and
prints its summary, with ``"interrupted": true`` and the seconds of chaos that
ran in ``duration_s``; the exit status is the verdict's, as ever. A second signal
ends the settling too, and a fault still unrecovered then counts as lost.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from .._arg_types import positive_float
from .._chaos.plan import COMMON_KINDS, TRADOVATE_KINDS
from .._chaos.setups import VENUES
from .._chaos.soak import Interrupt, SoakOptions, soak
from .signals import Stop, open_stop
from .stderr import error_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", choices=tuple(VENUES), default="alltick")
    parser.add_argument(
        "--duration", type=positive_float, default=60.0, metavar="S",
        help="seconds of faults and churn (then up to --settle seconds to settle)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="repeat a run: same seed, same plan")
    parser.add_argument(
        "--settle", type=positive_float, default=30.0, metavar="S",
        help="after the faults stop, at most this long for the feed to converge",
    )  # fmt: skip
    parser.add_argument(
        "--kinds", default=None, metavar="K,K",
        help="only these faults (default: every fault the venue's simulator knows: "
        f"{', '.join(COMMON_KINDS + TRADOVATE_KINDS)}; the last three are Tradovate's)",
    )  # fmt: skip
    parser.add_argument(
        "--clock", choices=("real", "virtual"), default="real",
        help="real: wall-clock time (the default); virtual: trio's MockClock jumps whenever "
        "every task waits, so --duration 86400 (a simulated day) runs in minutes. Same "
        "simulator, sockets and feed; only the waiting is skipped",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="print the summary line only")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse through ``parser`` fault kinds the venue's simulator does not know."""
    if args.kinds is None:
        return
    kinds = _kinds(args.kinds)
    known = COMMON_KINDS + (TRADOVATE_KINDS if args.venue == "tradovate" else ())
    unknown = [k for k in kinds if k not in known]
    if unknown:
        parser.error(
            f"argument --kinds: unknown fault kind(s) for {args.venue}: {', '.join(unknown)} "
            f"(known: {', '.join(known)})"
        )
    if not kinds:
        parser.error("argument --kinds: names no fault kind")


def _kinds(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


def main(args: argparse.Namespace) -> int:
    """Run the soak on the clock ``--clock`` asks for."""
    if args.clock == "virtual":
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(run_from_args, args, clock=clock)
    return trio.run(run_from_args, args)


async def run_from_args(args: argparse.Namespace) -> int:
    options = SoakOptions(
        venue=args.venue,
        duration=args.duration,
        seed=args.seed,
        settle=args.settle,
        kinds=_kinds(args.kinds) if args.kinds is not None else None,
    )

    def progress(line: dict[str, Any]) -> None:
        if not args.quiet:
            print(json.dumps(line), flush=True)

    interrupt = Interrupt()
    async with open_stop() as stop, trio.open_nursery() as nursery:
        nursery.start_soon(_interrupt_on_signals, stop, interrupt, args.settle, progress)
        summary = await soak(options, progress, interrupt=interrupt)
        nursery.cancel_scope.cancel()
    summary["clock"] = args.clock
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


async def _interrupt_on_signals(
    stop: Stop, interrupt: Interrupt, settle: float, progress: Callable[[dict[str, Any]], None]
) -> None:
    """The first signal ends the chaos, the second the settling."""
    await stop.first.wait()
    interrupt.stop.set()
    progress({"event": "interrupted", "signal": stop.name, "t": round(trio.current_time(), 3)})
    error_line(
        f"chaos: {stop.name}: faults and churn stopped; settling for at most {settle:g} s "
        "before the summary (again to stop at once)"
    )
    await stop.again.wait()
    interrupt.hurry.set()
