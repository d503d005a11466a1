"""``python -m tickactors run``: a feed whose ticks and health go to stdout, commands from stdin.

On a terminal, stdout shows the live view (``live_view.py``); piped, JSON lines
(``--format`` chooses: ``jsonl``, ``text``, ``live``).

``--venue alltick`` (token from ``--token`` or ``TICKACTORS_TOKEN``) or ``--venue tradovate``
(a static ``--token``, or ``--rest-url`` with credentials from the ``TRADOVATE_*`` environment
variables, renewed by :class:`~tickactors.venues._tradovate_auth.TradovateTokenSource`).
``--ca-file`` / ``--insecure`` (``tls.py``) apply to the socket and the REST client alike.
Tokens, passwords and ``sec`` are never printed. ``--metrics [HOST:]PORT`` serves the
feed's Prometheus metrics while it runs (``metrics.py``; a ``metrics`` status line names
the URL).

``--sync`` (Tradovate's trading sockets; ``--user-id N`` optional) keeps the user's account
in sync: a ``"kind":"sync"`` line per snapshot and a ``"kind":"props"`` line per entity
event, through the same non-blocking output as the ticks (``_pump_account``).

Where errors go. The parser refuses a bad command line before anything runs
(``run_venue.check_args`` for what needs several options): one line on stderr, exit
status 2, and, when stdout is JSON lines, an ``error`` status line there too
(:func:`json_refusals`). A refusal once running (symbols beyond the connection
limits, a sink that cannot open) is an ``error`` status line on stdout and one
``error:`` line on stderr, exit 2; a fatal error (the token refused, a certificate
that cannot be verified) a ``fatal`` status line and one ``error:`` line, exit 1.
Every stderr line goes through :func:`~.stderr.error_line`; never a traceback.
SIGINT and SIGTERM, from the start of the Trio run to its end, stop it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import functools
import os
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from .._arg_types import http_url, int_between, non_empty, positive_int, ws_url
from .._core.shard_share import Shard
from .._errors import CapacityError, FeedError, InvalidSymbolError
from .._feed.feed import Feed, open_feed
from .._feed.metrics import FeedCollector
from .._values import BOOK, TRADES, StatusName
from ..sinks import SinkError, SinkSpecError
from ..venues import Venue
from .commands import MAX_LINE, CommandError, RequestCommand, parse_command
from .connection_options import add_connection_arguments, connection_options
from .fanout import open_fanout, parse_sinks
from .fd_lines import open_fd_lines
from .feed_options import add_feed_arguments, nothing_to_subscribe, share_of, symbols_of
from .live_view import LiveView
from .metrics import MetricsError, serve_metrics
from .output import JsonLines, Lines, StreamLines, TextLines, Writer, wall_clock_offset
from .run_venue import UsageError, open_venue
from .signals import Stop, open_stop
from .stderr import error_line, stderr_routed_to
from .tls import TLSOptionError, add_tls_arguments, tls_from_args
from .user_requests import UserRequests, open_user_requests


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--venue",
        choices=("alltick", "tradovate"),
        default="alltick",
        help="the venue's dialect (default: alltick): alltick needs a token; tradovate a "
        "token or --rest-url",
    )
    parser.add_argument(
        "--url",
        type=ws_url,
        default=None,
        help="the venue's WebSocket URL, ws:// or wss:// (no token in it); required "
        "unless --config names the feeds",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="run every feed a TOML file declares, in this process (docs/config.md); "
        "--duration, --format, --log-level and the TLS options given with it override the "
        "file's, the feeds' own options (venue, symbols, sinks, ...) come from the file alone",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        type=non_empty,
        default=None,
        help="the venue token (or set TICKACTORS_TOKEN); never printed",
    )
    auth.add_argument(
        "--rest-url",
        type=http_url,
        default=None,
        metavar="URL",
        help="tradovate: the REST API root (https://demo.tradovateapi.com/v1); tokens are "
        "requested and renewed there with TRADOVATE_USERNAME, TRADOVATE_PASSWORD, "
        "TRADOVATE_APP_ID, TRADOVATE_APP_VERSION, TRADOVATE_CID and TRADOVATE_SEC "
        "(TRADOVATE_DEVICE_ID optional) from the environment; never printed",
    )
    parser.add_argument(
        "--replay-start",
        default=None,
        metavar="ISO",
        help="tradovate market replay (with the replay URL): the clock's start, e.g. "
        "2024-01-02T14:30:00.000Z; after a drop the replay resumes from its last clock",
    )
    parser.add_argument(
        "--replay-speed",
        type=int_between(0, 400),
        default=None,
        metavar="PCT",
        help="tradovate market replay speed, percent of real time, 0 to 400 (default 100)",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="tradovate trading socket (--url of demo or live): keep the user's account in "
        'sync; a "sync" line per snapshot, a "props" line per entity event (with --rest-url '
        "the access token is used)",
    )
    parser.add_argument(
        "--user-id",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --sync: the user to sync (default: the one the venue's auth/me names)",
    )
    add_tls_arguments(parser)
    add_feed_arguments(parser)
    add_connection_arguments(parser)


def _stdout_is_a_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # no stdout, or a closed one
        return False


def make_writer(
    fmt: str | None,
    out: Lines,
    errors: Lines | None = None,
    *,
    title: str | None = None,
    feed: str | None = None,
) -> Writer:
    """The writer for ``--format`` (call inside the Trio run: it reads both clocks).

    None: the live view on a terminal, JSON lines otherwise; both write to ``out``
    (stdout), the live view through rich's own thread. The live view (``title``: its
    first line) also needs its task started with the feed: :meth:`LiveView.start_in`.
    ``feed``: the name of the feed (``run --config``) every line of this writer names.
    """
    if fmt is None:
        fmt = "live" if _stdout_is_a_terminal() else "jsonl"
    if fmt == "live":
        return LiveView(title if title is not None or feed is None else feed)
    if fmt == "text":
        return TextLines(out, errors=errors, feed=feed)
    return JsonLines(out, clock_offset=wall_clock_offset(), errors=errors, feed=feed)


@asynccontextmanager
async def open_outputs() -> AsyncIterator[tuple[Lines, Lines]]:
    """stdout and stderr, each written by a thread of its own (``fd_lines.py``); a stream
    without a file descriptor (a test's capture) is written to directly."""
    async with AsyncExitStack() as stack:
        outputs: list[Lines] = []
        for stream, name in ((sys.stdout, "tickactors-stdout"), (sys.stderr, "tickactors-stderr")):
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation included
                outputs.append(StreamLines(stream))
            else:
                outputs.append(await stack.enter_async_context(open_fd_lines(fd, name=name)))
        with stderr_routed_to(outputs[1]):  # error_line() no longer writes itself
            yield outputs[0], outputs[1]


def _format_in(words: Sequence[str]) -> str | None:
    """The ``--format`` value among ``words`` as argparse will read it (abbreviated or not)."""
    fmt = None
    for index, word in enumerate(words):
        if word == "--":
            break
        name, equals, value = word.partition("=")
        if name.startswith("--f") and "--format".startswith(name):
            fmt = value if equals else words[index + 1] if index + 1 < len(words) else None
    return fmt


def json_refusals(words: Sequence[str]) -> Callable[[str], None] | None:
    """For ``run``'s parser: with JSON lines on stdout, a refusal is an ``error`` line there too.

    ``words``: the command line. None when stdout gets text (``--format text``, or a
    terminal and no ``--format``).
    """
    fmt = _format_in(words)
    if fmt == "text" or (fmt != "jsonl" and _stdout_is_a_terminal()):
        return None

    def write(message: str) -> None:
        # before the Trio run: the line's time is the wall clock's
        JsonLines(StreamLines(sys.stdout), clock_offset=time.time()).status(
            StatusName.ERROR, message
        )

    return write


def refuse(writer: Writer, message: str) -> int:
    """A refusal once running: an ``error`` status line and a line on stderr; exit status 2."""
    writer.status(StatusName.ERROR, message)
    error_line(f"error: {message}")
    return 2


async def run_from_args(args: argparse.Namespace) -> int:
    """``run`` with one feed from the options (``--config``: ``run_config.py``)."""
    async with open_stop() as stop, open_outputs() as (out, errors):
        writer = make_writer(args.format, out, errors)
        try:
            ssl_context = tls_from_args(args)
            async with open_venue(args, ssl_context) as venue:
                extra = writer.start_in if isinstance(writer, LiveView) else None
                return await run_feed(
                    venue, args, writer, extra=extra, ssl_context=ssl_context, stop=stop
                )
        except (UsageError, TLSOptionError) as exc:
            return refuse(writer, str(exc))


async def run_feed(
    venue: Venue,
    args: argparse.Namespace,
    writer: Writer,
    *,
    extra: Callable[[Feed, trio.Nursery], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    stop: Stop | None = None,
    commands: Commands | None = None,
) -> int:
    """Run a feed until --duration, SIGINT/SIGTERM or a fatal error. Returns the exit code.

    With ``--sink``, everything written goes to the sinks too (``fanout.py``); the final
    ``stopped`` line then carries each sink's statistics, taken after it closed.
    ``stop``: the caller's, set by SIGINT and SIGTERM (opened early, so that a signal
    during the start is not lost); None: one of its own. ``commands``: the task that
    applies command lines to the feed (default: stdin's, :func:`read_commands`; ``run
    --config`` routes one stdin to several feeds).
    """
    if stop is None:
        async with open_stop() as own:
            return await run_feed(
                venue,
                args,
                writer,
                extra=extra,
                ssl_context=ssl_context,
                stop=own,
                commands=commands,
            )
    try:
        specs = parse_sinks(getattr(args, "sink", None))
    except SinkSpecError as exc:
        return refuse(writer, f"--sink: {exc}")
    # the sinks' lines carry the same times as stdout's, to the microsecond
    offset = writer.clock_offset if isinstance(writer, JsonLines) else wall_clock_offset()
    try:
        async with open_fanout(
            writer, specs, venue=venue.dialect.name, clock_offset=offset
        ) as fanout:
            code = await _run_feed(venue, args, fanout, extra, ssl_context, stop, commands)
    except SinkError as exc:  # a sink that cannot start: nats-py missing, a path not writable
        return refuse(writer, f"--sink: {exc}")
    if code == 0:
        detail = {"sinks": fanout.statistics()} if fanout.sinks else {}
        writer.status(StatusName.STOPPED, "bye", **detail)
    return code


async def _run_feed(
    venue: Venue,
    args: argparse.Namespace,
    writer: Writer,
    extra: Callable[[Feed, trio.Nursery], None] | None,
    ssl_context: ssl.SSLContext | None,
    stop: Stop,
    commands: Commands | None = None,
) -> int:
    try:
        connections = connection_options(args, venue.dialect)
    except ValueError as exc:
        return refuse(writer, str(exc))
    if getattr(args, "buffer", None) is not None:
        connections["buffer"] = args.buffer
    syncing = bool(getattr(args, "sync", False))
    pumps = (_pump_market, _pump_events, _pump_account) if syncing else (_pump_market, _pump_events)
    metrics: tuple[str, int] | None = getattr(args, "metrics", None)
    try:
        with trio.move_on_after(args.duration if args.duration else float("inf")):
            async with (
                open_feed(
                    venue,
                    stale_after=args.stale_after,
                    symbol_stale_after=args.symbol_stale_after,
                    policies=getattr(args, "policy", None),
                    seed=args.seed,
                    ssl_context=ssl_context,
                    sync=syncing,
                    user_id=getattr(args, "user_id", None),
                    **connections,
                ) as feed,
                AsyncExitStack() as stack,
            ):
                shared: FeedCollector | None = getattr(args, "metrics_collector", None)
                if shared is not None:  # run --config: the process's endpoint, all feeds
                    shared.add(feed, name=args.feed_name)
                    stack.callback(shared.remove, feed)
                elif metrics is not None:
                    name = venue.dialect.name
                    try:
                        url = await stack.enter_async_context(
                            serve_metrics(feed, *metrics, name=name)
                        )
                    except MetricsError as exc:
                        return refuse(writer, f"--metrics: {exc}")
                    writer.status(StatusName.METRICS, f"metrics at {url}", url=url)
                main, books = symbols_of(args.symbols), symbols_of(args.book_symbols)
                trades = symbols_of(getattr(args, "trade_symbols", ""))
                given = main + books + trades
                if not share_of(args, given) and not syncing:
                    error_line(nothing_to_subscribe(args, len(given)))
                try:
                    feed.subscribe(*share_of(args, main))
                    feed.subscribe(*share_of(args, books), kind=BOOK)
                    feed.subscribe(*share_of(args, trades), kind=TRADES)
                except (InvalidSymbolError, CapacityError) as exc:
                    return refuse(writer, str(exc))
                if args.shard is not None:
                    writer.status(
                        StatusName.SHARD,
                        f"shard {args.shard}",
                        shard=str(args.shard),
                        symbols=share_of(args, main),
                        book_symbols=share_of(args, books),
                        trade_symbols=share_of(args, trades),
                        others=len(given) - len(share_of(args, given)),
                    )
                if commands is None:
                    commands = functools.partial(read_commands, shard=args.shard)
                async with trio.open_nursery() as nursery:
                    for task in (*pumps, commands):
                        nursery.start_soon(_until_stdout_closes, task, feed, writer, nursery)
                    nursery.start_soon(_until_stopped, stop, nursery.cancel_scope)
                    if extra is not None:
                        extra(feed, nursery)
    except FeedError as exc:
        writer.status(StatusName.FATAL, str(exc), error=type(exc).__name__)
        error_line(f"error: {type(exc).__name__}: {exc}")
        return 1
    return 0


async def _until_stdout_closes(
    task: Callable[[Feed, Writer], Awaitable[None]],
    feed: Feed,
    writer: Writer,
    nursery: trio.Nursery,
) -> None:
    """Run ``task``; when whoever reads our stdout goes away (``| head``), end quietly."""
    try:
        await task(feed, writer)
    except BrokenPipeError:
        # Nobody reads any more: point stdout at /dev/null so that nothing else (the
        # interpreter's flush at exit) fails, and stop cleanly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        nursery.cancel_scope.cancel()


async def _pump_market(feed: Feed, writer: Writer) -> None:
    async for batch in feed.batches():
        await writer.market(batch)  # waits while stdout is not read: the feed's policies apply


async def _pump_account(feed: Feed, writer: Writer) -> None:
    """``--sync``: every snapshot and entity event, a line each, as ticks go (may wait)."""
    async for batch in feed.account_batches():
        await writer.account(batch)


async def _pump_events(feed: Feed, writer: Writer) -> None:
    async for event in feed.events():
        writer.event(event)


async def _until_stopped(stop: Stop, scope: trio.CancelScope) -> None:
    await stop.first.wait()
    scope.cancel()


#: The task that applies command lines to a running feed (``run_feed(commands=...)``).
Commands = Callable[[Feed, Writer], Awaitable[None]]


async def read_commands(feed: Feed, writer: Writer, *, shard: Shard | None = None) -> None:
    """Apply stdin commands until stdin ends (then keep running; requests still out end
    first, each with its line)."""
    async with open_user_requests(feed, writer, shard) as requests:
        await read_stdin_lines(
            lambda line: apply_line(feed, writer, line, shard, requests=requests),
            lambda: writer.status(
                StatusName.COMMAND_ERROR, f"line longer than {MAX_LINE} bytes, ignored"
            ),
        )


async def read_stdin_lines(
    handle: Callable[[bytes], None], too_long: Callable[[], None]
) -> None:
    """Hand each stdin line (without its newline) to ``handle`` until stdin ends; a line
    longer than ``MAX_LINE`` bytes is dropped and ``too_long()`` told."""
    try:
        stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    except (OSError, ValueError, AttributeError):
        return
    async with stream:
        pending = b""
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not chunk:
                if pending.strip():
                    handle(pending)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                handle(line)
            if len(pending) > MAX_LINE:
                too_long()
                pending = b""


def apply_line(
    feed: Feed,
    writer: Writer,
    raw: bytes,
    shard: Shard | None = None,
    *,
    requests: UserRequests | None = None,
) -> None:
    """Apply one stdin line; a bad one gets a status error and changes nothing.

    With a ``shard``, the symbols other shards own are left to them (and counted).
    A ``request`` line goes to ``requests`` (``user_requests.py``; None: refused).
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        writer.status(StatusName.COMMAND_ERROR, "a line that is not UTF-8, ignored")
        return
    try:
        command = parse_command(line.rstrip("\r"))
        if command is None:
            return
        if isinstance(command, RequestCommand):
            if requests is None:
                raise CommandError("request lines are not taken here")
            requests.apply(command)
            return
        symbols = command.symbols if shard is None else tuple(shard.share(command.symbols))
        if command.subscribe:
            feed.subscribe(*symbols, kind=command.kind)
        else:
            feed.unsubscribe(*symbols, kind=command.kind)
    except (CommandError, InvalidSymbolError, CapacityError) as exc:
        writer.status(StatusName.COMMAND_ERROR, str(exc))
        return
    kind = feed.kinds[0] if command.kind is None else command.kind
    detail: dict[str, Any] = {
        "stream": kind.value,
        "symbols": list(symbols),
    }
    if shard is not None:
        detail["others"] = len(command.symbols) - len(symbols)
    verb = "subscribe" if command.subscribe else "unsubscribe"
    writer.status(StatusName.COMMAND, verb, **detail)


__all__ = ["TRADES", "add_arguments", "run_from_args"]
