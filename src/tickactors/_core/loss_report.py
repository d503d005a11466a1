"""When a sink announces the data it lost: at once, then at most once per interval.

Theory of operation
-------------------
A sink that drops data (its buffer overflowed while the message bus was away, or the
bus refused messages) must say so, with counts, but a sink that drops thousands of
ticks a second must not answer each drop with an event: that would be a second flood.
So the sink feeds its running totals (items lost so far, by kind) to a
:class:`LossReporter` whenever it looks, and the reporter answers with a
:class:`LossReport` when there is something new to say:

- the first loss is reported at once;
- after a report, the next one waits until ``interval`` has passed, and then carries
  everything lost in between (``since_last``) as well as the totals;
- :meth:`LossReporter.final` reports whatever is still unreported, whatever the time
  (the sink calls it when it closes).

Totals only grow; the reporter keeps the last totals it reported and reads no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

__all__ = ["LossReport", "LossReporter"]


@attrs.frozen(slots=True)
class LossReport:
    """Items lost since the previous report and in all, by kind."""

    since_last: Mapping[str, int]
    totals: Mapping[str, int]

    @property
    def count(self) -> int:
        return sum(self.since_last.values())

    @property
    def total(self) -> int:
        return sum(self.totals.values())


class LossReporter:
    """Rate-limits loss announcements. See the module docstring."""

    def __init__(self, interval: float = 1.0) -> None:
        if not (math.isfinite(interval) and interval >= 0):
            raise ValueError(f"interval must be a finite number >= 0, got {interval!r}")
        self.interval = interval
        self._reported: dict[str, int] = {}
        self._last_at: float | None = None

    def observe(self, totals: Mapping[str, int], now: float) -> LossReport | None:
        """A report if ``totals`` grew since the last one and the interval allows it."""
        if self._last_at is not None and now < self._last_at + self.interval:
            return None
        report = self.final(totals)
        if report is not None:
            self._last_at = now
        return report

    def final(self, totals: Mapping[str, int]) -> LossReport | None:
        """A report of whatever is unreported, ignoring the interval; None if nothing is."""
        since = {
            kind: count - self._reported.get(kind, 0)
            for kind, count in totals.items()
            if count > self._reported.get(kind, 0)
        }
        if not since:
            return None
        self._reported = dict(totals)
        return LossReport(since_last=since, totals=dict(totals))

    def next_deadline(self) -> float | None:
        """The earliest time a new report may go out (None: at once)."""
        return None if self._last_at is None else self._last_at + self.interval
