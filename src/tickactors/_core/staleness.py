"""Staleness: a feed is judged by the time since its last message, not by its socket's state.

Theory of operation
-------------------

A market-data socket can stay "open" for minutes after the venue has stopped talking to it (a
half-open TCP connection, a server that dropped the subscription, a proxy that swallowed the
close). The only trustworthy signal is silence, so the monitor keeps two kinds of clock:

The connection clock
    ``connection_opened(now)`` arms it; every inbound frame (``message(now)``: data, heartbeat
    answer, anything) pushes it forward. Its deadline is ``last_message_at + stale_after``. When
    ``poll(now)`` finds ``now >= deadline`` it returns one :class:`ConnectionStale` and disarms the
    clock: the caller is expected to drop the connection and reconnect, and nothing more is
    reported until the next ``connection_opened``. ``connection_closed()`` disarms everything.

Per-symbol clocks (off by default)
    Only for *watched* symbols: ``watch(symbols, now)`` is called with the symbols the venue has
    confirmed, and starts each new one's clock at ``now``. ``symbol_seen(symbol, now)`` records
    data for a symbol. A watched symbol silent for ``symbol_stale_after`` seconds (measured from
    the later of its last data and its watch time) yields one :class:`SymbolStale`, then its clock
    re-arms from ``now``, so a symbol that stays silent is reported again every
    ``symbol_stale_after`` seconds. ``connection_opened`` forgets every symbol clock (the new
    connection's subscriptions have to be confirmed and watched again).

Why per-symbol staleness is off by default (``symbol_stale_after=None``): quiet instruments have
natural gaps. An illiquid stock may not trade for minutes, a future overnight for longer, a forex
pair at the weekend for two days. A fixed threshold either false-alarms on the quiet ones or is so
long it is useless for the busy ones, and a threshold learned from observed gaps is fooled by the
same variety (and by the first quiet day after a busy one). The user who knows their instruments
sets it; the connection clock, which heartbeats keep honest, is always on.

Cost: ``message`` and ``symbol_seen`` are the hot path and only store a float (a dict store for
a symbol). ``next_deadline()`` is O(1): the earliest of the connection deadline and a cached
"next symbol check". The cache may be *earlier* than the true next symbol deadline (data only
moves deadlines later, ``unwatch`` only removes them), which is safe: an early wake-up just finds
nothing to report. ``poll`` scans the watched symbols and recomputes the cache; ``watch`` lowers
it when it starts new clocks.

Deadlines are computed the same way in ``next_deadline`` and ``poll`` (``start + threshold``),
so a caller that sleeps until ``next_deadline()`` and polls at exactly that time always gets its
event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

__all__ = ["ConnectionStale", "StalenessMonitor", "StalenessStatistics", "SymbolStale"]


@attrs.frozen
class ConnectionStale:
    """Nothing arrived on the connection for ``silent_for`` (>= ``stale_after``) seconds."""

    silent_for: float
    last_message_at: float  # the last inbound message, or the connection's opening if none


@attrs.frozen
class SymbolStale:
    """A watched symbol has had no data for ``silent_for`` (>= ``symbol_stale_after``) seconds."""

    symbol: str
    silent_for: float


@attrs.frozen
class StalenessStatistics:
    """A snapshot for introspection (see :meth:`StalenessMonitor.statistics`)."""

    armed: bool
    last_message_at: float | None
    watched: int
    connection_stale: int
    symbol_stale: int


class StalenessMonitor:
    """Connection and (optional) per-symbol silence clocks."""

    def __init__(self, *, stale_after: float, symbol_stale_after: float | None = None) -> None:
        if not (math.isfinite(stale_after) and stale_after > 0.0):
            raise ValueError(f"stale_after must be a finite number > 0, got {stale_after!r}")
        if symbol_stale_after is not None and not (
            math.isfinite(symbol_stale_after) and symbol_stale_after > 0.0
        ):
            raise ValueError(
                "symbol_stale_after must be None or a finite number > 0,"
                f" got {symbol_stale_after!r}"
            )
        self._stale_after = stale_after
        self._symbol_stale_after = symbol_stale_after
        self._armed = False
        self._last: float | None = None  # last message, or connection_opened time
        self._seen: dict[str, float] = {}  # symbol -> last data
        self._watched_at: dict[str, float] = {}  # watched symbol -> watch time
        self._clock: dict[str, float] = {}  # watched symbol -> watch time or last report
        self._next_symbol_check: float | None = None
        self._connection_stale = 0
        self._symbol_stale = 0

    @property
    def per_symbol(self) -> bool:
        """Whether per-symbol staleness is on (``symbol_stale_after`` set): watching matters."""
        return self._symbol_stale_after is not None

    @property
    def last_message_at(self) -> float | None:
        """The last inbound message (or ``connection_opened`` time if none since); None before."""
        return self._last

    # -- connection lifecycle -------------------------------------------------------------------

    def connection_opened(self, now: float) -> None:
        """Arm the connection clock at ``now``; forget every symbol clock."""
        self._armed = True
        self._last = now
        self._seen.clear()
        self._watched_at.clear()
        self._clock.clear()
        self._next_symbol_check = None

    def connection_closed(self) -> None:
        """Disarm everything until the next ``connection_opened``."""
        self._armed = False
        self._seen.clear()
        self._watched_at.clear()
        self._clock.clear()
        self._next_symbol_check = None

    # -- hot path -------------------------------------------------------------------------------

    def message(self, now: float) -> None:
        """Any inbound frame arrived."""
        self._last = now

    def symbol_seen(self, symbol: str, now: float) -> None:
        """Data for ``symbol`` arrived (watched or not)."""
        self._seen[symbol] = now

    def symbols_seen(self, symbols: Iterable[str], now: float) -> None:
        """Data for each of ``symbols`` arrived."""
        seen = self._seen
        for symbol in symbols:
            seen[symbol] = now

    # -- watched set ----------------------------------------------------------------------------

    def watch(self, symbols: Iterable[str], now: float) -> None:
        """Start per-symbol clocks at ``now`` for the symbols not yet watched."""
        added = False
        for symbol in symbols:
            if symbol not in self._watched_at:
                self._watched_at[symbol] = now
                self._clock[symbol] = now
                added = True
        if added and self._symbol_stale_after is not None:
            check = now + self._symbol_stale_after
            if self._next_symbol_check is None or check < self._next_symbol_check:
                self._next_symbol_check = check

    def unwatch(self, symbols: Iterable[str]) -> None:
        """Stop the clocks of ``symbols`` (unknown ones are ignored)."""
        for symbol in symbols:
            self._watched_at.pop(symbol, None)
            self._clock.pop(symbol, None)
        if not self._watched_at:
            self._next_symbol_check = None

    @property
    def watched(self) -> frozenset[str]:
        return frozenset(self._watched_at)

    # -- timers ---------------------------------------------------------------------------------

    def poll(self, now: float) -> list[ConnectionStale | SymbolStale]:
        """Report what has gone stale at ``now`` (connection first, then symbols by name)."""
        events: list[ConnectionStale | SymbolStale] = []
        if self._armed and self._last is not None and now >= self._last + self._stale_after:
            self._armed = False
            self._connection_stale += 1
            events.append(ConnectionStale(silent_for=now - self._last, last_message_at=self._last))
        threshold = self._symbol_stale_after
        check = self._next_symbol_check
        if threshold is not None and check is not None and now >= check:
            next_check: float | None = None
            seen = self._seen
            stale: list[SymbolStale] = []
            for symbol, clock in self._clock.items():
                last_seen = seen.get(symbol)
                start = clock if last_seen is None or last_seen < clock else last_seen
                deadline = start + threshold
                if now >= deadline:
                    watched_at = self._watched_at[symbol]
                    active = (
                        watched_at if last_seen is None or last_seen < watched_at else last_seen
                    )
                    stale.append(SymbolStale(symbol=symbol, silent_for=now - active))
                    self._clock[symbol] = now
                    deadline = now + threshold
                if next_check is None or deadline < next_check:
                    next_check = deadline
            self._next_symbol_check = next_check
            self._symbol_stale += len(stale)
            stale.sort(key=lambda event: event.symbol)
            events.extend(stale)
        return events

    def next_deadline(self) -> float | None:
        """The earliest time ``poll`` may have something to report (O(1))."""
        deadline = (
            self._last + self._stale_after if self._armed and self._last is not None else None
        )
        check = self._next_symbol_check
        if check is not None and (deadline is None or check < deadline):
            return check
        return deadline

    def statistics(self) -> StalenessStatistics:
        return StalenessStatistics(
            armed=self._armed,
            last_message_at=self._last,
            watched=len(self._watched_at),
            connection_stale=self._connection_stale,
            symbol_stale=self._symbol_stale,
        )

    def __repr__(self) -> str:
        return (
            f"StalenessMonitor(armed={self._armed}, last_message_at={self._last!r},"
            f" watched={len(self._watched_at)})"
        )
