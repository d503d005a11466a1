"""The stdin command language of ``python -m tickactors run``.

One command a line::

    subscribe SYM [SYM ...]          the venue's main stream (AllTick: trades; Tradovate: quotes)
    unsubscribe SYM [SYM ...]
    subscribe-book SYM [SYM ...]     order books
    unsubscribe-book SYM [SYM ...]

A bad line raises :class:`CommandError` and changes nothing.
"""

from __future__ import annotations

import attrs

from .._values import BOOK, StreamKind

MAX_LINE = 64 * 1024

#: verb -> (subscribe?, stream); None is the venue's main stream (the feed resolves it)
_VERBS: dict[str, tuple[bool, StreamKind | None]] = {
    "subscribe": (True, None),
    "unsubscribe": (False, None),
    "subscribe-book": (True, BOOK),
    "unsubscribe-book": (False, BOOK),
}


class CommandError(ValueError):
    """A stdin line that is not a command."""


@attrs.frozen
class Command:
    subscribe: bool
    kind: StreamKind | None  # None: the venue's main stream
    symbols: tuple[str, ...]


def parse_command(line: str) -> Command | None:
    """The command on ``line``; None for a blank line or a ``#`` comment."""
    if len(line) > MAX_LINE:
        raise CommandError(f"line longer than {MAX_LINE} characters")
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    verb, *symbols = words
    if verb.lower() not in _VERBS:
        raise CommandError(
            f"unknown command {verb[:40]!r}; use subscribe, unsubscribe, "
            "subscribe-book or unsubscribe-book"
        )
    if not symbols:
        raise CommandError(f"{verb} needs at least one symbol")
    subscribe, kind = _VERBS[verb.lower()]
    return Command(subscribe, kind, tuple(symbols))
