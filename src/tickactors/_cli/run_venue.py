"""``run``'s venue from its options, and the checks that need several options at once.

:func:`check_args` runs right after parsing, before anything opens: what single
values cannot show (their types do that) but the options together, or with the
environment, do. ``--plan`` is AllTick's, ``--rest-url`` and ``--replay-start``
Tradovate's; AllTick needs a token (``--token`` or ``TICKACTORS_TOKEN``), Tradovate a
token or ``--rest-url`` with every ``TRADOVATE_*`` credential in the environment
(``--sync`` wants a trading socket, and takes the access token over REST); the
symbols must be the venue's; ``--ca-file`` must load; the connection limits must allow
what ``--max-connection-age`` needs. Each is refused like a bad value, by the parser:
one line, exit status 2.

:func:`open_venue` builds the venue for the run (with its token source open while the
run lasts). It raises :class:`UsageError` for what :func:`check_args` would have
refused, for a caller that skipped it. No message here ever holds a token: the URL
errors are redacted with the token in hand.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

from .._secret import Secret, redact
from ..venues import AllTick, Replay, Tradovate, Venue
from ..venues._tradovate_auth import TradovateCredentials, TradovateTokenSource
from .connection_options import connection_options
from .feed_options import symbols_error
from .tls import TLSOptionError, tls_from_args


class UsageError(Exception):
    """A command line that cannot run; the message names what is wrong, never a secret."""


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse through ``parser`` (one line, exit 2) what the options make wrong together.

    (With ``--config``, ``run_config.check_config_args`` checks the file instead.)
    """
    if args.url is None:
        parser.error("the following arguments are required: --url (or --config FILE)")
    try:
        venue = _venue(args, source=None)
        _check_sync(args, venue)
        problem = symbols_error(args, venue.dialect)
        if problem is not None:
            raise UsageError(problem)
        if args.rest_url is not None:
            _credentials(args)
        if args.ca_file is not None:
            tls_from_args(args)
        connection_options(args, venue.dialect)
    except (UsageError, TLSOptionError, ValueError) as exc:
        parser.error(str(exc))


def token_of(args: argparse.Namespace) -> str | None:
    """``--token``, else ``TICKACTORS_TOKEN`` (None when neither is set or both are empty)."""
    return args.token or os.environ.get("TICKACTORS_TOKEN") or None


def _check_sync(args: argparse.Namespace, venue: Venue) -> None:
    """``--sync`` on a socket that keeps an account; ``--user-id`` with ``--sync``."""
    syncing = getattr(args, "sync", False)
    if getattr(args, "user_id", None) is not None and not syncing:
        raise UsageError("argument --user-id: needs --sync")
    if not syncing:
        return
    if args.venue != "tradovate":
        raise UsageError("argument --sync: for --venue tradovate only (a trading socket)")
    if not venue.dialect.user_sync:
        raise UsageError(
            "argument --sync: the market-data socket keeps no account; --url of a trading "
            "socket (wss://demo.tradovateapi.com/v1/websocket or live)"
        )


def _replay(args: argparse.Namespace) -> Replay | None:
    if args.replay_start is None:
        if args.replay_speed is not None:
            raise UsageError("argument --replay-speed: needs --replay-start")
        return None
    if args.venue != "tradovate":
        raise UsageError("argument --replay-start: for --venue tradovate only")
    speed = 100 if args.replay_speed is None else args.replay_speed
    try:
        return Replay(args.replay_start, speed=speed)
    except ValueError as exc:
        raise UsageError(f"argument --replay-start: {exc}") from None


def _credentials(args: argparse.Namespace) -> TradovateCredentials:
    """The ``TRADOVATE_*`` credentials (``run --config``: the feed's ``credentials_env``)."""
    environ = getattr(args, "credentials_environ", None)
    try:
        return TradovateCredentials.from_env(os.environ if environ is None else environ)
    except ValueError as exc:  # names the missing variables, never a value
        raise UsageError(f"argument --rest-url: {exc}") from None


def _venue(args: argparse.Namespace, source: TradovateTokenSource | None) -> Venue:
    """The venue the options describe; with ``--rest-url``, its tokens from ``source``."""
    token = token_of(args)
    replay = _replay(args)
    plan = getattr(args, "plan", None)
    if args.venue == "alltick":
        if args.rest_url is not None:
            raise UsageError("argument --rest-url: for --venue tradovate only")
        if token is None:
            raise UsageError(
                "--venue alltick needs a token: --token TOKEN or TICKACTORS_TOKEN in the "
                "environment"
            )
        return _built(lambda: AllTick(url=args.url, token=token, plan=plan), token)
    if plan is not None:
        raise UsageError("argument --plan: for --venue alltick only")
    if args.rest_url is None:
        if token is None:
            raise UsageError(
                "--venue tradovate needs --token (or TICKACTORS_TOKEN) or --rest-url "
                "with TRADOVATE_* credentials in the environment"
            )
        return _built(lambda: Tradovate(url=args.url, token=token, replay=replay), token)
    return _built(lambda: Tradovate(url=args.url, token=source, replay=replay), None)


def _built(make: Callable[[], Venue], token: str | None) -> Venue:
    """``make()``; a ValueError (a bad URL, say) is a usage error, its text redacted."""
    try:
        return make()
    except ValueError as exc:
        raise UsageError(
            "argument --url: " + redact(str(exc), Secret(token) if token else None)
        ) from None


@asynccontextmanager
async def open_venue(
    args: argparse.Namespace, ssl_context: ssl.SSLContext | None
) -> AsyncIterator[Venue]:
    """The venue for the run, its token source (``--rest-url``) open while the run lasts."""
    if args.venue != "tradovate" or args.rest_url is None:
        venue = _venue(args, source=None)
        _check_sync(args, venue)
        yield venue
        return
    _check_sync(args, _venue(args, source=None))  # every refusal before the source opens
    credentials = _credentials(args)
    # a sync needs the access token; market data alone the md token
    which: Literal["md", "access"] = "access" if getattr(args, "sync", False) else "md"
    async with TradovateTokenSource(
        args.rest_url, credentials, ssl_context=ssl_context, which=which
    ) as source:
        yield _venue(args, source=source)
