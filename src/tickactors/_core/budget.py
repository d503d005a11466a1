"""Outbound frame budget: a sliding window over every frame one connection sends.

Theory of operation
-------------------

Venues limit how fast a client may talk, and they count *frames*, not just requests: AllTick
allows one request per second per connection and rejects (or drops the connection on) the second,
heartbeats included. So every frame written to one connection goes through one
:class:`OutboundBudget`: at most ``frames`` frames in any window of ``per`` seconds. ``margin`` is
added to the window as a safety allowance for clock skew between client and venue (AllTick uses
``frames=1, per=1.0, margin=0.05``).

The machine remembers the send times of the last ``frames`` frames (a bounded deque). With
``window = per + margin``, the next frame may go at::

    next_free(now) = max(now, oldest_of_the_last_frames + window)   if ``frames`` are recorded
                   = now                                            otherwise

Sending only when ``next_free(now) <= now`` guarantees ``s[i + frames] >= s[i] + per`` for the
send times ``s``, so no half-open window ``[t, t + per)`` holds more than ``frames`` frames.

``consume(now)`` records a send and raises :class:`BudgetExceeded` if the budget did not allow it:
that is a programming error in the caller, never a venue condition. ``try_consume(now)`` is the
non-raising form. ``next_deadline()`` is the time a held-back frame may go: it is only set after a
caller was told to wait (``next_free`` returned a later time or ``try_consume`` returned False),
so a budget with nothing waiting never wakes anyone. Send times must not go backwards.
"""

from __future__ import annotations

import math
from collections import deque

import attrs

__all__ = ["BudgetExceeded", "BudgetStatistics", "OutboundBudget"]


class BudgetExceeded(RuntimeError):
    """Raised by :meth:`OutboundBudget.consume` when a frame is sent before the budget allows it.

    Always a bug in the caller (it should have waited for :meth:`OutboundBudget.next_free`);
    never raised for anything the venue does.
    """


@attrs.frozen
class BudgetStatistics:
    """A snapshot for introspection (see :meth:`OutboundBudget.statistics`)."""

    sent: int  # frames recorded
    waited: int  # frames that had to wait for the budget before they went
    waited_seconds: float  # total time those frames were held back
    frames: int
    per: float
    margin: float


class OutboundBudget:
    """At most ``frames`` frames in any ``per`` (+ ``margin``) seconds on one connection."""

    def __init__(self, *, frames: int = 1, per: float = 1.0, margin: float = 0.0) -> None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames!r}")
        if not (math.isfinite(per) and per > 0.0):
            raise ValueError(f"per must be a finite number > 0, got {per!r}")
        if not (math.isfinite(margin) and margin >= 0.0):
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        self._frames = frames
        self._per = per
        self._margin = margin
        self._window = per + margin
        self._sent_at: deque[float] = deque(maxlen=frames)
        self._sent = 0
        self._waited = 0
        self._waited_seconds = 0.0
        # Set when a caller was told to wait; cleared by the next send.
        self._blocked_since: float | None = None

    def _free_at(self) -> float | None:
        if len(self._sent_at) < self._frames:
            return None
        return self._sent_at[0] + self._window

    def next_free(self, now: float) -> float:
        """The earliest time a frame may go: ``now`` when the budget allows one right away."""
        free_at = self._free_at()
        if free_at is None or free_at <= now:
            return now
        if self._blocked_since is None:
            self._blocked_since = now
        return free_at

    def try_consume(self, now: float) -> bool:
        """Record a send at ``now`` if the budget allows it; False (nothing recorded) otherwise."""
        if self.next_free(now) > now:
            return False
        self._record(now)
        return True

    def consume(self, now: float) -> None:
        """Record a send at ``now``; raises :class:`BudgetExceeded` if it was not allowed."""
        free_at = self.next_free(now)
        if free_at > now:
            raise BudgetExceeded(
                f"frame sent at {now!r} but the budget ({self._frames} per {self._per!r}s"
                f" + {self._margin!r}s) frees only at {free_at!r}"
            )
        self._record(now)

    def _record(self, now: float) -> None:
        if self._sent_at and now < self._sent_at[-1]:
            raise ValueError(f"send times went backwards: {now!r} < {self._sent_at[-1]!r}")
        if self._blocked_since is not None:
            self._waited += 1
            self._waited_seconds += now - self._blocked_since
            self._blocked_since = None
        self._sent_at.append(now)
        self._sent += 1

    def next_deadline(self) -> float | None:
        """When a held-back frame may go; None when no caller has been told to wait."""
        if self._blocked_since is None:
            return None
        return self._free_at()

    def statistics(self) -> BudgetStatistics:
        return BudgetStatistics(
            sent=self._sent,
            waited=self._waited,
            waited_seconds=self._waited_seconds,
            frames=self._frames,
            per=self._per,
            margin=self._margin,
        )

    def __repr__(self) -> str:
        return (
            f"OutboundBudget(frames={self._frames}, per={self._per!r}, margin={self._margin!r},"
            f" sent={self._sent})"
        )
