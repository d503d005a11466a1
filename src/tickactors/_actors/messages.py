"""The messages actors send each other over memory channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from .._core.reconciler import Event, SendRequest
from .._core.requests import Resolution
from .._secret import Secret
from ..venues._dialect import Answer


@attrs.frozen(slots=True)
class Heartbeat:
    """From the heartbeat sender: send the venue's heartbeat on connection ``connection``."""

    connection: int


@attrs.frozen(slots=True)
class Subscription:
    """From the reconciler: send this subscription request on connection ``connection``."""

    connection: int
    request: SendRequest
    #: where the verdict (Acked, Rejected, ...) goes: the inbox of the reconciler that asked
    reply: trio.MemorySendChannel[Event] = attrs.field(eq=False)


@attrs.frozen(slots=True)
class Gated:
    """A subscription request's frame on its way to the writer, which stamps the token's
    spacing gate when it really leaves (a budget wait may have held it back)."""

    frame: str


#: What a connection's writer takes: frames, some of them gated.
Outbound = str | Gated


@attrs.frozen(slots=True)
class AnswerIn:
    """From a reader: the venue answered (or complained, ``request_id`` 0)."""

    connection: int
    answer: Answer


@attrs.frozen(slots=True)
class LinkUp:
    """From a supervisor: connection ``connection`` is open; frames for it go to ``writer``."""

    connection: int
    writer: trio.MemorySendChannel[Outbound]


@attrs.frozen(slots=True)
class ConnectionOpened:
    """From a connector to the reconciler of the shift it serves: connection ``connection``
    is open for it. The reconciler's requests go there and its events name it from now on
    (until the next one opens); ``ConnectionReady`` still says when they may go."""

    connection: int


@attrs.frozen(slots=True)
class LinkDown:
    """From a supervisor: connection ``connection`` is gone; fail what it carried."""

    connection: int


@attrs.frozen(slots=True)
class Authorize:
    """From a session: authorize connection ``connection``; the answer (None: none came) goes
    to ``reply``."""

    connection: int
    token: Secret
    reply: trio.MemorySendChannel[Answer | None] = attrs.field(eq=False)


@attrs.frozen(slots=True)
class LinkReady:
    """From a session: connection ``connection`` is authorized; user requests may use it."""

    connection: int


@attrs.frozen(slots=True)
class UserRequest:
    """From the feed: a request of the user's own (``contract/find``, ...); the resolution
    goes to ``reply``."""

    endpoint: str
    query: str
    body: Any
    reply: trio.MemorySendChannel[Resolution[Any]] = attrs.field(eq=False)
    #: a connection's own setup request (before it is ready): that connection, not the newest
    connection: int | None = None
    #: told each id the request goes out under (a penalty's resend gets a new one), before
    #: its frame is written: the session's reader then knows the answer when it reads it
    #: (the user sync's answer becomes a snapshot in the reader's order)
    opened: Callable[[int], None] | None = attrs.field(default=None, eq=False)


@attrs.frozen(slots=True)
class ReaderPaused:
    """From a session: its reader waits for a slow consumer; the venue's answers sit unread.

    ``paused`` False: it reads again. Request deadlines of ``connection`` stand still
    in between (``RequestTable.hold``/``release``).
    """

    connection: int
    paused: bool


TrackerMessage = (
    Heartbeat
    | Subscription
    | AnswerIn
    | LinkUp
    | LinkDown
    | Authorize
    | LinkReady
    | UserRequest
    | ReaderPaused
)
