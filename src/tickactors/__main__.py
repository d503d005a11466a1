"""``python -m tickactors``: the demo; ``run``: a feed to stdout; ``sim``: the exchange alone."""

from __future__ import annotations

import argparse
import sys

import trio


def build_parser() -> argparse.ArgumentParser:
    from ._cli import chaos, demo, run
    from .sim import _cli as sim_cli

    parser = argparse.ArgumentParser(
        prog="python -m tickactors",
        description=(
            "Market-data feeds that never lose data silently. With no command: a demo "
            "against the built-in simulated exchange, with faults switched on."
        ),
    )
    demo.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = commands.add_parser(
        "run",
        help="connect to a venue; market data and health as JSON lines on stdout",
        description=(
            "Connect to a venue (AllTick, or Tradovate with --token or --rest-url and "
            "TRADOVATE_* credentials in the environment) and write every tick, quote, book "
            "and health event to stdout (JSON lines; on a terminal a live view; --format). "
            "Lines on stdin change the subscription: 'subscribe SYM [SYM ...]' (the venue's "
            "main stream: AllTick trades, Tradovate quotes), "
            "'unsubscribe SYM [SYM ...]', 'subscribe-book SYM', 'unsubscribe-book SYM'. "
            "SIGINT or SIGTERM end it with exit 0."
        ),
    )
    run.add_arguments(run_parser)
    sim_parser = commands.add_parser(
        "sim",
        help="run the simulated exchange alone",
        description="The simulated exchange on loopback, with faults on demand or at random.",
    )
    sim_cli.add_arguments(sim_parser)
    chaos_parser = commands.add_parser(
        "chaos",
        help="soak a feed in random faults and churn; the last line is a JSON summary",
        description=(
            "Run a feed against the simulated exchange while the exchange injects every "
            "fault it knows at random and the subscription churns at random. Checks the "
            "invariants throughout; the last stdout line is a JSON summary. Exit 0 only "
            "when nothing was lost."
        ),
    )
    chaos.add_arguments(chaos_parser)
    return parser


COMMANDS = ("run", "sim", "chaos")


def _refuse_options_before_the_command(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """``--duration 5 run ...`` would be silently overridden by run's defaults: refuse it."""
    for index, word in enumerate(words):
        if word in COMMANDS:
            early = [w for w in words[:index] if w.startswith("-") and w not in ("-h", "--help")]
            if early:
                parser.error(
                    f"options go after the command: python -m tickactors {word} "
                    f"{' '.join(early)} ..."
                )
            return


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    words = sys.argv[1:] if argv is None else argv
    _refuse_options_before_the_command(parser, words)
    args = parser.parse_args(words)
    from ._cli import chaos, demo, run
    from .sim import _cli as sim_cli

    if args.command == "chaos":
        return chaos.main(args)
    if args.command == "run":
        return trio.run(run.run_from_args, args)
    if args.command == "sim":
        return trio.run(sim_cli.run_from_args, args)
    return trio.run(demo.run_from_args, args)


if __name__ == "__main__":
    sys.exit(main())
