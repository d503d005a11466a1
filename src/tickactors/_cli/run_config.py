"""``run --config FILE.toml``: every feed of the file in one process, and ``check-config``.

Checking comes first and does not connect: :func:`check_config` loads the file
(``config.py``: cattrs structures it, one line per problem with its path), checks that
every token source is there (``environment_problems``), then hands each feed, as the
command line a single-feed ``run`` would get (``config.feed_argv``), to ``run``'s own
parser and checks, so that a feed from a file is refused exactly where the same feed
from flags is. ``check-config FILE`` does only that; ``run --config FILE`` does it before
anything opens, and refuses (exit 2) with the same lines.

Running: :func:`run_config_from_args` runs each feed with the single-feed runner
(``run.run_feed``), all in one Trio run, one nursery: each feed has its own venue, token
source, sinks and writer, whose every line names the feed (``"feed": NAME`` in JSON
lines, ``[NAME]`` in text). They share stdout, stderr, SIGINT/SIGTERM (one stops them
all) and stdin, whose lines go to one feed each (:class:`CommandRouter`: ``@NAME
subscribe X``; a file with one feed takes plain lines too). A feed that ends with a
fatal error (its token refused, say) ends alone: its ``fatal`` line says so, the others
go on, and the process's exit status is the worst of the feeds'.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from types import MappingProxyType
from typing import Any, Final

import trio

from .._arg_types import OneLineParser, listen_address, one_line
from .._feed.metrics import FeedCollector
from .._values import StatusName
from ..venues._tradovate_auth import CREDENTIAL_VARIABLES
from .commands import MAX_LINE
from .config import (
    ConfigError,
    FeedConfig,
    RunConfig,
    TradovateFeed,
    credentials_environ,
    environment_problems,
    feed_argv,
    load_config,
    token_of,
)
from .live_view import LiveView
from .metrics import MetricsError, open_endpoint
from .output import Lines, Writer
from .run import apply_line, make_writer, open_outputs, read_stdin_lines, refuse, run_feed
from .run_venue import UsageError, check_args, open_venue
from .signals import Stop, open_stop
from .stderr import error_line
from .tls import TLSOptionError, tls_from_args
from .user_requests import open_user_requests

#: ``run``'s options that, given with ``--config``, apply to every feed (the first three
#: override the file's); every other option describes one feed, and the file says those.
PROCESS_OPTIONS = frozenset(
    {
        "duration",
        "format",
        "log_level",
        "ca_file",
        "insecure",
        "metrics",
        "config",
        "command",
        "help",
    }
)


#: ``check-config --no-env``: Tradovate credentials that let a venue be built, unsent.
STAND_IN_CREDENTIALS: Final = MappingProxyType({name: "-" for name in CREDENTIAL_VARIABLES})


class _Refused(Exception):
    """``run``'s parser refused a feed's options (its message, one line)."""


@contextmanager
def _refusing(parser: OneLineParser) -> Iterator[OneLineParser]:
    """``parser`` (``run``'s) refusing by exception instead of exiting, while the block runs."""
    before = parser.on_refusal

    def refuse(message: str) -> None:
        raise _Refused(message)

    parser.on_refusal = refuse
    try:
        yield parser
    finally:
        parser.on_refusal = before


def check_config(
    path: str,
    run_parser: argparse.ArgumentParser,
    *,
    environ: Mapping[str, str] = os.environ,
    check_environment: bool = True,
) -> tuple[RunConfig, list[tuple[FeedConfig, argparse.Namespace]]]:
    """The file at ``path`` and each feed's ``run`` options (parsed and checked by
    ``run_parser``, ``run``'s own), or :class:`ConfigError` with one line per problem.
    Nothing connects."""
    config = load_config(path)
    problems = environment_problems(config, environ) if check_environment else []
    assert isinstance(run_parser, OneLineParser)
    feeds: list[tuple[FeedConfig, argparse.Namespace]] = []
    with _refusing(run_parser) as parser:
        _check_feeds(config, parser, environ, check_environment, problems, feeds)
    if problems:
        raise ConfigError(problems)
    return config, feeds


def _check_feeds(
    config: RunConfig,
    parser: OneLineParser,
    environ: Mapping[str, str],
    check_environment: bool,
    problems: list[str],
    feeds: list[tuple[FeedConfig, argparse.Namespace]],
) -> None:
    for index, feed in enumerate(config.feeds):
        where = f"feeds[{index}] ({feed.name})"
        try:
            args = parser.parse_args(feed_argv(feed, config))
            args.config = None
            if check_environment:
                if not problems:  # else a token source is missing: nothing to hand over
                    args.token = token_of(feed, environ)
                    if isinstance(feed, TradovateFeed) and feed.rest_url is not None:
                        args.credentials_environ = credentials_environ(feed, environ)
            else:  # stand-ins, so that the venue can be built and checked
                args.token = None if feed.token_env is None and feed.token_file is None else "-"
                args.credentials_environ = STAND_IN_CREDENTIALS
            if args.token is not None or getattr(args, "credentials_environ", None) is not None:
                check_args(parser, args)
        except _Refused as exc:
            problems.append(f"{where}: {exc}")
            continue
        feeds.append((feed, args))


def check_run_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``run``'s checks: the file's with ``--config``, else ``run_venue.check_args``."""
    if args.config is not None:
        check_config_args(parser, args)
    else:
        check_args(parser, args)


def check_config_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``run --config``: refuse the file (one line per problem, exit 2), or a feed's own
    option given beside it; keep what was loaded in ``args`` for the run."""
    given = [
        action.option_strings[0]
        for action in parser._actions
        if action.dest not in PROCESS_OPTIONS
        and action.option_strings
        and getattr(args, action.dest, None) not in (None, "", [], action.default)
    ]
    if given:
        parser.error(
            f"argument --config: the file names each feed's options; not with {', '.join(given)}"
        )
    try:
        args.loaded_config = check_config(args.config, parser)
    except ConfigError as exc:
        refuse_lines(parser, args.config, exc.problems)


def refuse_lines(parser: argparse.ArgumentParser, path: str, problems: list[str]) -> None:
    """Refuse with one line per problem (each through the parser's own one-line refusal
    path, so JSON lines on stdout get them too), then exit 2."""
    assert isinstance(parser, OneLineParser)
    line_to_stderr = parser.emit  # the parser's stderr (not a health event's emit)
    for problem in problems:
        message = one_line(f"{path}: {problem}")
        if parser.on_refusal is not None:
            parser.on_refusal(message)
        line_to_stderr(f"{parser.prog}: error: {message}")
    parser.exit(2)


def check_config_command(args: argparse.Namespace, run_parser: argparse.ArgumentParser) -> int:
    """``check-config FILE``: one line per problem on stderr and exit 2, or a line saying
    what the file runs and exit 0. ``run_parser``: ``run``'s, which checks each feed."""
    try:
        config, _ = check_config(args.file, run_parser, check_environment=not args.no_env)
    except ConfigError as exc:
        for problem in exc.problems:
            error_line(f"{args.file}: {problem}")
        return 2
    names = ", ".join(f"{feed.name} ({feed.venue})" for feed in config.feeds)
    print(f"{args.file}: ok: {len(config.feeds)} feed(s): {names}", flush=True)
    return 0


class CommandRouter:
    """One stdin for several feeds: ``@NAME COMMAND`` goes to feed NAME.

    Each feed's command task (:meth:`serve`) registers how it applies a line; the router
    reads stdin once (:meth:`run`) and hands each line over. With a single feed, a line
    without ``@NAME`` goes to it; with several, such a line is refused (a
    ``command_error`` line of the process's own writer).
    """

    def __init__(self, writer: Writer, names: list[str]) -> None:
        self._writer = writer
        self._names = names
        self._handlers: dict[str, Callable[[bytes], None]] = {}

    def serve(self, name: str) -> Any:
        """``run_feed(commands=...)`` for feed ``name``: register, then wait to be cancelled."""

        async def commands(feed: Any, writer: Writer) -> None:
            async with open_user_requests(feed, writer) as requests:
                self._handlers[name] = lambda line: apply_line(
                    feed, writer, line, requests=requests
                )
                try:
                    await trio.sleep_forever()
                finally:
                    del self._handlers[name]

        return commands

    def route(self, raw: bytes) -> None:
        stripped = raw.strip()
        if not stripped:
            return
        if stripped.startswith(b"@"):
            head, _, rest = stripped.partition(b" ")
            name = head[1:].decode("utf-8", "replace")
            handler = self._handlers.get(name)
            if handler is None:
                known = ", ".join(self._names)
                why = "not running" if name in self._names else f"no such feed (feeds: {known})"
                self._writer.status(StatusName.COMMAND_ERROR, f"@{name}: {why}")
                return
            handler(rest)
            return
        if len(self._names) == 1 and self._names[0] in self._handlers:
            self._handlers[self._names[0]](raw)
            return
        self._writer.status(
            StatusName.COMMAND_ERROR,
            "name the feed: @NAME COMMAND (feeds: " + ", ".join(self._names) + ")",
        )

    async def run(self) -> None:
        await read_stdin_lines(
            self.route,
            lambda: self._writer.status(
                StatusName.COMMAND_ERROR, f"line longer than {MAX_LINE} bytes, ignored"
            ),
        )


async def run_config_from_args(args: argparse.Namespace) -> int:
    """Run every feed of ``args.loaded_config`` until each ends; the worst exit status."""
    config, feeds = args.loaded_config
    fmt = args.format if args.format is not None else config.format
    duration = args.duration if args.duration is not None else config.duration
    async with open_stop() as stop, open_outputs() as (out, errors):
        process = make_writer("text" if fmt == "text" else "jsonl", out, errors)
        try:
            ssl_context = tls_from_args(args)
        except TLSOptionError as exc:
            return refuse(process, str(exc))
        router = CommandRouter(process, [feed.name for feed, _ in feeds])
        address = args.metrics
        if address is None and config.metrics is not None:
            address = listen_address(config.metrics)
        async with AsyncExitStack() as stack:
            collector: FeedCollector | None = None
            if address is not None:
                try:
                    collector, url = await stack.enter_async_context(open_endpoint(*address))
                except MetricsError as exc:
                    return refuse(process, f"--metrics: {exc}")
                process.status(StatusName.METRICS, f"metrics at {url}", url=url)
            for _, feed_args in feeds:
                feed_args.metrics_collector = collector
            return await _run_all(feeds, fmt, duration, out, errors, ssl_context, stop, router)


async def _run_all(
    feeds: list[tuple[FeedConfig, argparse.Namespace]],
    fmt: str | None,
    duration: float | None,
    out: Lines,
    errors: Lines,
    ssl_context: ssl.SSLContext | None,
    stop: Stop,
    router: CommandRouter,
) -> int:
    """Run every feed in one nursery until each ends (and stdin's router beside them)."""
    codes: list[int] = []

    async def one(feed: FeedConfig, feed_args: argparse.Namespace) -> None:
        feed_args.duration = duration
        feed_args.feed_name = feed.name
        writer = make_writer(fmt, out, errors, feed=feed.name)
        extra = writer.start_in if isinstance(writer, LiveView) else None
        try:
            async with open_venue(feed_args, ssl_context) as venue:
                code = await run_feed(
                    venue,
                    feed_args,
                    writer,
                    extra=extra,
                    ssl_context=ssl_context,
                    stop=stop,
                    commands=router.serve(feed.name),
                )
        except UsageError as exc:
            code = refuse(writer, str(exc))
        codes.append(code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        async with trio.open_nursery() as running:
            for feed, feed_args in feeds:
                running.start_soon(one, feed, feed_args)
        nursery.cancel_scope.cancel()  # every feed ended: stop reading stdin
    return max(codes, default=0)


__all__ = [
    "CommandRouter",
    "check_config",
    "check_config_args",
    "check_config_command",
    "refuse_lines",
    "run_config_from_args",
]
