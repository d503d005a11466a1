"""The stdin command language of ``python -m tickactors run``.

One command a line::

    subscribe SYM [SYM ...]          the venue's main stream (AllTick: trades; Tradovate: quotes)
    unsubscribe SYM [SYM ...]
    subscribe-book SYM [SYM ...]     order books
    unsubscribe-book SYM [SYM ...]
    subscribe-trades SYM [SYM ...]   trades (Tradovate: Tick charts; AllTick: the main stream)
    unsubscribe-trades SYM [SYM ...]

Words are separated by spaces and tabs only. Any other control character or
Unicode space (``\\x1c``, ``\\x0b``, a no-break space, ...) stays inside its word,
so the symbol check refuses it with a clear error instead of silently splitting
``BTC\\x1cUSDT`` into two symbols. A bad line raises :class:`CommandError` and
changes nothing.
"""

from __future__ import annotations

import re

import attrs

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


def parse_command(line: str) -> Command | None:
    """The command on ``line``; None for a blank line or a ``#`` comment."""
    if len(line) > MAX_LINE:
        raise CommandError(f"line longer than {MAX_LINE} characters")
    words = [word for word in _SEPARATORS.split(line) if word]
    if not words or words[0].startswith("#"):
        return None
    verb, *symbols = words
    if verb.lower() not in _VERBS:
        raise CommandError(
            f"unknown command {verb[:40]!r}; use subscribe, unsubscribe, subscribe-book, "
            "unsubscribe-book, subscribe-trades or unsubscribe-trades"
        )
    if not symbols:
        raise CommandError(f"{verb} needs at least one symbol")
    subscribe, kind = _VERBS[verb.lower()]
    return Command(subscribe, kind, tuple(symbols))
