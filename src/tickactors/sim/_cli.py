"""Command line of the simulated exchange (``python -m tickactors sim``, ``-m tickactors.sim``).

:func:`add_arguments` fills an ``argparse`` parser (the runner mounts it as
the ``sim`` subcommand); :func:`run_from_args` runs the simulator until
``--duration`` passes or SIGINT/SIGTERM arrives, and returns the exit status
(0 on every clean stop). The first line on stdout is always
``listening ws://HOST:PORT/quote-b-ws-api`` (AllTick) or
``listening ws://HOST:PORT/v1/websocket rest http://HOST:PORT/v1``
(``--venue tradovate``), ``wss://`` and ``https://`` with ``--tls-cert``;
a one-line summary of the counters goes to stderr at exit. Tokens and
passwords are never printed.

Bad options are refused by the parser, one line and exit status 2: single values
by their types (``tickactors._arg_types``, shared with the runner; it imports
nothing from tickactors), the rest by :func:`check_args` right after parsing
(the TLS files, and the limits together). Every signal that arrives while it runs
is taken (none is left for Python to raise as a KeyboardInterrupt as it closes);
the first one stops it.
"""

from __future__ import annotations

import argparse
import math
import signal
import ssl
import sys
from collections.abc import AsyncIterator

import trio

from .._arg_types import (
    OneLineParser,
    non_empty,
    non_negative_float,
    port,
    positive_float,
    positive_int,
)
from ._config import PLANS, SimConfig
from ._server import VENUES, _check_loopback, open_simulator


def _loopback_host(text: str) -> str:
    try:
        _check_loopback(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    parser.description = (
        "Run a simulated market-data venue on loopback: a real WebSocket server that speaks "
        "the venue's dialect, streams random-walk ticks and injects faults on request. "
        "AllTick: connect to the printed URL with ?token=ANYTHING (or one of --token). "
        "Tradovate: get a token from the printed REST URL (POST /auth/accesstokenrequest), "
        "then authorize on the WebSocket."
    )
    net = parser.add_argument_group("where")
    net.add_argument(
        "--venue", choices=VENUES, default="alltick", help="dialect to speak (default: alltick)"
    )
    net.add_argument(
        "--host",
        type=_loopback_host,
        default="127.0.0.1",
        help="loopback address to bind (default: 127.0.0.1)",
    )
    net.add_argument(
        "--port", type=port, default=0, help="TCP port; 0 picks a free one (default: 0)"
    )
    net.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve over TLS (wss://, https://) with this PEM certificate chain",
    )
    net.add_argument(
        "--tls-key",
        metavar="FILE",
        help="the PEM private key of --tls-cert (default: read from the --tls-cert file)",
    )
    net.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="exit 0 after S seconds (default: run until SIGINT/SIGTERM)",
    )
    venue = parser.add_argument_group("venue behaviour")
    venue.add_argument(
        "--seed", type=int, default=0, help="seed for prices, jitter and random faults"
    )
    venue.add_argument(
        "--token",
        type=non_empty,
        action="append",
        metavar="TOKEN",
        help="accepted token (repeatable); default: any non-empty token",
    )
    venue.add_argument(
        "--tick-interval",
        type=positive_float,
        default=0.1,
        metavar="S",
        help="mean seconds between trades of one symbol (default: 0.1)",
    )
    venue.add_argument(
        "--plan",
        choices=tuple(PLANS),
        help="AllTick plan: its symbols per list, connections per token and the 3 s rule "
        "across a token's connections become the defaults of --max-symbols, "
        "--max-connections-per-token and --token-rate-interval (default: no plan)",
    )
    venue.add_argument(
        "--max-symbols",
        type=positive_int,
        metavar="N",
        help="symbols per subscription list (default: 100, or the plan's)",
    )
    venue.add_argument(
        "--max-connections-per-token",
        type=positive_int,
        metavar="N",
        help="live AllTick connections per token; one more gets ret 429 and close 1008 "
        "(default: unlimited, or the plan's)",
    )
    venue.add_argument(
        "--token-rate-interval",
        type=positive_float,
        metavar="S",
        help="seconds between subscription requests of one token across its connections, "
        "while it has two or more (default: off, or 3 with --plan)",
    )
    venue.add_argument(
        "--over-cap",
        choices=("reject", "ignore"),
        default="ignore",
        help="over --max-symbols: keep the first N and answer 200, as the venue documents, "
        "or answer 603 (default: ignore)",
    )
    venue.add_argument(
        "--default-depth",
        type=positive_int,
        default=1,
        metavar="N",
        help="order-book levels for a subscription without depth_level (default: 1, as the "
        "venue documents; any depth_level >= 1 is accepted, capped at 50)",
    )
    venue.add_argument(
        "--fx-depth",
        choices=("top", "full"),
        default="top",
        help="order books of forex, metals and commodity codes (six uppercase letters: "
        "EURUSD, XAUUSD; and GOLD, Silver, USOIL, ...): one level without volume, as the venue "
        "documents, or as deep as asked with volumes (default: top)",
    )
    venue.add_argument(
        "--wire",
        choices=("strict", "varied"),
        default="strict",
        help="AllTick seq and tick_time: always the documented shape (integers, seconds), or "
        "int or string, seconds or milliseconds, picked per frame (default: strict)",
    )
    venue.add_argument(
        "--heartbeat-timeout",
        type=positive_float,
        metavar="S",
        help="drop a client after S seconds without a heartbeat: AllTick 22000 (default: 30), "
        "Tradovate [] or any request (default: 45)",
    )
    venue.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="do not enforce one request per second per connection",
    )
    venue.add_argument(
        "--rate-scope",
        choices=("api", "connection"),
        default="api",
        help="AllTick's one request per second: per API (cmd_id), so a 22002 and a 22004 may "
        "share a second as the official Go example sends them, or per connection, any two "
        "requests (default: api)",
    )
    venue.add_argument(
        "--heartbeats-count-toward-rate",
        action="store_true",
        help="AllTick heartbeats (22000) count toward one request per second per connection "
        "(default: they do not, as the venue documents the limit per data API)",
    )
    venue.add_argument(
        "--max-connection-age",
        type=positive_float,
        metavar="S",
        help="close connections older than S seconds (default: no limit)",
    )
    venue.add_argument(
        "--firehose",
        action="store_true",
        help="stream trades as fast as clients read them (benchmarks)",
    )
    tradovate = parser.add_argument_group("tradovate")
    tradovate.add_argument(
        "--token-lifetime",
        type=positive_float,
        default=85 * 60.0,
        metavar="S",
        help="seconds an access token lives (default: 5100)",
    )
    tradovate.add_argument(
        "--mute-on-token-expiry",
        action="store_true",
        help="a socket whose token expires stays open but sends nothing more (default: "
        "expiry leaves open sockets alone)",
    )
    tradovate.add_argument(
        "--user", metavar="NAME", help="the only user name accepted (default: any)"
    )
    tradovate.add_argument(
        "--password", metavar="PW", help="the only password accepted (default: any)"
    )
    tradovate.add_argument(
        "--max-connections-per-user",
        type=positive_int,
        default=50,
        metavar="N",
        help="sockets per user; one more closes the oldest (default: 50)",
    )
    tradovate.add_argument(
        "--quote-entries",
        choices=("documented", "mixed"),
        default="documented",
        help="quotes: always the nine entries of the documented data message, complete, or "
        "entries (and their price or size) sometimes missing, as users report (default: "
        "documented)",
    )
    tradovate.add_argument(
        "--history-delay",
        type=non_negative_float,
        default=0.25,
        metavar="S",
        help="seconds between a chart's (or histogram's) answer and its history (default: 0.25)",
    )
    tradovate.add_argument(
        "--histogram-updates",
        choices=("full", "changes"),
        default="full",
        help="histogram events after each trade: the whole day's (refresh true), or the "
        "changed price level alone (refresh false) (default: full)",
    )
    tradovate.add_argument(
        "--replay-drop-after",
        type=positive_float,
        metavar="S",
        help="drop replay sockets S seconds after they open (default: never)",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--random-faults",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="inject a random fault every SECONDS on average (0 = off, default)",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` that the parsed options describe."""
    timeouts: dict[str, float] = {}
    if args.heartbeat_timeout is not None:
        key = "tradovate_heartbeat_timeout" if args.venue == "tradovate" else "heartbeat_timeout"
        timeouts[key] = args.heartbeat_timeout
    # given explicitly, these win over the plan's; otherwise the plan (or none) decides
    limits = {
        key: value
        for key, value in (
            ("max_symbols", args.max_symbols),
            ("max_connections_per_token", args.max_connections_per_token),
            ("token_rate_interval", args.token_rate_interval),
        )
        if value is not None
    }
    return SimConfig(
        plan=args.plan,
        tokens=frozenset(args.token) if args.token else None,
        tick_interval=args.tick_interval,
        **limits,
        over_cap=args.over_cap,
        default_depth=args.default_depth,
        fx_depth=args.fx_depth,
        wire=args.wire,
        rate_scope=args.rate_scope,
        wire_variants=args.quote_entries,
        tradovate_histogram=args.histogram_updates,
        tradovate_history_delay=args.history_delay,
        **timeouts,  # type: ignore[arg-type]
        token_lifetime=args.token_lifetime,
        mute_on_token_expiry=args.mute_on_token_expiry,
        tradovate_user=args.user,
        tradovate_password=args.password,
        max_connections_per_user=args.max_connections_per_user,
        replay_drop_after=args.replay_drop_after,
        enforce_rate=not args.no_rate_limit,
        heartbeats_count_toward_rate=args.heartbeats_count_toward_rate,
        max_connection_age=args.max_connection_age,
        firehose=args.firehose,
        random_faults=args.random_faults,
    )


def tls_from_args(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server TLS context of ``--tls-cert``/``--tls-key``, or None; ValueError if unusable."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if cert is None:
        if key is not None:
            raise ValueError("--tls-key needs --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        files = cert if key is None else f"{cert} and {key}"
        raise ValueError(
            f"--tls-cert/--tls-key: no PEM certificate chain with its private key in {files} "
            f"({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise ValueError(f"--tls-cert/--tls-key: cannot read: {exc}") from None
    return context


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse through ``parser`` what the options make wrong together (one line, exit 2)."""
    try:
        config_from_args(args)
        tls_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))


async def run_from_args(args: argparse.Namespace) -> int:
    """Run the simulator the options describe; 0 on a clean stop, 2 on bad options."""
    try:
        config = config_from_args(args)
        tls = tls_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # the signal handlers are in place before the URL is printed
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        if hasattr(signal, "pthread_sigmask"):  # ``python -m tickactors`` held them back
            signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))
        stopped = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_take_signals, signals, stopped)
            code = await _serve(args, config, tls, stopped)
            nursery.cancel_scope.cancel()
    return code


async def _take_signals(signals: AsyncIterator[int], stopped: trio.Event) -> None:
    async for _ in signals:
        stopped.set()


async def _serve(
    args: argparse.Namespace, config: SimConfig, tls: ssl.SSLContext | None, stopped: trio.Event
) -> int:
    try:
        async with open_simulator(
            args.venue,
            host=args.host,
            port=args.port,
            config=config,
            seed=args.seed,
            ssl_context=tls,
        ) as sim:
            line = f"listening {sim.url}"
            if sim.venue == "tradovate":
                line += f" rest {sim.rest_url}"
            print(line, flush=True)
            with trio.move_on_after(args.duration if args.duration else math.inf):
                await stopped.wait()
            stats = sim.stats
            print(
                f"stopped: connections={stats.connections_opened} "
                f"frames={stats.frames_sent} faults={sum(stats.faults_injected.values())}",
                file=sys.stderr,
                flush=True,
            )
    except (ValueError, OSError) as exc:  # the host refused, the port taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tickactors.sim``."""
    parser = OneLineParser(prog="python -m tickactors.sim")
    add_arguments(parser)
    args = parser.parse_args(argv)
    check_args(parser, args)
    try:
        return trio.run(run_from_args, args)
    except KeyboardInterrupt:  # before the handlers were in place, or after
        return 130
