"""The stdin command language of ``python -m tickactors run``.

One command a line::

    subscribe SYM [SYM ...]          the venue's main stream (AllTick: trades; Tradovate: quotes)
    unsubscribe SYM [SYM ...]
    subscribe-book SYM [SYM ...]     order books
    unsubscribe-book SYM [SYM ...]
    subscribe-trades SYM [SYM ...]   trades (Tradovate: Tick charts; AllTick: the main stream)
    unsubscribe-trades SYM [SYM ...]
    request ENDPOINT [QUERY] [JSON-BODY]   a request of the user's own (``feed.request``)

Words are separated by spaces and tabs only. Any other control character or
Unicode space (``\\x1c``, ``\\x0b``, a no-break space, ...) stays inside its word,
so the symbol check refuses it with a clear error instead of silently splitting
``BTC\\x1cUSDT`` into two symbols. A bad line raises :class:`CommandError` and
changes nothing.

A ``request`` line: the endpoint is its first word (``order/placeorder``); a word that
starts with ``{`` or ``[`` begins the JSON body, which is the rest of the line (spaces
included); any other word before it is the query, URL-encoded (``name=ESZ6``). So
``request contract/find name=ESZ6`` sends a query, ``request order/placeorder
{"action": "Buy", ...}`` a body, and both may come together, query first. A body that
does not parse as JSON, a missing endpoint, a second query word or text after the body
is a :class:`CommandError`: nothing is sent.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import orjson

from .._values import BOOK, TRADES, StreamKind

MAX_LINE = 64 * 1024
_SEPARATORS = re.compile(r"[ \t]+")

#: verb -> (subscribe?, stream); None is the venue's main stream (the feed resolves it)
_VERBS: dict[str, tuple[bool, StreamKind | None]] = {
    "subscribe": (True, None),
    "unsubscribe": (False, None),
    "subscribe-book": (True, BOOK),
    "unsubscribe-book": (False, BOOK),
    "subscribe-trades": (True, TRADES),
    "unsubscribe-trades": (False, TRADES),
}


class CommandError(ValueError):
    """A stdin line that is not a command."""


@attrs.frozen
class Command:
    subscribe: bool
    kind: StreamKind | None  # None: the venue's main stream
    symbols: tuple[str, ...]


@attrs.frozen
class RequestCommand:
    """``request ENDPOINT [QUERY] [JSON-BODY]``: the body parsed (None: no body)."""

    endpoint: str
    query: str = ""
    body: Any = None


def parse_command(line: str) -> Command | RequestCommand | None:
    """The command on ``line``; None for a blank line or a ``#`` comment."""
    if len(line) > MAX_LINE:
        raise CommandError(f"line longer than {MAX_LINE} characters")
    words = [word for word in _SEPARATORS.split(line) if word]
    if not words or words[0].startswith("#"):
        return None
    verb, *symbols = words
    if verb.lower() == "request":
        return _parse_request(_SEPARATORS.split(line.strip(" \t"), maxsplit=1)[1:])
    if verb.lower() not in _VERBS:
        raise CommandError(
            f"unknown command {verb[:40]!r}; use subscribe, unsubscribe, subscribe-book, "
            "unsubscribe-book, subscribe-trades, unsubscribe-trades or request"
        )
    if not symbols:
        raise CommandError(f"{verb} needs at least one symbol")
    subscribe, kind = _VERBS[verb.lower()]
    return Command(subscribe, kind, tuple(symbols))


def _is_body(text: str) -> bool:
    return text[:1] in ("{", "[")


def _parse_request(rest: list[str]) -> RequestCommand:
    """``rest``: what follows the verb (one string, or none)."""
    usage = "request takes ENDPOINT [QUERY] [JSON-BODY]"
    words = _SEPARATORS.split(rest[0], maxsplit=1) if rest else []
    if not words or _is_body(words[0]):
        raise CommandError(f"{usage}: the endpoint is missing")
    endpoint, tail = words[0], words[1:]
    query = ""
    if tail and not _is_body(tail[0]):
        query, *tail = _SEPARATORS.split(tail[0], maxsplit=1)
        if tail and not _is_body(tail[0]):
            raise CommandError(f"{usage}: unexpected {tail[0][:40]!r} after the query")
    for name, text in (("endpoint", endpoint), ("query", query)):
        if not text.isprintable():
            raise CommandError(f"request: the {name} {text[:40]!r} holds a control character")
    if not tail:
        return RequestCommand(endpoint, query)
    try:
        body = orjson.loads(tail[0])
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"request {endpoint[:40]}: the body is not JSON: {exc}") from None
    return RequestCommand(endpoint, query, body)
