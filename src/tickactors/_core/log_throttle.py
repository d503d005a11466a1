"""When a repeated alarm goes to the log again: at once, then at most once per interval.

A feed whose connects fail for a cause that will not heal (``connect_failures.py``) says
so at ERROR level, because a person has to act; but it retries, and one ERROR line per
attempt would bury the log. :class:`LogThrottle` lets the first alarm of each kind (a
``key``: the failure's cause) through at once, holds back those that follow within
``interval`` seconds, counting them, and lets the next one through once the interval has
passed, with the count of those held back in between. A new kind goes through at once
whatever the others did. It reads no clock: the caller passes ``now``.
"""

from __future__ import annotations

import math

__all__ = ["LogThrottle"]


class LogThrottle:
    """At once, then at most once per ``interval`` seconds, per key. See the module docstring."""

    def __init__(self, interval: float = 60.0) -> None:
        if not (math.isfinite(interval) and interval >= 0):
            raise ValueError(f"interval must be a finite number >= 0, got {interval!r}")
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: hold this one back (it is counted). Otherwise log it now: the number is
        how many of ``key`` were held back since the last one let through."""
        last = self._last.get(key)
        if last is not None and now < last + self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)
