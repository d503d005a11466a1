"""The token-wide spacing gate, sans-I/O: one token's connections keep their requests apart.

AllTick allows one request per second per connection, and "across several connections
of one token, keep 3 s between requests" (``docs/venues.md``, AllTick, "Limits"). The
first rule is each connection's own (its ``OutboundBudget`` and its reconciler's
``request_spacing``); the second is shared by every connection of the token, so it lives
in one object that every connection's :class:`~tickactors._core.reconciler.Reconciler`
consults.

Theory of operation
-------------------
The gate counts the token's ``live`` connections (``opened``/``closed``; a feed counts
a connection from before it connects until its close is done, so it never counts fewer
than the venue does) and remembers when the last subscription request left. While
fewer than two connections live, the rule does not apply and :meth:`SpacingGate.next_free`
is ``-inf``: a lone connection answers to its own rule only, as at the venue. With two or
more, a request may go ``interval`` after the last one, whichever connection sent it.

A request is stamped twice: when a reconciler decides to send it (``decided(now)``, so
that another reconciler deciding in the same instant waits its turn), and when the
frame really leaves (``taken(sent_at)``: the connection's budget may have held it back
behind a heartbeat, and the venue measures the time it arrives). The later stamp wins.
Heartbeats are not requests in this sense and never pass the gate.

The gate is pure: times come in as arguments, it never reads a clock, it sends nothing.
"""

from __future__ import annotations

import attrs

__all__ = ["GateStatistics", "SpacingGate"]

_NEVER = float("-inf")


@attrs.frozen(slots=True)
class GateStatistics:
    interval: float
    live: int
    requests: int
    last_request_at: float | None


class SpacingGate:
    """Requests of one token's connections, ``interval`` apart while two or more live."""

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"a spacing gate's interval is > 0, got {interval!r}")
        self.interval = interval
        self.live = 0
        self.requests = 0
        self._last = _NEVER

    def opened(self) -> None:
        """A connection of the token is opening (count it before it connects)."""
        self.live += 1

    def closed(self) -> None:
        """A connection of the token is closed."""
        if self.live <= 0:
            raise ValueError("closed() without a matching opened()")
        self.live -= 1

    def next_free(self) -> float:
        """The earliest time the next request may go (``-inf``: now, the rule is off)."""
        if self.live < 2:
            return _NEVER
        return self._last + self.interval

    def taken(self, at: float) -> None:
        """A request was decided, or left, at ``at``: the next one waits from there."""
        if at > self._last:
            self._last = at

    def decided(self, at: float) -> None:
        """A reconciler decided to send a request at ``at`` (counted once per request)."""
        self.requests += 1
        self.taken(at)

    def statistics(self) -> GateStatistics:
        last = None if self._last == _NEVER else self._last
        return GateStatistics(self.interval, self.live, self.requests, last)
