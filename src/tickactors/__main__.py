"""``python -m tickactors`` and the ``tickactors`` script: the demo, ``run``, ``sim``, ``chaos``.

The command line is parsed here, and refused here when it is wrong, before anything
runs: one line on stderr, ``PROG: error: MESSAGE (see --help)``, exit status 2
(``_arg_types.OneLineParser``). The options' types refuse bad values; each command's
``check_args`` what several options, or the environment, make wrong together. ``run``
with JSON lines on stdout also writes the refusal there as an ``error`` status line.
``--version`` prints the installed version; ``--log-level`` (``run`` and the demo,
``_cli/logs.py``) puts the ``tickactors`` logger on stderr while the command runs.

Then the command runs under Trio. Each one takes SIGINT and SIGTERM for as long as it
runs and stops cleanly on them; from :func:`main`'s first line until then both are held
back (``_cli/signals.py``), so one sent while the parser runs or Trio starts is a stop
request too. A KeyboardInterrupt that still gets through (as Trio stops) ends the
process quietly, no traceback, with exit status 130, the shell's convention for SIGINT.
One that arrives while Python imports tickactors, before :func:`main` runs, is
Python's to report.

Just before a command runs, when :func:`main` runs the process's own command line (not
an ``argv`` given by a caller, such as a test), every object the process holds by then
(the modules, their functions and classes: some 37,000) moves to the collector's
permanent generation (``gc.freeze()``). They live as long as the process anyway, and a
full collection no longer walks them: under load that took each full collection from
17-20 ms, a pause of every connection's reader and timer, to under 3 ms
(docs/performance.md, "Garbage collection").
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

from ._arg_types import OneLineParser

COMMANDS = ("run", "check-config", "sim", "chaos")
_ANYWHERE = ("-h", "--help", "--version")  # options that may come before a command


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tickactors")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from ._version import __version__

        return __version__


class RunnerParser(OneLineParser):
    """The runner's parser: its refusals go through the runner's one stderr function."""

    def emit(self, line: str) -> None:
        from ._cli.stderr import error_line

        error_line(line)


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name == "tickactors" else "python -m tickactors"


def build_parsers() -> tuple[OneLineParser, dict[str, OneLineParser]]:
    """The top-level parser (the demo's options) and each command's, by name."""
    from ._cli import chaos, demo, run
    from .sim import _cli as sim_cli

    parser = RunnerParser(
        prog=_prog(),
        description=(
            "Market-data feeds that never lose data silently. With no command: a demo "
            "against the built-in simulated exchange, with faults switched on."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tickactors {_version()}")
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
    check_parser = commands.add_parser(
        "check-config",
        help="check a run --config file without connecting: exit 0, or one line per problem",
        description=(
            "Read a TOML file of feeds (run --config FILE) and check everything that can be "
            "checked without connecting: its shape and values (one line per problem, naming "
            "its path, e.g. feeds[1].symbols[3]), each feed's options as run checks them, and "
            "that every token source named is there. Exit 0 when the file would run, else 2."
        ),
    )
    check_parser.add_argument("file", metavar="FILE", help="the TOML file")
    check_parser.add_argument(
        "--no-env",
        action="store_true",
        help="do not check the environment (token variables, token files, credentials): "
        "for a machine other than the one the file runs on",
    )
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
            "when nothing was lost. SIGINT or SIGTERM stop the faults early; the summary "
            "then says interrupted."
        ),
    )
    chaos.add_arguments(chaos_parser)
    return parser, {
        "run": run_parser,
        "check-config": check_parser,
        "sim": sim_parser,
        "chaos": chaos_parser,
    }


def build_parser() -> argparse.ArgumentParser:
    return build_parsers()[0]


def _command_in(words: list[str]) -> str | None:
    return next((word for word in words if word in COMMANDS), None)


def _refuse_options_before_the_command(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """``--duration 5 run ...`` would be silently overridden by run's defaults: refuse it."""
    for index, word in enumerate(words):
        if word in COMMANDS:
            early = [w for w in words[:index] if w.startswith("-") and w not in _ANYWHERE]
            if early:
                parser.error(
                    f"options go after the command: {parser.prog} {word} {' '.join(early)} ..."
                )
            return


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a KeyboardInterrupt, or a group of nothing else."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    return isinstance(exc, BaseExceptionGroup) and exc.split(KeyboardInterrupt)[1] is None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from ._cli import signals

    words = list(sys.argv[1:] if argv is None else argv)
    mask = signals.hold()  # until the command's handlers are in place
    try:
        return _main(words, freeze=argv is None)
    except SystemExit as exc:  # --help, --version, a refusal
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        raise
    except BaseException as exc:
        if _interrupted(exc):
            return 130
        raise
    finally:
        signals.restore(mask)


def _main(words: list[str], *, freeze: bool) -> int:
    import trio

    from ._cli import chaos, demo, run, run_config
    from ._cli.logs import logging_to_stderr
    from .sim import _cli as sim_cli

    parser, commands = build_parsers()
    _refuse_options_before_the_command(parser, words)
    if _command_in(words) == "run":  # its refusals, and the top-level's for it
        parser.on_refusal = commands["run"].on_refusal = run.json_refusals(words)
    args = parser.parse_args(words)
    checks: dict[str | None, Callable[[argparse.ArgumentParser, argparse.Namespace], None]] = {
        "run": run_config.check_run_args,
        "sim": sim_cli.check_args,
        "chaos": chaos.check_args,
        None: demo.check_args,
    }
    if args.command == "check-config":
        return run_config.check_config_command(args, commands["run"])
    checks[args.command](parser if args.command is None else commands[args.command], args)
    if freeze:
        gc.freeze()  # see the module docstring
    with logging_to_stderr(getattr(args, "log_level", None)):
        if args.command == "chaos":
            return chaos.main(args)
        if args.command == "run" and args.config is not None:
            return trio.run(run_config.run_config_from_args, args)
        if args.command == "run":
            return trio.run(run.run_from_args, args)
        if args.command == "sim":
            return trio.run(sim_cli.run_from_args, args)
        return trio.run(demo.run_from_args, args)


if __name__ == "__main__":
    sys.exit(main())
