"""Bucketed counts of durations: request latency, heartbeat lateness.

Theory of operation
-------------------

A few durations are worth a distribution, not a last value: how long the venue takes to
answer a request, how late the heartbeat sender woke against its grid. They happen per
request or per heartbeat (a few a second at most), never per tick, so recording one is
allowed to cost a bisection. :class:`Histogram` keeps what a Prometheus histogram
exposes and nothing more: one count per bucket, the sum and the count of everything
observed. Nothing is stored per observation, so memory stays constant for the feed's life.

Buckets are upper bounds, inclusive (``value <= bound``, Prometheus' ``le``), strictly
increasing and finite; one more bucket past the last bound holds the rest (``+Inf``).
:meth:`Histogram.observe` puts a value in the first bucket whose bound is at least the
value (``bisect_left``). A negative value (a clock that stepped back) is counted as 0: a
duration is never negative, and the sum must not shrink.

The counts are per bucket, not cumulative; :meth:`Histogram.statistics` hands them out
so, JSON-friendly, and whoever exposes them (``_feed/metrics.py``) adds them up into the
cumulative form Prometheus wants. The machine reads no clock: the caller measures and
passes the duration in.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

__all__ = ["HEARTBEAT_LATENESS_BUCKETS", "REQUEST_LATENCY_BUCKETS", "Histogram"]

#: Seconds from a request's sending to its answer: AllTick answers in tens of milliseconds;
#: the deadlines are 5 s (AllTick) and 10 s (Tradovate), and a timed-out request is no answer.
REQUEST_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds the heartbeat sender woke after its due time: a busy Trio thread shows here
#: first (a reader's step is about 0.6 ms; bench/run.py's p99 target is 20 ms).
HEARTBEAT_LATENESS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Histogram:
    """Counts of observed durations by bucket (upper bounds ``bounds``), their sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        bounds = tuple(float(b) for b in bounds)
        if not bounds:
            raise ValueError("a histogram needs at least one bucket bound")
        if not all(math.isfinite(b) for b in bounds):
            raise ValueError(f"bucket bounds must be finite, got {bounds!r}")
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValueError(f"bucket bounds must be strictly increasing, got {bounds!r}")
        self.bounds = bounds
        #: per bucket, the last one past every bound (``+Inf``)
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one duration of ``value`` seconds (negative: 0; NaN is ignored)."""
        if value != value:  # NaN: no bucket holds it, and it would poison the sum
            return
        if value < 0.0:
            value = 0.0
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def statistics(self) -> dict[str, Any]:
        """``{"bounds": [...], "counts": [...], "sum": s, "count": n}``: per-bucket counts,
        one more than there are bounds (the last: past every bound)."""
        return {
            "bounds": list(self.bounds),
            "counts": list(self.counts),
            "sum": self.sum,
            "count": self.count,
        }

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, sum={self.sum:.6f}, bounds={self.bounds!r})"
