"""INCREMENTAL semantics (Tradovate): one SUBSCRIBE or UNSUBSCRIBE per symbol.

Per symbol of one kind, besides the shared desired/rejected/confirmed:

* ``in_flight[symbol]``: at most one request on the wire for it;
* ``unknown``: its request timed out, the venue may or may not stream it: the
  next request for it is sent even if it looks redundant;
* ``retry_at[symbol]``: after a timeout, nothing is sent for it before then;
* ``refresh_due``: re-SUBSCRIBE although confirmed (the symbol went silent);
* ``ghost_due``: re-UNSUBSCRIBE although acked (ghost ticks persist).

A symbol needs a SUBSCRIBE when it is active (desired, not rejected) and not
known to be confirmed (or a refresh is due); an UNSUBSCRIBE when it is not active
and may be confirmed (or a ghost removal is due). A symbol is marked ``dirty``
when anything about it changes; examining the dirty symbols moves those that need
a request into ``due`` (ordered: first come, first sent) and settles the others.
So each event costs in proportion to the symbols it touches, not to the whole
set. A symbol with a request in flight is examined again only when the answer
comes, so want/unwant/want during a SUBSCRIBE costs nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable

from tickactors._core.reconciler_events import Action, Command, Confirmed, SendRequest
from tickactors._core.reconciler_kind import Config, InFlight, KindState
from tickactors._values import StreamKind

__all__ = ["IncrementalKind"]

_NEVER = float("-inf")


class IncrementalKind(KindState):
    def __init__(self, kind: StreamKind, config: Config, stats: dict[str, int]) -> None:
        super().__init__(kind, config, stats)
        self.in_flight: dict[str, InFlight] = {}
        self.unknown: set[str] = set()
        self.retry_at: dict[str, float] = {}
        self.refresh_due: set[str] = set()
        self.ghost_due: set[str] = set()
        self.dirty: dict[str, None] = {}  # to examine (ordered sets)
        self.due: dict[str, None] = {}  # need a request
        self.changes: dict[str, int] = {}  # desired-set changes not yet carried by a request

    def need(self, symbol: str) -> Action | None:
        if symbol in self.in_flight:
            return None
        if self.is_active(symbol):
            if symbol not in self.confirmed or symbol in self.unknown or symbol in self.refresh_due:
                return Action.SUBSCRIBE
            return None
        if symbol in self.confirmed or symbol in self.unknown or symbol in self.ghost_due:
            return Action.UNSUBSCRIBE
        return None

    # ---------------------------------------------------------------- hooks

    def _changed(self, symbol: str) -> None:
        self.changes[symbol] = self.changes.get(symbol, 0) + 1
        self.refresh_due.discard(symbol)
        self.ghost_due.discard(symbol)
        self.dirty[symbol] = None

    def _rejected(self, symbols: list[str]) -> None:
        for symbol in symbols:
            self.refresh_due.discard(symbol)
            self.dirty[symbol] = None

    def _removal_pending(self, symbol: str) -> bool:
        return (
            symbol in self.in_flight
            or symbol in self.unknown
            or symbol in self.confirmed
            or symbol in self.ghost_due
        )

    def _force_removal(self, symbol: str) -> None:
        self.ghost_due.add(symbol)
        self.dirty[symbol] = None

    def refresh(self, symbols: Iterable[str]) -> None:
        for symbol in sorted(symbols):
            if self.is_active(symbol) and symbol in self.confirmed and symbol not in self.in_flight:
                self.refresh_due.add(symbol)
                self.dirty[symbol] = None

    # ------------------------------------------------------------ connection

    def on_ready(self, now: float) -> None:
        self.ready_at = now
        # Desired symbols first, in the order wanted; leftovers only for accounting.
        self.dirty = {**dict.fromkeys(self.desired), **self.due, **self.dirty}
        self.due.clear()

    def on_lost(self) -> None:
        self.clear_connection()
        self.dirty.update(dict.fromkeys(self.in_flight))
        self.dirty.update(self.due)
        self.in_flight.clear()
        self.unknown.clear()
        self.retry_at.clear()
        self.refresh_due.clear()
        self.ghost_due.clear()

    # ----------------------------------------------------------------- sending

    def _examine(self) -> None:
        for symbol in self.dirty:
            if symbol in self.in_flight:
                self.due.pop(symbol, None)  # looked at again when the answer comes
            elif self.need(symbol) is not None:
                self.due[symbol] = None
            else:
                self.due.pop(symbol, None)
                # Nothing to send after all: the changes were absorbed.
                self.stats["coalesced"] += self.changes.pop(symbol, 0)
                self.refresh_due.discard(symbol)
                self.ghost_due.discard(symbol)
                self.ghost_notices.pop(symbol, None)
        self.dirty.clear()

    def earliest(self) -> float | None:
        self._examine()
        if not self.due:
            return None
        if any(s not in self.retry_at for s in self.due):
            return _NEVER
        return min(self.retry_at[s] for s in self.due)

    def take(self, now: float, ref: int) -> tuple[list[Command], InFlight] | None:
        self._examine()
        for symbol in self.due:
            if self.retry_at.get(symbol, _NEVER) <= now:
                break
        else:
            return None
        action = self.need(symbol)
        assert action is not None
        del self.due[symbol]
        self.retry_at.pop(symbol, None)
        ghost = action is Action.UNSUBSCRIBE and symbol in self.ghost_due
        refresh = action is Action.SUBSCRIBE and symbol in self.refresh_due
        self.ghost_due.discard(symbol)
        self.refresh_due.discard(symbol)
        notices = self.take_notices([symbol]) if ghost else []
        if ghost:
            self.stats["ghost_resends"] += 1
        if refresh:
            self.stats["refresh_resends"] += 1
        record = InFlight(
            SendRequest(ref, self.kind, action, (symbol,)),
            now,
            refresh=refresh,
            ghosts=(symbol,) if ghost else (),
        )
        self.in_flight[symbol] = record
        self.stats["coalesced"] += max(self.changes.pop(symbol, 0) - 1, 0)
        return notices, record

    def settle(self) -> None:
        self._examine()

    # ----------------------------------------------------------------- answers

    def _answered(self, record: InFlight) -> str:
        symbol = record.request.symbols[0]
        del self.in_flight[symbol]
        self.dirty[symbol] = None
        return symbol

    def _confirm(self, symbol: str, present: bool, now: float) -> list[Command]:
        self.unknown.discard(symbol)
        if present:
            self.absent_since.pop(symbol, None)
            if symbol in self.confirmed:
                return []
            self.confirmed.add(symbol)
        else:
            self.absent_since[symbol] = now
            if symbol not in self.confirmed:
                return []
            self.confirmed.discard(symbol)
        return [Confirmed(self.kind, frozenset(self.confirmed))]

    def on_ack(self, record: InFlight, now: float) -> list[Command]:
        symbol = self._answered(record)
        return self._confirm(symbol, record.request.action is Action.SUBSCRIBE, now)

    def on_reject(
        self, record: InFlight, code: int, reason: str, named: frozenset[str] | None, now: float
    ) -> list[Command]:
        symbol = self._answered(record)
        if record.request.action is Action.UNSUBSCRIBE:
            # The venue did not have it: so be it, no retry.
            return self._confirm(symbol, False, now)
        return self.reject([symbol], code, reason)

    def on_timeout(self, record: InFlight, now: float) -> None:
        symbol = self._answered(record)
        self.unknown.add(symbol)
        self.retry_at[symbol] = now + self.config.retry_delay

    def on_rate_limited(self, record: InFlight) -> None:
        symbol = self._answered(record)
        if record.refresh and self.is_active(symbol):
            self.refresh_due.add(symbol)
        if record.ghosts and symbol not in self.desired:
            self.ghost_due.add(symbol)

    def converged(self) -> bool:
        return (
            not self.in_flight
            and not self.unknown
            and not self.dirty
            and not self.due
            and self.confirmed == self.active
        )
