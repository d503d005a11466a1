"""``python -m tickactors``: the demo a newcomer runs first.

It starts the simulated exchange on loopback (``--venue alltick``, the default, or
``--venue tradovate``), connects a feed to it, and within the first minute makes the
simulator commit every fault the feed exists for on that venue (the scripts are in
:mod:`.demo_scripts`), then random faults. On a terminal it shows a live view of
prices, connection health and events (:mod:`.live_view`); piped, it writes JSON lines.
"""

from __future__ import annotations

import argparse

import trio

from .._arg_types import non_negative_float
from .._feed.feed import Feed
from ..sim import SimConfig, open_simulator
from .demo_scripts import DEMO_TOKEN, VENUES, DemoSymbols, DemoVenue, say_with
from .feed_options import add_feed_arguments, share_of, symbols_error, symbols_of
from .live_view import LiveView
from .output import JsonLines
from .run import make_writer, open_outputs, run_feed
from .signals import open_stop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_feed_arguments(parser)
    # None: the venue's demo defaults (see demo_scripts), so recoveries show within a minute
    parser.set_defaults(symbols=None, book_symbols=None)
    parser.add_argument(
        "--venue",
        choices=tuple(VENUES),
        default="alltick",
        help="which simulated exchange the demo runs against (default: alltick)",
    )
    parser.add_argument(
        "--random-faults",
        type=non_negative_float,
        default=12.0,
        metavar="S",
        help="after the scripted faults, one random fault every S seconds on average (0: off)",
    )
    parser.add_argument("--no-script", action="store_true", help="skip the scripted faults")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse through ``parser`` symbols the demo's venue would refuse."""
    problem = symbols_error(args, VENUES[args.venue].make("ws://127.0.0.1:1/").dialect)
    if problem is not None:
        parser.error(problem)


def _with_demo_defaults(args: argparse.Namespace, demo: DemoVenue) -> argparse.Namespace:
    """``args`` with every option left out filled in from the venue's demo defaults."""
    out = argparse.Namespace(**vars(args))
    if out.symbols is None:
        out.symbols = demo.symbols
    if out.book_symbols is None:
        out.book_symbols = demo.book_symbols
    if out.stale_after is None:
        out.stale_after = demo.stale_after
    if out.symbol_stale_after is None:
        out.symbol_stale_after = demo.symbol_stale_after
    return out


async def run_from_args(args: argparse.Namespace) -> int:
    demo = VENUES[args.venue]
    args = _with_demo_defaults(args, demo)
    config = SimConfig(random_faults=0.0, tokens=frozenset({DEMO_TOKEN}))
    seed = args.seed or 0
    async with (
        open_stop() as stop,
        open_simulator(demo.name, config=config, seed=seed) as sim,
        open_outputs() as (out, errors),
    ):
        title = f"tickactors demo: the simulated {demo.title} exchange, with faults"
        writer = make_writer(args.format, out, errors, title=title)  # a terminal: the view

        def extra(feed: Feed, nursery: trio.Nursery) -> None:
            if not args.no_script:
                say = say_with(writer)
                symbols = DemoSymbols(
                    tuple(share_of(args, symbols_of(args.symbols))),
                    tuple(share_of(args, symbols_of(args.book_symbols))),
                )
                nursery.start_soon(demo.script, sim, feed, say, symbols, args.random_faults, seed)
            if isinstance(writer, LiveView):
                writer.start_in(feed, nursery)

        return await run_feed(demo.make(sim.url), args, writer, extra=extra, stop=stop)


__all__ = ["JsonLines", "add_arguments", "run_from_args"]
