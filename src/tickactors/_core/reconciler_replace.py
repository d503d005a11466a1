"""REPLACE_ALL semantics (AllTick): one whole-set request per kind, one in flight.

State of one kind, besides the shared desired/rejected/confirmed:

* ``in_flight``: the one request on the wire, or ``None``;
* ``unknown``: a request timed out, so the venue may hold anything: the next
  request is sent even if it equals ``confirmed`` (and a CANCEL even if
  ``confirmed`` is empty);
* ``retry_at``: after a timeout, nothing is sent for this kind before it;
* ``refresh_due`` / ghost notices: resend the current target once even though
  the venue acked it (silent symbols, ghost ticks);
* ``known_good``: every symbol the venue ever accepted (reconciler lifetime);
* ``search``: a :class:`~tickactors._core.culprits.CulpritSearch` while the
  culprits of a refused request are being looked for.

The *target* is what the venue should hold: every active symbol (desired, not
rejected: the kind's ``active`` set, kept up to date as intent changes, never rebuilt)
or, during a search, the active known-good symbols that are not under suspicion plus
the group under test. A request is due when nothing is in flight
and the target differs from what is known to be confirmed (or a resend is
forced); an empty target is a CANCEL, and only when the venue may hold something.
A refused request starts a search (or narrows it); its answers, not a timer,
drive it, so it can never turn into a resend loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set

from tickactors._core.culprits import CulpritSearch
from tickactors._core.reconciler_events import (
    Action,
    Command,
    Confirmed,
    IntentChange,
    SendRequest,
)
from tickactors._core.reconciler_kind import CAP_CODE, Config, InFlight, KindState
from tickactors._values import StreamKind

__all__ = ["ReplaceAllKind"]

_NEVER = float("-inf")


class ReplaceAllKind(KindState):
    changes_may_wait = True  # the request carries the whole target, whatever the order

    def __init__(self, kind: StreamKind, config: Config, stats: dict[str, int]) -> None:
        super().__init__(kind, config, stats)
        self.in_flight: InFlight | None = None
        self.unknown = False
        self.retry_at = _NEVER
        self.refresh_due = False
        self.redo_ghosts: tuple[str, ...] = ()  # a rate-limited ghost corrective to repeat
        self.known_good: set[str] = set()
        self.search: CulpritSearch | None = None
        self.demoted: set[frozenset[str]] = set()
        self.changes = 0  # desired-set changes not yet carried by a request
        self._target: frozenset[str] | None = None  # cache

    # ------------------------------------------------------------------ target

    def _invalidate(self) -> None:
        """Something the target depends on changed."""
        self._target = None
        if self.search is not None:
            self.search.prune(self.is_active)
            if self.search.done:
                self.search = None
        self._advance_search()

    def target_set(self) -> Set[str]:
        """What the venue should hold (a live set: read it, never keep it)."""
        search = self.search
        if search is None or (head := search.head) is None:
            return self.active  # every active symbol, kept up to date by want/unwant/reject
        if self._target is None:
            suspects = search.pending()
            base = [s for s in self.active if s in self.known_good and s not in suspects]
            self._target = frozenset([*base, *head])
        return self._target

    def target(self) -> tuple[str, ...]:
        """The target as the wire wants it: sorted."""
        return tuple(sorted(self.target_set()))

    def _advance_search(self) -> None:
        # A group whose test target the venue is known to hold already has passed.
        # (A safety net: the search never builds such a group, and a stalled search
        # would never converge.)
        while self.search is not None and self.in_flight is None and not self.unknown:
            head = self.search.head
            if head is None or self.target_set() != self.confirmed:
                break
            self.search.accepted(head)
            self._target = None
            if self.search.done:
                self.search = None

    def need(self) -> Action | None:
        if self.in_flight is not None:
            return None
        target = self.target_set()
        forced = self.unknown or bool(self.redo_ghosts) or bool(self.ghost_notices)
        if target:
            if forced or self.refresh_due or target != self.confirmed:
                return Action.REPLACE
            return None
        if forced or self.confirmed:
            return Action.CANCEL
        return None

    # ------------------------------------------------------------- user intent

    def intend(self, changes: Sequence[IntentChange], start: int, out: list[Command]) -> int:
        if (
            self.config.max_symbols is not None
            or self.search is not None
            or self.rejected
            or self.ghost_counts
            or self.ghost_notices
            or self.redo_ghosts
        ):
            return super().intend(changes, start, out)
        # The plain case (no cap, no search, nothing rejected, no ghost to forget; none of
        # it can arise from intent alone): what add/remove and _changed come down to here.
        self._target = None
        kind, desired, active = self.kind, self.desired, self.active
        for index in range(start, len(changes)):
            change_kind, symbols, wanted = changes[index]
            if change_kind is not kind:
                return index
            if len(symbols) != 1:
                if wanted:
                    out += self.want(symbols)
                else:
                    self.unwant(symbols)
                continue
            symbol = symbols[0]
            if wanted:
                if symbol not in desired:
                    if not symbol:
                        raise ValueError("empty symbol")
                    desired[symbol] = None
                    active.add(symbol)
                    self.changes += 1
            elif symbol in desired:
                del desired[symbol]
                active.discard(symbol)
                self.changes += 1
        return len(changes)

    # ---------------------------------------------------------------- hooks

    def _changed(self, symbol: str) -> None:
        self.changes += 1
        if self.redo_ghosts and symbol in self.redo_ghosts:
            self.redo_ghosts = tuple(s for s in self.redo_ghosts if s != symbol)
        if self.search is None:
            self._target = None  # all _invalidate does without a search (the hot path)
        else:
            self._invalidate()

    def _rejected(self, symbols: list[str]) -> None:
        self._invalidate()

    def _removal_pending(self, symbol: str) -> bool:
        return (
            self.in_flight is not None
            or self.unknown
            or symbol in self.confirmed
            or symbol in self.ghost_notices
        )

    def _force_removal(self, symbol: str) -> None:
        pass  # a ghost notice forces the resend by itself

    def refresh(self, symbols: Iterable[str]) -> None:
        if self.in_flight is None and any(
            s in self.confirmed and self.is_active(s) for s in symbols
        ):
            self.refresh_due = True

    # ------------------------------------------------------------ connection

    def on_ready(self, now: float) -> None:
        self.ready_at = now

    def on_lost(self) -> None:
        self.clear_connection()
        self.in_flight = None
        self.unknown = False
        self.retry_at = _NEVER
        self.refresh_due = False
        self.redo_ghosts = ()
        self._invalidate()

    # ----------------------------------------------------------------- sending

    def earliest(self) -> float | None:
        return self.retry_at if self.need() is not None else None

    def take(self, now: float, ref: int) -> tuple[list[Command], InFlight] | None:
        action = self.need()
        if action is None or now < self.retry_at:
            return None
        symbols = self.target() if action is Action.REPLACE else ()
        group = None
        if self.search is not None and action is Action.REPLACE:
            group = self.search.head
        ghosts = tuple(sorted(set(self.ghost_notices).union(self.redo_ghosts)))
        notices = self.take_notices(ghosts)
        if ghosts:
            self.stats["ghost_resends"] += 1
        refresh = self.refresh_due and action is Action.REPLACE
        if refresh:
            self.stats["refresh_resends"] += 1
        record = InFlight(
            SendRequest(ref, self.kind, action, symbols),
            now,
            group=group,
            refresh=refresh,
            ghosts=ghosts,
        )
        self.in_flight = record
        self.refresh_due = False
        self.redo_ghosts = ()
        self.stats["coalesced"] += max(self.changes - 1, 0)
        self.changes = 0
        return notices, record

    def settle(self) -> None:
        if self.ready_at is None or not (self.changes or self.refresh_due):
            return  # accounted for once connected
        if self.need() is None:
            self.refresh_due = False
            if self.in_flight is None:
                self.stats["coalesced"] += self.changes
                self.changes = 0

    # ----------------------------------------------------------------- answers

    def _set_confirmed(self, symbols: set[str], now: float) -> list[Command]:
        old = self.confirmed
        self.confirmed = symbols
        for symbol in old - symbols:
            self.absent_since[symbol] = now
        for symbol in symbols:
            self.absent_since.pop(symbol, None)
        self._invalidate()
        return [Confirmed(self.kind, frozenset(symbols))] if symbols != old else []

    def on_ack(self, record: InFlight, now: float) -> list[Command]:
        self.in_flight = None
        self.unknown = False
        symbols = set(record.request.symbols)
        self.known_good |= symbols
        out = self._set_confirmed(symbols, now)
        for symbol in record.ghosts:
            if symbol not in symbols:
                self.absent_since[symbol] = now
        if self.search is not None and record.group is not None:
            self.search.accepted(record.group)
            self._invalidate()
        return out

    def on_reject(
        self, record: InFlight, code: int, reason: str, named: frozenset[str] | None, now: float
    ) -> list[Command]:
        self.in_flight = None
        request = record.request
        if request.action is Action.CANCEL:
            # The venue says there was nothing to cancel: believe it, never retry.
            self.unknown = False
            return self._set_confirmed(set(), now)
        if named is not None:
            offenders = named.intersection(request.symbols)
            if offenders:
                out = self.reject(offenders, code, reason)
                self._invalidate()
                return out
        if self.search is not None and record.group is not None:
            return self._group_refused(record.group, code, reason)
        return self._start_search(request.symbols, code, reason)

    def _group_refused(self, group: tuple[str, ...], code: int, reason: str) -> list[Command]:
        assert self.search is not None
        if len(group) > 1:
            self.search.split(group)
            self._invalidate()
            return []
        self.search.drop(group)
        culprits = list(group)
        if code == CAP_CODE:
            # The cap is reached: nothing still under suspicion fits either.
            culprits += self.search.clear()
            culprits += [s for s in self.desired if s not in self.known_good]
        out = self.reject(culprits, code, reason)
        self._invalidate()
        return out

    def _start_search(self, refused: tuple[str, ...], code: int, reason: str) -> list[Command]:
        unproven = [s for s in refused if s not in self.known_good]
        if len(unproven) == 1:
            return self.reject(unproven, code, reason)  # the only possible culprit
        suspects = [s for s in unproven if self.is_active(s)]
        if not unproven:
            # Everything refused was accepted before. What the venue is known to hold
            # now is fine: suspect the rest (or all, if it holds all). Once per set:
            # a venue that refuses the same set again gets it rejected, not searched.
            active = [s for s in refused if self.is_active(s)]
            held = set() if self.unknown else self.confirmed
            suspects = [s for s in active if s not in held] or active
            if len(suspects) == 1 or frozenset(suspects) in self.demoted:
                return self.reject(suspects, code, reason)
            self.demoted.add(frozenset(suspects))
        if suspects:
            self.stats["culprit_searches"] += 1
            self.search = CulpritSearch.start(suspects)
        self._invalidate()
        return []

    def on_timeout(self, record: InFlight, now: float) -> None:
        self.in_flight = None
        self.unknown = True
        self.retry_at = now + self.config.retry_delay
        self._invalidate()

    def on_rate_limited(self, record: InFlight) -> None:
        self.in_flight = None
        self.refresh_due = self.refresh_due or record.refresh
        self.redo_ghosts = tuple(s for s in record.ghosts if s not in self.desired)
        self._invalidate()

    def converged(self) -> bool:
        return (
            self.search is None
            and self.need() is None
            and self.in_flight is None
            and self.confirmed == self.active
        )
