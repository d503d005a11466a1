"""Reconnect backoff: full-jitter exponential delays that a flapping venue cannot reset.

Theory of operation
-------------------

Every failure to get a *useful* connection (a connect attempt that failed, or an established
connection that was lost) counts as one consecutive failure. The n-th consecutive failure
(``n`` counting from 0) waits::

    floor + random() * min(cap, base * 2**n)

This is AWS's "full jitter": the random factor spreads many clients over the whole window so
they do not reconnect in lock-step after a venue restart, and the exponential ceiling bounds the
load one client puts on a venue that keeps refusing it. ``floor`` is a hard minimum added on top
(AllTick: "reconnect no sooner than 3 s" is ``floor=3.0``), so every delay lies in
``[floor, floor + cap]``.

When does the count go back to zero? Not on the handshake: a venue that accepts the connection
and closes it at once (over its connection quota, a bad token, a maintenance window) would
otherwise reset the backoff every time and be hammered at the base delay forever. Instead the
count resets only when the current connection has proved *healthy*: it has been up for at least
``healthy_after`` seconds **and** data is flowing (``data_received`` is called for inbound data
and checks ``now - connected_at >= healthy_after``). A connection that flaps faster than that
keeps growing the delay up to the cap.

The machine never sleeps and never reads a clock: ``connection_failed(now)`` returns the delay
and records ``retry_at = now + delay``; ``next_deadline()`` reports it, and ``poll(now)`` returns
one :class:`RetryDue` once that time has come (and then forgets the deadline, so an idle actor is
not woken over and over). ``connected(now)`` also forgets it.

The random source is injected (``Callable[[], float]`` returning values in [0, 1); 1.0 is
accepted too so tests can pin the worst case).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

__all__ = ["Backoff", "BackoffStatistics", "RetryDue", "full_jitter"]

# 2.0 ** 1024 overflows a float: past this exponent the ceiling is the cap anyway.
_MAX_EXPONENT = 1000


def full_jitter(random: Callable[[], float], *, base: float, cap: float, attempt: int) -> float:
    """``random() * min(cap, base * 2**attempt)``: one full-jitter delay, without the floor.

    Raises :class:`ValueError` if ``random()`` returns something outside [0, 1].
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    r = random()
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"the random source must return values in [0, 1], got {r!r}")
    return r * ceiling


@attrs.frozen
class RetryDue:
    """The backoff delay has elapsed: the caller may try to connect again."""

    at: float
    attempts: int


@attrs.frozen
class BackoffStatistics:
    """A snapshot for introspection (see :meth:`Backoff.statistics`)."""

    attempts: int  # consecutive failures since the last healthy connection
    failures: int  # all failures in this machine's life
    resets: int  # how many times a healthy connection reset the count
    connected: bool
    retry_at: float | None
    last_delay: float | None


class Backoff:
    """Full-jitter exponential reconnect backoff; resets only on a healthy connection."""

    def __init__(
        self,
        *,
        base: float = 0.5,
        cap: float = 30.0,
        floor: float = 0.0,
        healthy_after: float = 10.0,
        random: Callable[[], float],
    ) -> None:
        for name, value in (
            ("base", base),
            ("cap", cap),
            ("floor", floor),
            ("healthy_after", healthy_after),
        ):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if base == 0.0:
            raise ValueError("base must be > 0")
        self._base = base
        self._cap = cap
        self._floor = floor
        self._healthy_after = healthy_after
        self._random = random
        self._attempts = 0
        self._failures = 0
        self._resets = 0
        self._connected_at: float | None = None
        self._retry_at: float | None = None
        self._last_delay: float | None = None

    @property
    def attempts(self) -> int:
        """Consecutive failures since the last healthy connection (0 = fresh)."""
        return self._attempts

    def connection_failed(self, now: float) -> float:
        """A connect attempt failed or an established connection was lost.

        Returns the delay before the next attempt, records ``retry_at = now + delay`` and counts
        one more consecutive failure.
        """
        delay = self._floor + full_jitter(
            self._random, base=self._base, cap=self._cap, attempt=self._attempts
        )
        self._attempts += 1
        self._failures += 1
        self._connected_at = None
        self._retry_at = now + delay
        self._last_delay = delay
        return delay

    def connected(self, now: float) -> None:
        """The handshake completed. Does NOT reset the count: only a healthy connection does."""
        self._connected_at = now
        self._retry_at = None

    def data_received(self, now: float) -> None:
        """Inbound data on the current connection (hot path: cheap when nothing changes).

        Resets the failure count once the connection has been up for ``healthy_after`` seconds.
        """
        if (
            self._attempts
            and self._connected_at is not None
            and now - self._connected_at >= self._healthy_after
        ):
            self._attempts = 0
            self._resets += 1

    def poll(self, now: float) -> list[RetryDue]:
        """One :class:`RetryDue` when ``retry_at`` has come; the deadline is then forgotten."""
        if self._retry_at is not None and now >= self._retry_at:
            due = RetryDue(at=self._retry_at, attempts=self._attempts)
            self._retry_at = None
            return [due]
        return []

    def next_deadline(self) -> float | None:
        """When the next attempt may start, or None if no retry is pending."""
        return self._retry_at

    def statistics(self) -> BackoffStatistics:
        return BackoffStatistics(
            attempts=self._attempts,
            failures=self._failures,
            resets=self._resets,
            connected=self._connected_at is not None,
            retry_at=self._retry_at,
            last_delay=self._last_delay,
        )

    def __repr__(self) -> str:
        return (
            f"Backoff(attempts={self._attempts}, retry_at={self._retry_at!r}, "
            f"connected={self._connected_at is not None})"
        )
