"""Which connection's account updates reach the user, and which snapshot is a resync.

Theory of operation
-------------------
A feed that keeps the user's account in sync (``open_feed(sync=True)``) asks the venue for
a snapshot on every new connection (Tradovate ``user/syncrequest``), and from then on that
connection carries the user's entity events (``props``). Most of the time one connection
does. Two do for a moment when a rotation overlaps the old connection with its
replacement (make-before-break): both were synced, so both receive every event. Two
copies of each event in one ordered stream would be harmless if they alternated
perfectly, but they do not: the old connection's "order Working" may come after the new
one's "order Filled", and a bot applying them in that order ends with a stale order.

So the account follows one connection at a time, the *source*:

- a snapshot is always delivered, and its connection becomes the source (the newest
  snapshot describes the account best; events after it apply on top of it);
- an event is delivered when it comes on the source, or when there is no source (the
  feed's first connection before its snapshot, or a new connection after the source
  dropped: events that arrive before a connection's first snapshot are delivered, in
  order, like any other);
- an event on any other connection is dropped and counted (``superseded``): the source
  delivers the same event.
- when the source connection closes there is no source until the next snapshot.

Every snapshot after the feed's first is a *resync* (:attr:`Admission.RESYNCED`): the
state may have moved while no connection carried the account (an order placed over a
dropped connection may exist or not), so the bot should reconcile against it.

The machine reads no clock and keeps counts only.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["AccountRoute", "Admission"]


class Admission(enum.Enum):
    """What to do with one account update."""

    DELIVER = "deliver"
    #: a snapshot after the feed's first: deliver it, and announce a resync
    RESYNCED = "resynced"
    #: another connection carries the account: drop it (that one delivers the same)
    SUPERSEDED = "superseded"


@attrs.frozen(slots=True)
class AccountRouteStatistics:
    source: int | None
    snapshots: int
    events: int
    superseded: int


class AccountRoute:
    """The account's source connection; see the module docstring."""

    def __init__(self) -> None:
        self.source: int | None = None
        self.snapshots = 0
        self.events = 0
        self.superseded = 0

    def snapshot(self, connection: int) -> Admission:
        """A snapshot came on ``connection``: it becomes the source."""
        self.source = connection
        self.snapshots += 1
        return Admission.DELIVER if self.snapshots == 1 else Admission.RESYNCED

    def event(self, connection: int) -> Admission:
        """An entity event came on ``connection``."""
        if self.source is None or self.source == connection:
            self.events += 1
            return Admission.DELIVER
        self.superseded += 1
        return Admission.SUPERSEDED

    def connection_closed(self, connection: int) -> None:
        """``connection`` is gone; if it was the source, there is none until a snapshot."""
        if self.source == connection:
            self.source = None

    def statistics(self) -> AccountRouteStatistics:
        return AccountRouteStatistics(self.source, self.snapshots, self.events, self.superseded)
