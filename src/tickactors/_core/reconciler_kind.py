"""The part of the reconciler's per-kind state that both semantics share.

One :class:`KindState` subclass instance per stream kind holds the user's
desired set (insertion ordered: first wanted, first served under a symbol cap),
the rejected symbols, the set the venue confirmed on the current connection, and
the ghost bookkeeping. The semantics-specific subclasses
(:mod:`~tickactors._core.reconciler_replace`,
:mod:`~tickactors._core.reconciler_incremental`) add what is in flight and decide
what to send; :class:`~tickactors._core.reconciler.Reconciler` numbers the
requests, spaces them and routes answers.

Ghost rule. A tick for an unwanted symbol is a *ghost*. Once the venue has acked
a state without the symbol (anchor: the ack that removed it, or the connection's
start for a symbol never confirmed on it) more than ``ghost_grace`` seconds ago,
ghost ticks count; ``ghost_threshold`` of them make the removal be repeated, and
a :class:`GhostPersisting` goes out with that corrective request. While the
symbol's removal is still pending or in flight, ghost ticks only count.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Sequence

import attrs

from tickactors._core.reconciler_events import (
    Command,
    GhostPersisting,
    IntentChange,
    SendRequest,
    SymbolsRejected,
)
from tickactors._values import StreamKind

__all__ = ["CAP_CODE", "CAP_REASON", "STAT_NAMES", "Config", "InFlight", "KindState"]

CAP_CODE = 603
CAP_REASON = "over the per-connection symbol cap"
#: Distinct ghost symbols tracked per kind and connection (beyond: counted in stats only).
MAX_GHOST_SYMBOLS = 1024

STAT_NAMES = (
    "requests_sent",
    "acks",
    "rejections",
    "timeouts",
    "rate_limited",
    "stale_answers",
    "voided",
    "ghosts_seen",
    "ghost_resends",
    "refresh_resends",
    "coalesced",
    "symbols_rejected",
    "culprit_searches",
)


@attrs.frozen(slots=True)
class Config:
    request_spacing: float
    retry_delay: float
    ghost_grace: float
    ghost_threshold: int
    max_symbols: int | None


@attrs.frozen(slots=True)
class InFlight:
    """A request on the wire, and why it was sent."""

    request: SendRequest
    sent_at: float
    group: tuple[str, ...] | None = None  # REPLACE_ALL: the culprit-search group it tests
    refresh: bool = False  # a deliberate resend asked for by Refresh
    ghosts: tuple[str, ...] = ()  # symbols whose ghost made this corrective resend


class KindState(abc.ABC):
    """Desired, rejected, confirmed and ghosts of one stream kind."""

    #: Whether changes handled later, together, send exactly what they would have sent
    #: handled one by one as they came (true of one whole-set request; not of a
    #: first-come, first-sent queue of requests per symbol).
    changes_may_wait = False

    def __init__(self, kind: StreamKind, config: Config, stats: dict[str, int]) -> None:
        self.kind = kind
        self.config = config
        self.stats = stats
        # Values are unused: a dict is an insertion-ordered set with a live keys() view.
        self.desired: dict[str, None] = {}
        self.rejected: dict[str, tuple[int, str]] = {}  # always a subset of desired
        # Desired and not rejected (what the venue should stream), kept up to date as the
        # two change, so that no step has to rebuild it over every symbol.
        self.active: set[str] = set()
        self.confirmed: set[str] = set()
        self.ready_at: float | None = None  # None while there is no ready connection
        self.absent_since: dict[str, float] = {}  # ghost anchors, per connection
        self.ghost_counts: dict[str, int] = {}
        self.ghost_notices: dict[str, int] = {}  # GhostPersisting still to emit

    # ---------------------------------------------------------------- user intent

    def is_active(self, symbol: str) -> bool:
        """Desired and not rejected: the venue should stream it."""
        return symbol in self.active

    def intend(self, changes: Sequence[IntentChange], start: int, out: list[Command]) -> int:
        """Apply ``changes[start:]`` up to the first of another kind, each as its
        ``want``/``unwant``; return the index where another kind starts."""
        kind, desired = self.kind, self.desired
        for index in range(start, len(changes)):
            change_kind, symbols, wanted = changes[index]
            if change_kind is not kind:
                return index
            if len(symbols) != 1:
                if wanted:
                    out += self.want(symbols)
                else:
                    self.unwant(symbols)
            elif wanted:
                if symbols[0] not in desired and self.add(symbols[0]):
                    out += self.cap_notice([symbols[0]])
            elif symbols[0] in desired:
                self.remove(symbols[0])
        return len(changes)

    def want(self, symbols: Collection[str]) -> list[Command]:
        capped = [s for s in sorted(set(symbols).difference(self.desired)) if self.add(s)]
        return self.cap_notice(capped)

    def add(self, symbol: str) -> bool:
        """Make ``symbol`` (not desired yet) desired; True when the cap rejected it at once."""
        if not symbol:
            raise ValueError("empty symbol")
        cap = self.config.max_symbols
        capped = cap is not None and len(self.active) >= cap
        self.desired[symbol] = None
        if self.ghost_counts:
            self.ghost_counts.pop(symbol, None)
        if self.ghost_notices:
            self.ghost_notices.pop(symbol, None)
        if capped:
            self.rejected[symbol] = (CAP_CODE, CAP_REASON)
        else:
            self.active.add(symbol)
        self._changed(symbol)
        return capped

    def cap_notice(self, capped: list[str]) -> list[Command]:
        """The notice for symbols ``add`` rejected over the cap (none if none)."""
        if not capped:
            return []
        self.stats["symbols_rejected"] += len(capped)
        return [SymbolsRejected(self.kind, frozenset(capped), CAP_CODE, CAP_REASON)]

    def unwant(self, symbols: Collection[str]) -> None:
        for symbol in sorted(set(symbols).intersection(self.desired)):
            self.remove(symbol)

    def remove(self, symbol: str) -> None:
        """Make ``symbol`` (desired) undesired; this clears its rejection."""
        del self.desired[symbol]
        if self.rejected:
            self.rejected.pop(symbol, None)
        self.active.discard(symbol)
        self._changed(symbol)

    def reject(self, symbols: Iterable[str], code: int, reason: str) -> list[Command]:
        """Reject the active ones among ``symbols``; report them."""
        fresh = sorted(s for s in set(symbols) if self.is_active(s))
        for symbol in fresh:
            self.rejected[symbol] = (code, reason)
            self.active.discard(symbol)
        if not fresh:
            return []
        self.stats["symbols_rejected"] += len(fresh)
        self._rejected(fresh)
        return [SymbolsRejected(self.kind, frozenset(fresh), code, reason)]

    # --------------------------------------------------------------------- ghosts

    def ghost(self, symbol: str, now: float) -> bool:
        """Count a ghost tick; return True when a corrective resend became due."""
        self.stats["ghosts_seen"] += 1
        if self.ready_at is None or self._removal_pending(symbol):
            return False
        anchor = self.absent_since.get(symbol, self.ready_at)
        if now - anchor <= self.config.ghost_grace:
            return False
        if symbol not in self.ghost_counts and len(self.ghost_counts) >= MAX_GHOST_SYMBOLS:
            return False  # a venue inventing codes must not grow this without bound
        count = self.ghost_counts.get(symbol, 0) + 1
        if count < self.config.ghost_threshold:
            self.ghost_counts[symbol] = count
            return False
        self.ghost_counts.pop(symbol, None)
        self.ghost_notices[symbol] = count
        self._force_removal(symbol)
        return True

    def take_notices(self, symbols: Iterable[str]) -> list[Command]:
        """The GhostPersisting notices that go out with a corrective request."""
        out: list[Command] = []
        for symbol in sorted(symbols):
            count = self.ghost_notices.pop(symbol, None)
            if count is not None:
                out.append(GhostPersisting(self.kind, symbol, count))
        return out

    def clear_connection(self) -> None:
        """Forget everything that belonged to the connection."""
        self.ready_at = None
        self.confirmed.clear()
        self.absent_since.clear()
        self.ghost_counts.clear()
        self.ghost_notices.clear()

    # ------------------------------------------------------- semantics-specific

    @abc.abstractmethod
    def _changed(self, symbol: str) -> None:
        """``symbol`` entered or left the desired set."""

    @abc.abstractmethod
    def _rejected(self, symbols: list[str]) -> None:
        """These symbols were just rejected."""

    @abc.abstractmethod
    def _removal_pending(self, symbol: str) -> bool:
        """The symbol's removal is still to be sent or is in flight."""

    @abc.abstractmethod
    def _force_removal(self, symbol: str) -> None:
        """Repeat the request that removes ``symbol`` even though it was acked."""

    @abc.abstractmethod
    def on_ready(self, now: float) -> None: ...

    @abc.abstractmethod
    def on_lost(self) -> None: ...

    @abc.abstractmethod
    def refresh(self, symbols: Iterable[str]) -> None: ...

    @abc.abstractmethod
    def earliest(self) -> float | None:
        """When something could next be sent (spacing aside); ``None``: nothing to send."""

    @abc.abstractmethod
    def take(self, now: float, ref: int) -> tuple[list[Command], InFlight] | None:
        """Compose the next request due at ``now`` (the caller sends it), if any."""

    @abc.abstractmethod
    def settle(self) -> None:
        """Account for changes that turned out to need no request."""

    @abc.abstractmethod
    def on_ack(self, record: InFlight, now: float) -> list[Command]: ...

    @abc.abstractmethod
    def on_reject(
        self, record: InFlight, code: int, reason: str, named: frozenset[str] | None, now: float
    ) -> list[Command]: ...

    @abc.abstractmethod
    def on_timeout(self, record: InFlight, now: float) -> None: ...

    @abc.abstractmethod
    def on_rate_limited(self, record: InFlight) -> None: ...

    @abc.abstractmethod
    def converged(self) -> bool: ...
