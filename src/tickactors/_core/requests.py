"""Request table: unique request ids, each with a deadline, each resolved exactly once.

Theory of operation
-------------------

Every request a feed sends to a venue (subscribe, authorize, a REST call over the socket) is
keyed by a request id the venue echoes back (AllTick's ``seq_id``, Tradovate's request id). The
table hands out those ids, remembers each open request's caller data (``meta``), deadline and
connection, and guarantees that **every request resolves exactly once**, with one of four
outcomes:

``ANSWERED``
    :meth:`RequestTable.answer` matched an open id.
``TIMED_OUT``
    :meth:`RequestTable.poll` found the deadline passed (``deadline <= now``). Requests resolve
    in deadline order (ties in the order they were opened).
``CONNECTION_LOST``
    :meth:`RequestTable.connection_lost` fails every open request of that connection at once:
    the answer can no longer arrive, so nobody waits for the deadline.
``CLOSED``
    :meth:`RequestTable.close` fails everything still open (the feed is closing).

An answer for an id that is not open returns None and is only counted: ``late_answers`` for an id
this table handed out that has already resolved (typically an answer after its timeout),
``unknown_answers`` for an id it never handed out. No exception: a late or stray answer is a
venue's business, not a bug in the caller.

Ids come from a counter starting at ``first_id``, so an id is never handed out twice while the
counter has not wrapped. Venues use bounded ids (uint32), so past ``max_id`` the counter wraps to
``first_id`` and skips every id still open; an id is reused only after ``max_id - first_id + 1``
newer requests, long after any answer to its earlier holder could plausibly arrive.

Deadlines live in a binary heap with lazy deletion: resolving a request does not search the heap,
it just removes the request from the open map; :meth:`next_deadline` and :meth:`poll` drop stale
heap entries as they meet them (each entry carries a serial number, so a reused id never matches
a stale entry). When stale entries outnumber live ones the heap is rebuilt, which keeps its size
proportional to the open requests. Opening, answering and ``next_deadline`` are O(log n)
amortized.
"""

from __future__ import annotations

import enum
import heapq
import math
from typing import Generic, TypeVar

import attrs

__all__ = ["Outcome", "RequestStatistics", "RequestTable", "Resolution"]

M = TypeVar("M")


class Outcome(enum.Enum):
    """How a request ended."""

    ANSWERED = "answered"
    TIMED_OUT = "timed_out"
    CONNECTION_LOST = "connection_lost"
    CLOSED = "closed"


@attrs.frozen
class Resolution(Generic[M]):
    """The one and only end of a request."""

    request_id: int
    meta: M
    outcome: Outcome
    answer: object | None  # the venue's answer for ANSWERED, None otherwise
    opened_at: float
    resolved_at: float


@attrs.frozen
class RequestStatistics:
    """A snapshot for introspection (see :meth:`RequestTable.statistics`)."""

    opened: int
    answered: int
    timed_out: int
    connection_lost: int
    closed: int
    late_answers: int
    unknown_answers: int
    open: int


@attrs.define(slots=True)
class _Open(Generic[M]):
    meta: M
    opened_at: float
    deadline: float
    connection: int
    serial: int


class RequestTable(Generic[M]):
    """Unique request ids with deadlines; every opened request resolves exactly once."""

    def __init__(self, *, first_id: int = 1, max_id: int = 2**32 - 1) -> None:
        if first_id < 0 or max_id < first_id:
            raise ValueError(f"need 0 <= first_id <= max_id, got {first_id!r}, {max_id!r}")
        self._first_id = first_id
        self._max_id = max_id
        self._next_id = first_id
        self._wrapped = False
        self._serial = 0
        self._open: dict[int, _Open[M]] = {}
        self._by_connection: dict[int, dict[int, None]] = {}
        self._held: dict[int, float] = {}  # connection -> held since
        self._heap: list[tuple[float, int, int]] = []  # (deadline, serial, request_id)
        self._opened = 0
        self._counts = dict.fromkeys(Outcome, 0)
        self._late_answers = 0
        self._unknown_answers = 0

    @property
    def open_count(self) -> int:
        """How many requests are open."""
        return len(self._open)

    def is_open(self, request_id: int) -> bool:
        return request_id in self._open

    def open(self, meta: M, *, now: float, timeout: float, connection: int) -> int:
        """Open a request that must resolve by ``now + timeout``; returns its id.

        Raises :class:`ValueError` for a negative or non-finite timeout and :class:`RuntimeError`
        if every id in ``[first_id, max_id]`` is open at once.
        """
        if not (math.isfinite(timeout) and timeout >= 0.0):
            raise ValueError(f"timeout must be a finite number >= 0, got {timeout!r}")
        request_id = self._take_id()
        self._serial += 1
        deadline = now + timeout
        self._open[request_id] = _Open(meta, now, deadline, connection, self._serial)
        self._by_connection.setdefault(connection, {})[request_id] = None
        if connection not in self._held:  # a held connection's clocks start on release
            heapq.heappush(self._heap, (deadline, self._serial, request_id))
        self._opened += 1
        return request_id

    def _take_id(self) -> int:
        if len(self._open) > self._max_id - self._first_id:
            raise RuntimeError("request table full: every request id is open")
        while True:
            request_id = self._next_id
            if request_id >= self._max_id:
                self._next_id = self._first_id
                self._wrapped = True
            else:
                self._next_id = request_id + 1
            if request_id not in self._open:
                return request_id

    def _was_handed_out(self, request_id: int) -> bool:
        if not self._first_id <= request_id <= self._max_id:
            return False
        return self._wrapped or request_id < self._next_id

    def answer(self, request_id: int, answer: object, now: float) -> Resolution[M] | None:
        """Resolve an open request as ANSWERED; None (counted) for a late or unknown id."""
        if request_id not in self._open:
            if self._was_handed_out(request_id):
                self._late_answers += 1
            else:
                self._unknown_answers += 1
            return None
        resolution = self._resolve(request_id, Outcome.ANSWERED, answer, now)
        self._maybe_compact()
        return resolution

    def poll(self, now: float) -> list[Resolution[M]]:
        """Every open request with ``deadline <= now`` resolves as TIMED_OUT, in deadline order."""
        resolved: list[Resolution[M]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, serial, request_id = heapq.heappop(heap)
            entry = self._open.get(request_id)
            if entry is not None and entry.serial == serial:
                resolved.append(self._resolve(request_id, Outcome.TIMED_OUT, None, now))
        return resolved

    def connection_lost(self, connection: int, now: float) -> list[Resolution[M]]:
        """Every open request of ``connection`` fails at once, in the order they were opened."""
        self._held.pop(connection, None)
        ids = self._by_connection.get(connection)
        if not ids:
            return []
        resolved = [
            self._resolve(request_id, Outcome.CONNECTION_LOST, None, now)
            for request_id in list(ids)
        ]
        self._maybe_compact()
        return resolved

    def close(self, now: float) -> list[Resolution[M]]:
        """Everything open fails as CLOSED, in the order opened. The table stays usable."""
        resolved = [
            self._resolve(request_id, Outcome.CLOSED, None, now) for request_id in list(self._open)
        ]
        self._heap.clear()
        return resolved

    def next_deadline(self) -> float | None:
        """The earliest deadline of an open request, or None when nothing is open."""
        heap = self._heap
        while heap:
            _, serial, request_id = heap[0]
            entry = self._open.get(request_id)
            if entry is not None and entry.serial == serial:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def _resolve(
        self, request_id: int, outcome: Outcome, answer: object | None, now: float
    ) -> Resolution[M]:
        entry = self._open.pop(request_id)
        ids = self._by_connection[entry.connection]
        del ids[request_id]
        if not ids:
            del self._by_connection[entry.connection]
        self._counts[outcome] += 1
        return Resolution(
            request_id=request_id,
            meta=entry.meta,
            outcome=outcome,
            answer=answer,
            opened_at=entry.opened_at,
            resolved_at=now,
        )

    def _maybe_compact(self) -> None:
        # Only resolutions outside poll() leave stale entries behind; rebuild when they dominate.
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._open):
            self._compact()

    def _compact(self) -> None:
        held = self._held
        self._heap = [
            (entry.deadline, entry.serial, request_id)
            for request_id, entry in self._open.items()
            if entry.connection not in held
        ]
        heapq.heapify(self._heap)

    def hold(self, connection: int, now: float) -> None:
        """Stop the clocks of ``connection``'s requests: its reader is not reading.

        A reader that waits for a slow consumer (backpressure) leaves the venue's answers
        unread in the socket; their deadlines must not pass for that. Requests opened
        while held run from their opening on :meth:`release`. Idempotent.
        """
        if connection in self._held:
            return
        self._held[connection] = now
        for request_id in self._by_connection.get(connection, ()):
            entry = self._open[request_id]
            entry.serial = self._bump()  # its heap entry is stale now

    def release(self, connection: int, now: float) -> None:
        """Start the clocks again: every open request of ``connection`` gets the time it
        was held added to its deadline."""
        since = self._held.pop(connection, None)
        if since is None:
            return
        held_for = max(0.0, now - since)
        for request_id in self._by_connection.get(connection, ()):
            entry = self._open[request_id]
            entry.deadline += held_for if entry.opened_at <= since else now - entry.opened_at
            entry.serial = self._bump()
            heapq.heappush(self._heap, (entry.deadline, entry.serial, request_id))

    def _bump(self) -> int:
        self._serial += 1
        return self._serial

    def overdue(self, now: float, grace: float = 0.0) -> list[int]:
        """Open requests whose deadline passed more than ``grace`` seconds before ``now``.

        None, as long as the owner polls at every :meth:`next_deadline`; an audit (the
        chaos soak) asks, to prove no request outlives its deadline.
        """
        limit = now - grace
        held = self._held
        return [
            rid
            for rid, entry in self._open.items()
            if entry.deadline < limit and entry.connection not in held
        ]

    def statistics(self) -> RequestStatistics:
        return RequestStatistics(
            opened=self._opened,
            answered=self._counts[Outcome.ANSWERED],
            timed_out=self._counts[Outcome.TIMED_OUT],
            connection_lost=self._counts[Outcome.CONNECTION_LOST],
            closed=self._counts[Outcome.CLOSED],
            late_answers=self._late_answers,
            unknown_answers=self._unknown_answers,
            open=len(self._open),
        )

    def __repr__(self) -> str:
        return f"RequestTable(open={len(self._open)}, next_id={self._next_id})"
