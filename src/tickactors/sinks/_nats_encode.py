"""What the NATS sink publishes: a subject, a JSON payload and a de-duplication id per item.

Entries reach the publisher thread as they left the feed (a :class:`~tickactors.Tick`,
:class:`~tickactors.BookSnapshot`, :class:`~tickactors.Quote`, a
:class:`~tickactors.SyncSnapshot` or :class:`~tickactors.EntityEvent` of the account, a
:class:`~tickactors.HealthEvent`, or a runner status line as a dict): encoding happens
there, off the Trio thread. An :class:`Outgoing` is an encoded entry; one the server did
not acknowledge goes back into the hand-off as it is, so a retry publishes the very same
bytes with the same ``Nats-Msg-Id`` and JetStream drops the copy if the first attempt
was stored after all (within the stream's duplicate window, 2 minutes by default).
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from .._json_lines import account_dict, encode, event_dict, market_dict
from .._values import (
    AccountUpdate,
    BookSnapshot,
    EntityEvent,
    HealthEvent,
    MarketData,
    Quote,
    SyncSnapshot,
    Tick,
)
from ._subjects import account_subject, health_subject, market_subject

__all__ = ["Entry", "NatsEncoder", "Outgoing", "kind_of"]


@attrs.frozen(slots=True)
class Outgoing:
    """One encoded message."""

    subject: str
    payload: bytes
    headers: dict[str, str] | None
    kind: str


#: What the feed side hands over: market data, account updates, health events, runner
#: status lines, and messages put back after a failed attempt.
Entry = MarketData | AccountUpdate | HealthEvent | dict[str, Any] | Outgoing

_KINDS: dict[type, str] = {
    Tick: "tick",
    BookSnapshot: "book",
    Quote: "quote",
    SyncSnapshot: "sync",
    EntityEvent: "props",
    HealthEvent: "status",
    dict: "status",
}


def kind_of(entry: Entry) -> str:
    """``tick``, ``book``, ``quote``, ``sync``, ``props`` or ``status``: how losses are
    counted."""
    if isinstance(entry, Outgoing):
        return entry.kind
    return _KINDS.get(type(entry), "other")


class NatsEncoder:
    """Entries to :class:`Outgoing` messages on the subjects of ``docs/sinks.md``."""

    def __init__(
        self,
        *,
        venue: str,
        clock_offset: float,
        subject_prefix: str = "ticks",
        health_prefix: str = "health",
        dedup: bool = True,
    ) -> None:
        self._venue = venue
        self._offset = clock_offset
        self._prefix = subject_prefix
        self._health = health_prefix
        self._dedup = dedup
        # Message ids: unique per sink run (a restarted runner must not collide with the
        # ids its predecessor used within the duplicate window), then a counter.
        self._run = os.urandom(6).hex()
        self._seq = 0
        self._subjects: dict[tuple[str, str], str] = {}

    def encode(self, entry: Entry) -> Outgoing:
        if isinstance(entry, Outgoing):
            return entry
        if isinstance(entry, HealthEvent):
            obj = event_dict(entry, self._offset)
            kind = "status"
            subject = health_subject(self._health, self._venue, entry.event)
        elif isinstance(entry, dict):
            obj, kind = entry, "status"
            subject = health_subject(self._health, self._venue, str(entry.get("event", "status")))
        elif isinstance(entry, SyncSnapshot | EntityEvent):
            obj = account_dict(entry, self._offset)
            kind = obj["kind"]
            subject = account_subject(self._prefix, self._venue, entry)
        else:
            obj = market_dict(entry, self._offset)
            kind = obj["kind"]
            subject = self._market_subject(kind, entry.symbol)
        headers = None
        if self._dedup:
            self._seq += 1
            headers = {"Nats-Msg-Id": f"{self._run}-{self._seq}"}
        return Outgoing(subject, encode(obj), headers, kind)

    def _market_subject(self, kind: str, symbol: str) -> str:
        key = (kind, symbol)
        subject = self._subjects.get(key)
        if subject is None:
            if len(self._subjects) > 100_000:  # a churning universe: start the cache anew
                self._subjects.clear()
            subject = self._subjects[key] = market_subject(self._prefix, self._venue, kind, symbol)
        return subject
