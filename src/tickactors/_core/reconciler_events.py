"""The vocabulary of the subscription reconciler: its events, its commands, its enums.

Everything here is a frozen attrs value; collections inside are frozensets or
tuples. The machine itself lives in :mod:`tickactors._core.reconciler`.

Events (what the actor tells the reconciler):

* user intent: :class:`Want`, :class:`Unwant`, or many of them at once: :class:`Intents`;
* connection life: :class:`ConnectionReady`, :class:`ConnectionLost`;
* answers to a :class:`SendRequest`, matched by ``ref``: :class:`Acked`,
  :class:`Rejected`, :class:`RateLimited`, :class:`TimedOut`;
* observations of the stream: :class:`GhostSeen`, :class:`Refresh`.

Commands (what the reconciler asks of the actor):

* :class:`SendRequest`: put this request on the wire, and answer it later with an
  event carrying the same ``ref``;
* notifications for the user or the log: :class:`Confirmed`,
  :class:`SymbolsRejected`, :class:`GhostPersisting`.
"""

from __future__ import annotations

import enum

import attrs

from tickactors._values import StreamKind

__all__ = [
    "Acked",
    "Action",
    "Command",
    "Confirmed",
    "ConnectionLost",
    "ConnectionReady",
    "Event",
    "GhostPersisting",
    "GhostSeen",
    "IntentChange",
    "Intents",
    "RateLimited",
    "Refresh",
    "Rejected",
    "Semantics",
    "SendRequest",
    "SymbolsRejected",
    "TimedOut",
    "Unwant",
    "Want",
]


class Semantics(enum.Enum):
    """How a venue interprets a subscription request."""

    #: Each request carries the whole set of its kind and replaces the previous one (AllTick).
    REPLACE_ALL = "replace-all"
    #: One request per symbol, subscribe or unsubscribe (Tradovate).
    INCREMENTAL = "incremental"


class Action(enum.Enum):
    """What a :class:`SendRequest` asks the venue to do."""

    #: REPLACE_ALL: the venue's set for the kind becomes exactly ``symbols``.
    REPLACE = "replace"
    #: REPLACE_ALL: the venue's set for the kind becomes empty (``symbols == ()``).
    CANCEL = "cancel"
    #: INCREMENTAL: add the one symbol.
    SUBSCRIBE = "subscribe"
    #: INCREMENTAL: remove the one symbol.
    UNSUBSCRIBE = "unsubscribe"


# --------------------------------------------------------------------------- events


@attrs.frozen(slots=True)
class Want:
    """The user wants these symbols streamed (idempotent)."""

    kind: StreamKind
    symbols: frozenset[str]


@attrs.frozen(slots=True)
class Unwant:
    """The user no longer wants these symbols; this also clears their rejection."""

    kind: StreamKind
    symbols: frozenset[str]


#: One change of the user's intent: ``(kind, symbols, wanted)``; ``wanted`` False: unwanted.
IntentChange = tuple[StreamKind, tuple[str, ...], bool]


@attrs.frozen(slots=True)
class Intents:
    """Changes of the user's intent, in the order the user made them.

    Each change is handled exactly as ``Want(kind, frozenset(symbols))`` (``wanted``) or
    ``Unwant(kind, frozenset(symbols))`` would be, one after the other: one event carries
    a burst of ``subscribe``/``unsubscribe`` calls (a one-symbol change costs least).
    """

    changes: tuple[IntentChange, ...]


@attrs.frozen(slots=True)
class ConnectionReady:
    """A new connection is open and authorized: everything desired is sent again."""


@attrs.frozen(slots=True)
class ConnectionLost:
    """The connection is gone: nothing is confirmed, everything in flight is void."""


@attrs.frozen(slots=True)
class Acked:
    """The venue accepted request ``ref``."""

    ref: int


@attrs.frozen(slots=True)
class Rejected:
    """The venue refused request ``ref`` because of its symbols.

    ``code``/``reason`` are the venue's (AllTick ``ret`` 600, 603, 604; Tradovate
    non-2xx). ``symbols`` names the offenders when the venue does, else ``None``
    (the whole request was refused and the culprits are unknown).
    """

    ref: int
    code: int
    reason: str
    symbols: frozenset[str] | None = None


@attrs.frozen(slots=True)
class RateLimited:
    """The venue refused request ``ref`` for speed (429/605), not for its symbols.

    Nothing is sent on this connection before ``retry_after`` seconds (default:
    the reconciler's ``retry_delay``); then the current target is sent again.
    """

    ref: int
    retry_after: float | None = None


@attrs.frozen(slots=True)
class TimedOut:
    """No answer to request ``ref`` by its deadline: the venue's state is unknown."""

    ref: int


@attrs.frozen(slots=True)
class GhostSeen:
    """A tick arrived for a symbol the user does not want."""

    kind: StreamKind
    symbol: str


@attrs.frozen(slots=True)
class Refresh:
    """These desired symbols went silent: subscribe them again."""

    kind: StreamKind
    symbols: frozenset[str]


Event = (
    Want
    | Unwant
    | Intents
    | ConnectionReady
    | ConnectionLost
    | Acked
    | Rejected
    | RateLimited
    | TimedOut
    | GhostSeen
    | Refresh
)

# ------------------------------------------------------------------------- commands


@attrs.frozen(slots=True)
class SendRequest:
    """Put a request on the wire; answer it with an event carrying ``ref``.

    ``REPLACE``: the whole set, sorted, non-empty, without duplicates.
    ``CANCEL``: ``symbols == ()``. ``SUBSCRIBE``/``UNSUBSCRIBE``: exactly one symbol.
    """

    ref: int
    kind: StreamKind
    action: Action
    symbols: tuple[str, ...]


@attrs.frozen(slots=True)
class Confirmed:
    """The set the venue confirmed for ``kind`` on this connection is now ``symbols``.

    Emitted on every answer that changes it; not on ``ConnectionLost`` (which
    silently empties every confirmed set).
    """

    kind: StreamKind
    symbols: frozenset[str]


@attrs.frozen(slots=True)
class SymbolsRejected:
    """These symbols will not be requested again until unwanted and wanted anew."""

    kind: StreamKind
    symbols: frozenset[str]
    code: int
    reason: str


@attrs.frozen(slots=True)
class GhostPersisting:
    """Ticks keep arriving for an unwanted symbol; the removal is being repeated.

    Always emitted just before the corrective :class:`SendRequest`.
    """

    kind: StreamKind
    symbol: str
    count: int


Command = SendRequest | Confirmed | SymbolsRejected | GhostPersisting
