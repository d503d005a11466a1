"""The penalty box: requests the venue told us to resend later, and when.

Tradovate answers a request it will not take now with a penalty ticket: wait
``p-time`` seconds, then resend the identical request with the ticket in its
body. While a request sits in the box, everything else keeps flowing (other
requests, heartbeats): the box only remembers what is due when. A lost
connection empties that connection's part of the box, since the reconciler
sends everything again on the next connection anyway.

Events in: :meth:`PenaltyBox.hold`, :meth:`PenaltyBox.connection_lost`;
out: :meth:`PenaltyBox.poll` returns the items now due, oldest due first.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.frozen(slots=True)
class Due(Generic[T]):
    """An item whose wait is over: resend it with ``ticket``."""

    item: T
    ticket: str
    connection: int
    due: float


class PenaltyBox(Generic[T]):
    """Items waiting out a penalty, per connection."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Due[T]]] = []
        self._order = itertools.count()
        self.held = 0
        self.released = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._heap)

    def hold(self, item: T, *, ticket: str, connection: int, now: float, wait: float) -> float:
        """Hold ``item`` for ``wait`` seconds (negative or NaN: 0); returns when it is due."""
        wait = wait if wait > 0 else 0.0
        due = now + wait
        heapq.heappush(self._heap, (due, next(self._order), Due(item, ticket, connection, due)))
        self.held += 1
        return due

    def poll(self, now: float) -> list[Due[T]]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        self.released += len(out)
        return out

    def connection_lost(self, connection: int) -> list[T]:
        """Forget what was held for ``connection``; returns those items, in hold order, so
        their owner can tell whoever waits for them (a request must never wait forever)."""
        kept = [entry for entry in self._heap if entry[2].connection != connection]
        if len(kept) == len(self._heap):
            return []
        gone = sorted(entry for entry in self._heap if entry[2].connection == connection)
        heapq.heapify(kept)
        self._heap = kept
        self.dropped += len(gone)
        return [entry[2].item for entry in gone]

    def clear(self) -> list[T]:
        """Forget everything held (the owner is stopping); returns the items in the order
        they were due, so that whoever waits for them can be told."""
        gone = sorted(self._heap)
        self._heap = []
        self.dropped += len(gone)
        return [entry[2].item for entry in gone]

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def statistics(self) -> dict[str, int]:
        return {
            "waiting": len(self._heap),
            "held": self.held,
            "released": self.released,
            "dropped": self.dropped,
        }
