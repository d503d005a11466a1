"""The subscription reconciler: keep what a venue streams equal to what the user wants.

Theory of operation
-------------------

One :class:`Reconciler` serves one connection slot of a feed and outlives the
slot's reconnects. It is a sans-I/O machine: events go in through
:meth:`Reconciler.handle`, commands come out (:mod:`.reconciler_events`), and
:meth:`Reconciler.poll` / :meth:`Reconciler.next_deadline` stand in for timers.

For each stream kind it keeps four things:

``desired``
    the user's intent (:class:`Want` / :class:`Unwant`, or a burst of both in one
    :class:`Intents`), in the order wanted;
``in flight``
    requests sent and not yet answered (each has a ``ref`` unique for the
    reconciler's whole life);
``confirmed``
    what the venue acked on the *current* connection;
``rejected``
    symbol -> (code, reason); a rejected symbol is never sent again until the
    user unwants and wants it anew.

It converges ``confirmed`` to ``desired - rejected`` with the fewest requests,
the shape of which depends on the venue's :class:`Semantics`:

* ``REPLACE_ALL`` (:mod:`.reconciler_replace`): each request carries the kind's
  whole set, one request per kind in flight; a refused set is narrowed down to
  its culprits by bisection (:mod:`.culprits`);
* ``INCREMENTAL`` (:mod:`.reconciler_incremental`): one SUBSCRIBE/UNSUBSCRIBE
  per symbol, one in flight per symbol.

Requests are composed at the moment they are sent, from the state at that
moment: changes that pile up while a request is in flight or while
``request_spacing`` holds the next one back coalesce into one request (or
none, when they cancel out). The spacing holds across kinds and across
reconnects: no two :class:`SendRequest` are ever closer than it. A shared
:class:`~tickactors._core.spacing.SpacingGate` (AllTick: 3 s across one token's
connections) holds requests back the same way across machines. A replacement
connection (make-before-break) gets :meth:`Reconciler.successor`.

Connection life::

    not ready --ConnectionReady--> ready --ConnectionLost--> not ready
                                     \\--ConnectionReady (again)--> ready (as lost + ready)

Nothing is sent while not ready. :class:`ConnectionLost` empties every
confirmed set silently, voids every request in flight (their late answers are
counted as ``stale_answers`` and ignored) and cancels retry timers.
:class:`ConnectionReady` starts a connection whose venue state is known to be
empty, so everything desired is sent again.

Answers: :class:`Acked` updates ``confirmed`` (a :class:`Confirmed` goes out
when it changes). :class:`Rejected` rejects symbols (never a resend loop).
:class:`RateLimited` holds every send until ``retry_after`` (or
``retry_delay``), then the current target goes again. :class:`TimedOut` makes
the venue's state for that kind (REPLACE_ALL) or symbol (INCREMENTAL) unknown,
to be re-sent after ``retry_delay``. :class:`GhostSeen` and :class:`Refresh`
may force a deliberate resend of a state the venue already acked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence, Set
from types import MappingProxyType

from tickactors._core.reconciler_events import (
    Acked,
    Action,
    Command,
    Confirmed,
    ConnectionLost,
    ConnectionReady,
    Event,
    GhostPersisting,
    GhostSeen,
    IntentChange,
    Intents,
    RateLimited,
    Refresh,
    Rejected,
    Semantics,
    SendRequest,
    SymbolsRejected,
    TimedOut,
    Unwant,
    Want,
)
from tickactors._core.reconciler_incremental import IncrementalKind
from tickactors._core.reconciler_kind import STAT_NAMES, Config, InFlight, KindState
from tickactors._core.reconciler_replace import ReplaceAllKind
from tickactors._core.spacing import SpacingGate
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
    "Reconciler",
    "Refresh",
    "Rejected",
    "Semantics",
    "SendRequest",
    "SymbolsRejected",
    "TimedOut",
    "Unwant",
    "Want",
]

_NEVER = float("-inf")


class Reconciler:
    """Desired vs confirmed subscriptions of one connection slot (see the module doc).

    ``request_spacing``: minimum seconds between two requests (AllTick: one per
    second per connection, pass about 1.05). ``retry_delay``: wait after a
    timeout or a rate limit without ``retry_after``. ``ghost_grace`` and
    ``ghost_threshold``: how long after the venue acked a symbol's removal, and
    how many ghost ticks after that, before the removal is repeated.
    ``max_symbols``: per kind and connection; symbols wanted beyond it (first
    wanted, first served) are rejected at once with code 603, never sent.
    ``gate``: a spacing gate shared with the machines of the token's other
    connections (None: none).
    """

    def __init__(
        self,
        semantics: Semantics,
        kinds: Iterable[StreamKind] = (StreamKind.TRADES, StreamKind.BOOK),
        *,
        request_spacing: float = 0.0,
        retry_delay: float = 1.0,
        ghost_grace: float = 2.0,
        ghost_threshold: int = 3,
        max_symbols: int | None = None,
        gate: SpacingGate | None = None,
    ) -> None:
        order = tuple(dict.fromkeys(kinds))
        if not order:
            raise ValueError("a reconciler needs at least one stream kind")
        if request_spacing < 0 or retry_delay < 0 or ghost_grace < 0:
            raise ValueError("request_spacing, retry_delay and ghost_grace must be >= 0")
        if ghost_threshold < 1:
            raise ValueError("ghost_threshold must be >= 1")
        if max_symbols is not None and max_symbols < 1:
            raise ValueError("max_symbols must be None or >= 1")
        self.semantics = semantics
        self._config = Config(
            request_spacing=request_spacing,
            retry_delay=retry_delay,
            ghost_grace=ghost_grace,
            ghost_threshold=ghost_threshold,
            max_symbols=max_symbols,
        )
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        state = ReplaceAllKind if semantics is Semantics.REPLACE_ALL else IncrementalKind
        self._order = order
        self._kinds: dict[StreamKind, KindState] = {
            kind: state(kind, self._config, self._stats) for kind in order
        }
        self._changes_may_wait = state.changes_may_wait
        self._ready = False
        self._next_ref = 1
        self._refs: dict[int, InFlight] = {}
        self._last_send = _NEVER
        self._hold_until = _NEVER
        self._turn = 0
        self._now = _NEVER
        self.gate = gate

    def successor(self) -> Reconciler:
        """A machine for a replacement connection: the same configuration and gate, the same
        desired sets (in the order wanted) and rejections; not ready, nothing confirmed."""
        config = self._config
        new = Reconciler(
            self.semantics,
            self._order,
            request_spacing=config.request_spacing,
            retry_delay=config.retry_delay,
            ghost_grace=config.ghost_grace,
            ghost_threshold=config.ghost_threshold,
            max_symbols=config.max_symbols,
            gate=self.gate,
        )
        for kind, state in self._kinds.items():
            heir = new._kinds[kind]
            for symbol in state.desired:
                heir.add(symbol)  # the cap (if any) rejects the same symbols again
            by_reason: dict[tuple[int, str], list[str]] = {}
            for symbol, verdict in state.rejected.items():
                by_reason.setdefault(verdict, []).append(symbol)
            for (code, reason), symbols in by_reason.items():
                heir.reject(symbols, code, reason)
        new._stats.update(dict.fromkeys(STAT_NAMES, 0))  # what the copy counted is not news
        return new

    # ------------------------------------------------------------------- events

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event at time ``now``; return the commands it calls for, in order."""
        return self.handle_all((event,), now)

    def handle_all(self, events: Iterable[Event], now: float) -> list[Command]:
        """Apply events that arrived together, then send once: what they call for, in order.

        The same as handling them one by one, except that changes arriving together
        coalesce into one request even when the spacing would let the first go alone.
        """
        self._now = max(self._now, now)
        out: list[Command] = []
        changed = False
        for event in events:
            changed = self._apply(event, now, out) or changed
        if changed:
            out += self._drain(now)
        return out

    def _apply(self, event: Event, now: float, out: list[Command]) -> bool:
        """Apply one event; False when nothing changed that could send."""
        match event:
            case Want(kind, symbols):
                out += self._state(kind).want(symbols)
            case Unwant(kind, symbols):
                self._state(kind).unwant(symbols)
            case Intents(changes):
                self._intents(changes, out)
            case ConnectionReady():
                self._lose()
                self._ready = True
                for state in self._kinds.values():
                    state.on_ready(now)
            case ConnectionLost():
                self._lose()
            case Acked(ref):
                if (record := self._answer(ref, "acks")) is not None:
                    out += self._kinds[record.request.kind].on_ack(record, now)
            case Rejected(ref, code, reason, named):
                if (record := self._answer(ref, "rejections")) is not None:
                    state = self._kinds[record.request.kind]
                    out += state.on_reject(record, code, reason, named, now)
            case RateLimited(ref, retry_after):
                if (record := self._answer(ref, "rate_limited")) is not None:
                    delay = self._config.retry_delay if retry_after is None else retry_after
                    self._hold_until = max(self._hold_until, now + delay)
                    self._kinds[record.request.kind].on_rate_limited(record)
            case TimedOut(ref):
                if (record := self._answer(ref, "timeouts")) is not None:
                    self._kinds[record.request.kind].on_timeout(record, now)
            case GhostSeen(kind, symbol):
                state = self._state(kind)
                if symbol in state.desired or not state.ghost(symbol, now):
                    return False  # the hot path: nothing changed that could send
            case Refresh(kind, symbols):
                self._state(kind).refresh(symbols)
            case _:
                raise TypeError(f"not a reconciler event: {event!r}")
        return True

    def _intents(self, changes: Sequence[IntentChange], out: list[Command]) -> None:
        """Each change as its Want or Unwant would be handled, a run of one kind at a time."""
        index = 0
        while index < len(changes):
            index = self._state(changes[index][0]).intend(changes, index, out)

    def poll(self, now: float) -> list[Command]:
        """Send what timers (spacing, retry delays, rate limits) held back until ``now``."""
        self._now = max(self._now, now)
        return self._drain(now)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` has something to send; ``None`` when nothing is waiting."""
        if not self._ready:
            return None
        times = [t for state in self._kinds.values() if (t := state.earliest()) is not None]
        if not times:
            return None
        when = max(min(times), self._last_send + self._config.request_spacing, self._hold_until)
        if self.gate is not None:
            when = max(when, self.gate.next_free())
        return max(when, self._now)

    def intents_due(self) -> float:
        """From when changes of intent must be handled for nothing to come out later.

        Until then, handling a Want/Unwant/Intents would send nothing (not ready, or the
        spacing, a rate limit or the token's gate holds every request back) and report
        nothing (no cap to announce): whoever feeds this machine may keep such changes
        until this time (``inf``: until the next event, e.g. ``ConnectionReady``) and
        hand them over together (before any other event), for the same outcome with one
        step instead of many. Only whole-set (REPLACE_ALL) kinds ever wait.
        """
        if self._config.max_symbols is not None or not self._changes_may_wait:
            return _NEVER  # a change may be rejected over the cap: say so at once
        if not self._ready:
            return math.inf
        due = max(self._last_send + self._config.request_spacing, self._hold_until)
        return due if self.gate is None else max(due, self.gate.next_free())

    # ---------------------------------------------------------------- machinery

    def _state(self, kind: StreamKind) -> KindState:
        try:
            return self._kinds[kind]
        except KeyError:
            raise ValueError(f"this reconciler does not handle {kind}") from None

    def _answer(self, ref: int, counter: str) -> InFlight | None:
        record = self._refs.pop(ref, None)
        self._stats["stale_answers" if record is None else counter] += 1
        return record

    def _lose(self) -> None:
        self._stats["voided"] += len(self._refs)
        self._refs.clear()
        self._ready = False
        self._hold_until = _NEVER
        for state in self._kinds.values():
            state.on_lost()

    def _drain(self, now: float) -> list[Command]:
        out: list[Command] = []
        spacing = self._config.request_spacing
        gate = self.gate
        while self._ready and now >= max(self._last_send + spacing, self._hold_until):
            if gate is not None and now < gate.next_free():
                break
            for step in range(len(self._order)):
                index = (self._turn + step) % len(self._order)
                taken = self._kinds[self._order[index]].take(now, self._next_ref)
                if taken is not None:
                    break
            else:
                break
            notices, record = taken
            self._refs[self._next_ref] = record
            self._next_ref += 1
            self._last_send = now
            if gate is not None:
                gate.decided(now)
            self._turn = index + 1
            self._stats["requests_sent"] += 1
            out += notices
            out.append(record.request)
        for state in self._kinds.values():
            state.settle()
        return out

    # ------------------------------------------------------------ introspection

    @property
    def kinds(self) -> tuple[StreamKind, ...]:
        return self._order

    @property
    def ready(self) -> bool:
        return self._ready

    def desired(self, kind: StreamKind) -> frozenset[str]:
        return frozenset(self._state(kind).desired)

    def wanted_view(self, kind: StreamKind) -> Set[str]:
        """A live, read-only view of the desired set (no copy): for the ghost filter."""
        return self._state(kind).desired.keys()

    def confirmed(self, kind: StreamKind) -> frozenset[str]:
        return frozenset(self._state(kind).confirmed)

    def desired_and_confirmed(self) -> set[str]:
        """The symbols desired and confirmed in some kind (a new set; no per-kind copies)."""
        out: set[str] = set()
        for state in self._kinds.values():
            if state.confirmed:
                out |= state.desired.keys() & state.confirmed
        return out

    def in_flight(self, kind: StreamKind) -> tuple[SendRequest, ...]:
        """The requests of ``kind`` on the wire, oldest first."""
        self._state(kind)
        return tuple(r.request for r in self._refs.values() if r.request.kind is kind)

    def rejected(self, kind: StreamKind) -> Mapping[str, tuple[int, str]]:
        return MappingProxyType(dict(self._state(kind).rejected))

    def is_converged(self) -> bool:
        """Confirmed == desired - rejected for every kind, nothing in flight or waiting."""
        return not self._refs and all(state.converged() for state in self._kinds.values())

    def statistics(self) -> dict[str, object]:
        """Counters since creation, plus ``in_flight`` and ``ready`` now.

        ``requests_sent`` = ``acks + rejections + timeouts + rate_limited + voided +
        in_flight`` (``voided``: in flight when the connection was lost).
        ``stale_answers``: answers for refs no longer in flight, ignored.
        ``ghosts_seen``: ghost ticks of unwanted symbols; ``ghost_resends`` and
        ``refresh_resends``: deliberate resends of an acked state.
        ``coalesced``: desired-set changes (one per symbol) that needed no request
        of their own. ``symbols_rejected``: symbols reported in SymbolsRejected.
        ``culprit_searches``: bisections started.
        """
        stats: dict[str, object] = dict(self._stats)
        stats["in_flight"] = len(self._refs)
        stats["ready"] = self._ready
        return stats
