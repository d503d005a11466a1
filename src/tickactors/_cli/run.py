"""``python -m tickactors run``: a feed whose ticks and health go to stdout, commands from stdin.

On a terminal, stdout shows the live view (``live_view.py``); piped, JSON lines
(``--format`` chooses: ``jsonl``, ``text``, ``live``).

``--venue alltick`` (token from ``--token`` or ``TICKACTORS_TOKEN``) or ``--venue tradovate``
(a static ``--token``, or ``--rest-url`` with credentials from the ``TRADOVATE_*`` environment
variables, renewed by :class:`~tickactors.venues._tradovate_auth.TradovateTokenSource`).
``--ca-file`` / ``--insecure`` (``tls.py``) apply to the socket and the REST client alike.
Tokens, passwords and ``sec`` are never printed. A fatal error is a status line on stdout
and one ``error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from .._core.shard_share import Shard
from .._errors import CapacityError, FeedError, InvalidSymbolError
from .._feed import Feed, open_feed
from .._secret import Secret, redact
from .._values import BOOK, TRADES
from ..sinks import SinkError, SinkSpecError
from ..venues import AllTick, Replay, Tradovate, Venue
from ..venues._tradovate_auth import TradovateCredentials, TradovateTokenSource
from .commands import MAX_LINE, CommandError, parse_command
from .connection_options import add_connection_arguments, connection_options
from .fanout import open_fanout, parse_sinks
from .fd_lines import open_fd_lines
from .feed_options import add_feed_arguments, share_of, symbols_of
from .live_view import LiveView
from .output import JsonLines, Lines, StreamLines, TextLines, Writer, wall_clock_offset
from .tls import TLSOptionError, add_tls_arguments, tls_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", choices=("alltick", "tradovate"), default="alltick")
    parser.add_argument("--url", required=True, help="the venue's WebSocket URL (no token in it)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=None,
        help="the venue token (or set TICKACTORS_TOKEN); never printed",
    )
    auth.add_argument(
        "--rest-url",
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
        type=int,
        default=100,
        metavar="PCT",
        help="tradovate market replay speed, percent of real time, 0 to 400 (default 100)",
    )
    add_tls_arguments(parser)
    add_feed_arguments(parser)
    add_connection_arguments(parser)


def make_writer(
    fmt: str | None, out: Lines, errors: Lines | None = None, *, title: str | None = None
) -> Writer:
    """The writer for ``--format`` (call inside the Trio run: it reads both clocks).

    None: the live view on a terminal, JSON lines otherwise; both write to ``out``
    (stdout), the live view through rich's own thread. The live view (``title``: its
    first line) also needs its task started with the feed: :meth:`LiveView.start_in`.
    """
    if fmt is None:
        fmt = "live" if sys.stdout.isatty() else "jsonl"
    if fmt == "live":
        return LiveView(title)
    if fmt == "text":
        return TextLines(out, errors=errors)
    return JsonLines(out, clock_offset=wall_clock_offset(), errors=errors)


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
        yield outputs[0], outputs[1]


class _UsageError(Exception):
    """A command line that cannot run; the message names what is wrong, never a secret."""


@asynccontextmanager
async def _venue_from_args(
    args: argparse.Namespace, ssl_context: ssl.SSLContext | None
) -> AsyncIterator[Venue]:
    """The venue the options describe (with its token source open while the run lasts)."""
    token = args.token or os.environ.get("TICKACTORS_TOKEN")
    replay = None
    if args.replay_start is not None:
        if args.venue != "tradovate":
            raise _UsageError("--replay-start is for --venue tradovate only")
        try:
            replay = Replay(args.replay_start, speed=args.replay_speed)
        except ValueError as exc:
            raise _UsageError(f"--replay-start/--replay-speed: {exc}") from None
    plan = getattr(args, "plan", None)
    if args.venue == "alltick":
        if args.rest_url:
            raise _UsageError("--rest-url is for --venue tradovate only")
        yield _built(lambda: AllTick(url=args.url, token=token, plan=plan), token)
        return
    if plan is not None:
        raise _UsageError("--plan is for --venue alltick only")
    if not args.rest_url:
        if not token:
            raise _UsageError(
                "--venue tradovate needs --token (or TICKACTORS_TOKEN) or --rest-url "
                "with TRADOVATE_* credentials in the environment"
            )
        yield _built(lambda: Tradovate(url=args.url, token=token, replay=replay), token)
        return
    try:
        credentials = TradovateCredentials.from_env()
    except ValueError as exc:  # names the missing variables, never a value
        raise _UsageError(f"--rest-url: {exc}") from None
    async with TradovateTokenSource(args.rest_url, credentials, ssl_context=ssl_context) as source:
        yield _built(lambda: Tradovate(url=args.url, token=source, replay=replay), None)


def _built(make: Callable[[], Venue], token: str | None) -> Venue:
    """``make()``; a ValueError (a bad URL, say) is a usage error, its text redacted."""
    try:
        return make()
    except ValueError as exc:
        raise _UsageError(redact(str(exc), Secret(token) if token else None)) from None


async def run_from_args(args: argparse.Namespace) -> int:
    async with open_outputs() as (out, errors):
        return await _run_with_writer(args, make_writer(args.format, out, errors))


async def _run_with_writer(args: argparse.Namespace, writer: Writer) -> int:
    try:
        ssl_context = tls_from_args(args)
        async with _venue_from_args(args, ssl_context) as venue:
            extra = writer.start_in if isinstance(writer, LiveView) else None
            return await run_feed(venue, args, writer, extra=extra, ssl_context=ssl_context)
    except (_UsageError, TLSOptionError) as exc:
        writer.status("error", str(exc))
        return 2


async def run_feed(
    venue: Venue,
    args: argparse.Namespace,
    writer: Writer,
    *,
    extra: Callable[[Feed, trio.Nursery], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Run a feed until --duration, SIGINT/SIGTERM or a fatal error. Returns the exit code.

    With ``--sink``, everything written goes to the sinks too (``fanout.py``); the final
    ``stopped`` line then carries each sink's statistics, taken after it closed.
    """
    try:
        specs = parse_sinks(getattr(args, "sink", None))
    except SinkSpecError as exc:
        writer.status("error", f"--sink: {exc}")
        return 2
    # the sinks' lines carry the same times as stdout's, to the microsecond
    offset = writer.clock_offset if isinstance(writer, JsonLines) else wall_clock_offset()
    try:
        async with open_fanout(
            writer, specs, venue=venue.dialect.name, clock_offset=offset
        ) as fanout:
            code = await _run_feed(venue, args, fanout, extra, ssl_context)
    except SinkError as exc:  # a sink that cannot start: nats-py missing, a path not writable
        writer.status("error", f"--sink: {exc}")
        return 2
    if code == 0:
        detail = {"sinks": fanout.statistics()} if fanout.sinks else {}
        writer.status("stopped", "bye", **detail)
    return code


async def _run_feed(
    venue: Venue,
    args: argparse.Namespace,
    writer: Writer,
    extra: Callable[[Feed, trio.Nursery], None] | None,
    ssl_context: ssl.SSLContext | None,
) -> int:
    try:
        connections = connection_options(args, venue.dialect)
    except ValueError as exc:
        writer.status("error", str(exc))
        return 2
    if getattr(args, "buffer", None) is not None:
        connections["buffer"] = args.buffer
    try:
        with trio.move_on_after(args.duration if args.duration else float("inf")):
            async with open_feed(
                venue,
                stale_after=args.stale_after,
                symbol_stale_after=args.symbol_stale_after,
                policies=getattr(args, "policy", None),
                seed=args.seed,
                ssl_context=ssl_context,
                **connections,
            ) as feed:
                main, books = symbols_of(args.symbols), symbols_of(args.book_symbols)
                try:
                    feed.subscribe(*share_of(args, main))
                    feed.subscribe(*share_of(args, books), kind=BOOK)
                except (InvalidSymbolError, CapacityError) as exc:
                    writer.status("error", str(exc))
                    return 2
                if args.shard is not None:
                    writer.status(
                        "shard",
                        f"shard {args.shard}",
                        shard=str(args.shard),
                        symbols=share_of(args, main),
                        book_symbols=share_of(args, books),
                        others=len(main) + len(books) - len(share_of(args, main + books)),
                    )
                read_commands = functools.partial(_read_commands, shard=args.shard)
                async with trio.open_nursery() as nursery:
                    for task in (_pump_market, _pump_events, read_commands):
                        nursery.start_soon(_until_stdout_closes, task, feed, writer, nursery)
                    nursery.start_soon(_until_signal, nursery.cancel_scope)
                    if extra is not None:
                        extra(feed, nursery)
    except FeedError as exc:
        writer.status("fatal", str(exc), error=type(exc).__name__)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
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


async def _pump_events(feed: Feed, writer: Writer) -> None:
    async for event in feed.events():
        writer.event(event)


async def _until_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _read_commands(feed: Feed, writer: Writer, *, shard: Shard | None = None) -> None:
    """Apply stdin commands until stdin ends (then keep running)."""
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
                    apply_line(feed, writer, pending, shard)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                apply_line(feed, writer, line, shard)
            if len(pending) > MAX_LINE:
                writer.status("command_error", f"line longer than {MAX_LINE} bytes, ignored")
                pending = b""


def apply_line(feed: Feed, writer: Writer, raw: bytes, shard: Shard | None = None) -> None:
    """Apply one stdin line; a bad one gets a status error and changes nothing.

    With a ``shard``, the symbols other shards own are left to them (and counted).
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        writer.status("command_error", "a line that is not UTF-8, ignored")
        return
    try:
        command = parse_command(line.rstrip("\r"))
        if command is None:
            return
        symbols = command.symbols if shard is None else tuple(shard.share(command.symbols))
        if command.subscribe:
            feed.subscribe(*symbols, kind=command.kind)
        else:
            feed.unsubscribe(*symbols, kind=command.kind)
    except (CommandError, InvalidSymbolError, CapacityError) as exc:
        writer.status("command_error", str(exc))
        return
    kind = feed.dialect.kinds[0] if command.kind is None else command.kind
    detail: dict[str, Any] = {
        "stream": kind.value,
        "symbols": list(symbols),
    }
    if shard is not None:
        detail["others"] = len(command.symbols) - len(symbols)
    verb = "subscribe" if command.subscribe else "unsubscribe"
    writer.status("command", verb, **detail)


__all__ = ["TRADES", "add_arguments", "run_from_args"]
