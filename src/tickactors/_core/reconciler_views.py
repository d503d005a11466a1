"""What a :class:`~tickactors._core.reconciler.Reconciler` shows of its state (read-only).

A base class of ``Reconciler``: the sets per kind, what is in flight, the counters. Kept
apart from the machine's logic; nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from types import MappingProxyType

from tickactors._core.reconciler_events import SendRequest
from tickactors._core.reconciler_kind import InFlight, KindState
from tickactors._values import StreamKind

__all__ = ["ReconcilerViews"]


class ReconcilerViews:
    """The read-only side of the reconciler (the attributes are the machine's own)."""

    _order: tuple[StreamKind, ...]
    _ready: bool
    _kinds: dict[StreamKind, KindState]
    _refs: dict[int, InFlight]
    _stats: dict[str, int]

    def _state(self, kind: StreamKind) -> KindState:
        try:
            return self._kinds[kind]
        except KeyError:
            raise ValueError(f"this reconciler does not handle {kind}") from None

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
