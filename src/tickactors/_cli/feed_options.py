"""The options every feed-running command shares (``run`` and ``demo``), and their types.

Single values are checked by their ``type=`` (``.._arg_types``); :func:`symbols_error`
checks ``--symbols``, ``--book-symbols`` and ``--trade-symbols`` against the venue's
rules once the venue is known, right after parsing. :func:`nothing_to_subscribe` is the
warning for a run that would subscribe nothing.
"""

from __future__ import annotations

import argparse

from .._arg_types import listen_address, positive_float
from .._core.lanes import Policy, parse_policies
from .._core.shard_share import Shard
from .._errors import InvalidSymbolError
from .._values import StreamKind
from ..sinks import SinkSpecError, parse_sink
from ..venues._dialect import Dialect
from .logs import add_log_argument


def add_feed_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every feed-running command shares."""
    parser.add_argument(
        "--symbols",
        default="",
        help="symbols of the venue's main stream (AllTick: trades; Tradovate: quotes), "
        "comma-separated: A,B,C",
    )
    parser.add_argument(
        "--book-symbols", default="", help="order-book (Tradovate: DOM) symbols, comma-separated"
    )
    parser.add_argument(
        "--trade-symbols",
        default="",
        help="trade symbols, comma-separated (Tradovate: a Tick chart each; AllTick: trades, "
        "the main stream, as --symbols)",
    )
    parser.add_argument(
        "--format",
        choices=("jsonl", "text", "live"),
        default=None,
        help="jsonl: one JSON object per line (default when stdout is not a terminal); "
        "text: one line of text per tick and event; live: a view of prices, connections "
        "and events that redraws in place on the terminal's alternate screen (default on "
        "a terminal)",
    )
    parser.add_argument(
        "--stale-after",
        type=positive_float,
        default=None,
        metavar="S",
        help="seconds without any message before reconnecting (venue default)",
    )
    parser.add_argument(
        "--symbol-stale-after",
        type=positive_float,
        default=None,
        metavar="S",
        help="seconds a confirmed symbol may be silent before it is re-subscribed (off by default)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="S",
        help="stop cleanly after S seconds (default: run until SIGINT or SIGTERM)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for backoff jitter")
    parser.add_argument(
        "--policy",
        type=_policies,
        default=None,
        metavar="KIND=POLICY,...",
        help="what each stream kind does for a slow consumer: block (backpressure), "
        "conflate (the latest per symbol) or drop-oldest; default "
        "trades=block,book=conflate,quotes=conflate; drops are counted and announced in "
        "'gap' events",
    )
    parser.add_argument(
        "--buffer",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="items of each stream kind the feed holds for a slow reader (of stdout, of a "
        "file sink) before the stream's --policy applies (default 100000)",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run shard I of N (0 <= I < N): of every symbol given (options and stdin "
        "commands alike) take only this shard's share (rendezvous hashing: N processes "
        "given the same symbols cover each exactly once; adding one moves few)",
    )
    parser.add_argument(
        "--sink",
        type=_sink,
        action="append",
        default=None,
        metavar="SPEC",
        help="also write every tick and health event to SPEC (repeatable): "
        "jsonl:PATH[?max_bytes=100M&max_seconds=3600&fsync=rotate|batch] (rotating JSON-lines "
        "files), parquet:DIR[?max_seconds=300&max_rows=1000000&row_group=65536] (typed "
        "Parquet files per stream, partitioned by date; needs tickactors[parquet]) or "
        "nats://HOST:PORT[?stream=TICKACTORS&buffer=100000&batch=1000&...] (NATS "
        "JetStream, subjects ticks.<venue>.<kind>.<symbol> and health.<venue>.<event>); "
        "see docs/sinks.md",
    )
    parser.add_argument(
        "--metrics",
        type=listen_address,
        default=None,
        metavar="[HOST:]PORT",
        help="serve the feed's metrics in Prometheus' text format at "
        "http://HOST:PORT/metrics (PORT alone: on 127.0.0.1; port 0: a free one, named in "
        "the 'metrics' status line); see docs/operations.md",
    )
    add_log_argument(parser)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def symbols_of(text: str) -> list[str]:
    return [s for s in (part.strip() for part in text.split(",")) if s]


def symbols_error(args: argparse.Namespace, dialect: Dialect) -> str | None:
    """What is wrong with ``--symbols`` / ``--book-symbols`` / ``--trade-symbols`` for
    ``dialect`` (None: nothing).

    Every symbol given is checked, not only this shard's share: the shards of one
    universe refuse it alike.
    """
    options = (
        ("--symbols", args.symbols),
        ("--book-symbols", args.book_symbols),
        ("--trade-symbols", getattr(args, "trade_symbols", "")),
    )
    for option, text in options:
        for symbol in symbols_of(text or ""):
            try:
                dialect.validate_symbol(symbol)
            except InvalidSymbolError as exc:
                return f"argument {option}: {exc}"
    return None


def nothing_to_subscribe(args: argparse.Namespace, given: int) -> str:
    """The warning for a run that subscribes nothing at start (``given``: symbols given)."""
    shard: Shard | None = getattr(args, "shard", None)
    if not given or shard is None:
        why = "--symbols, --book-symbols and --trade-symbols name no symbol"
    else:
        why = f"--shard {shard.index}/{shard.count} takes none of the {given} symbol(s) given"
    return f"warning: nothing to subscribe: {why}; running, stdin commands may subscribe"


def _policies(text: str) -> dict[StreamKind, Policy]:
    try:
        return parse_policies(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sink(text: str) -> str:
    """A ``--sink`` value that parses (kept as text: ``fanout.parse_sinks`` reads it)."""
    try:
        parse_sink(text)
    except SinkSpecError as exc:  # its message masks a password
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def share_of(args: argparse.Namespace, symbols: list[str]) -> list[str]:
    """``symbols`` as ``--shard`` leaves them (all of them without it)."""
    shard: Shard | None = getattr(args, "shard", None)
    return symbols if shard is None else shard.share(symbols)
