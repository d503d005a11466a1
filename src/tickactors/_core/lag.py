"""Lag: the data still flows, but it arrives later and later (a thin pipe, a slow reader).

Theory of operation
-------------------

Staleness (``staleness.py``) catches a connection that goes silent. A connection can also
stay busy and fall behind: the path's bandwidth drops below what the venue sends (the
venue's send buffer fills and every message waits longer than the one before), or the
reader itself cannot keep up and the socket's receive buffer fills. Nothing goes silent,
no deadline fires, and the user trades on prices that are seconds old.

What the client can observe is how old the data is when it arrives: the feed's estimate
of the wall clock minus the venue's ``exchange_time`` of the newest item in a batch, its
*delay*. The absolute value means little: it holds the offset between the venue's clock
and ours (seconds, either way, on some hosts), the time the venue took to send, the
network's latency, and the venue's time resolution (AllTick's ``tick_time`` is in whole
seconds). What the monitor watches is how much the delay *grows* against the best this
connection has recently done, which cancels the constant parts:

* Time is cut into buckets of ``bucket`` seconds (1 s). Each bucket keeps the smallest
  delay observed in it: the freshest data of that second. An old item (a snapshot of a
  quiet instrument, a book whose time is its last change) does not raise it as long as
  anything fresh arrives in the same second.
* The *baseline* is the smallest bucket minimum over the last ``window`` seconds (300 s)
  while the connection was not lagging: the delay of a healthy path, offset included.
  Taking it over a sliding window lets it follow slow drift between the two clocks. The
  baseline is frozen while lagging (a long lag must not become the new normal).
* The *floor* is the smallest bucket minimum over the last ``recent`` seconds (2 s): how
  fresh the freshest data has been lately.
* When a bucket closes (the first observation of a later bucket), ``floor - baseline`` is
  how far behind the connection is. At ``lag_after`` or more, :class:`Lagging` (once);
  while lagging, the largest value is kept, and once it falls under half ``lag_after``
  (hysteresis: no flapping around the threshold), :class:`CaughtUp`.

Judged only when data arrives: a connection with nothing to deliver is not behind, and
silence is the staleness clock's business. A connection that opens already behind takes
that as its baseline and reports only growth beyond it. Replay feeds (Tradovate market
replay, where ``exchange_time`` is the replay clock) run that clock at least at real
speed, so their delay only shrinks and never reads as lag.

Cost: :meth:`LagMonitor.observe` is called once per batch with one float; it compares it
with the bucket's minimum and returns. The window's minimum is a monotonic deque, so the
work when a bucket closes is amortized O(1).
"""

from __future__ import annotations

import math
from collections import deque

import attrs

__all__ = ["CaughtUp", "LagMonitor", "Lagging"]


@attrs.frozen
class Lagging:
    """The freshest data now arrives ``behind`` seconds later than the baseline's."""

    behind: float
    baseline: float


@attrs.frozen
class CaughtUp:
    """Back within half of ``lag_after`` of the baseline, after ``lagged_for`` seconds
    during which the connection fell at most ``behind_max`` seconds behind."""

    behind: float
    behind_max: float
    lagged_for: float


class LagMonitor:
    """One connection's delays, judged against its own recent best (see the module docstring)."""

    def __init__(
        self,
        *,
        lag_after: float,
        window: float = 300.0,
        recent: float = 2.0,
        bucket: float = 1.0,
    ) -> None:
        for name, value in (("lag_after", lag_after), ("window", window), ("bucket", bucket)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(recent) and recent >= bucket):
            raise ValueError(f"recent must be a finite number >= bucket, got {recent!r}")
        self.lag_after = lag_after
        self._bucket = bucket
        self._window_buckets = max(1, round(window / bucket))
        self._recent_buckets = max(1, round(recent / bucket))
        self._index: int | None = None  # the open bucket
        self._low = math.inf  # the open bucket's smallest delay
        self._closed: deque[tuple[int, float]] = deque()  # recent closed buckets
        self._baseline: deque[tuple[int, float]] = deque()  # increasing minima (monotonic)
        self._lagging_since: float | None = None
        self._behind_max = 0.0
        self.episodes = 0

    @property
    def lagging(self) -> bool:
        return self._lagging_since is not None

    @property
    def baseline(self) -> float | None:
        """The healthy delay (seconds, clock offset included), None before the first bucket."""
        return self._baseline[0][1] if self._baseline else None

    def observe(self, now: float, delay: float) -> Lagging | CaughtUp | None:
        """The newest item of a batch arrived ``delay`` seconds after its ``exchange_time``
        (by the feed's estimate of the wall clock); a verdict when a bucket closed with one."""
        index = math.floor(now / self._bucket)
        if index == self._index:
            if delay < self._low:
                self._low = delay
            return None
        verdict = None if self._index is None else self._close(self._index, self._low, now)
        self._index, self._low = index, delay
        return verdict

    def _close(self, index: int, low: float, now: float) -> Lagging | CaughtUp | None:
        closed = self._closed
        closed.append((index, low))
        while closed[0][0] <= index - self._recent_buckets:
            closed.popleft()
        floor = min(value for _, value in closed)
        baseline = self.baseline
        if baseline is None:
            self._remember(index, low)
            return None
        behind = floor - baseline
        if self._lagging_since is None:
            if behind >= self.lag_after:
                self._lagging_since = now
                self._behind_max = behind
                self.episodes += 1
                return Lagging(behind=behind, baseline=baseline)
            self._remember(index, low)
            return None
        self._behind_max = max(self._behind_max, behind)
        if behind < self.lag_after / 2:
            since, self._lagging_since = self._lagging_since, None
            self._remember(index, low)
            return CaughtUp(behind=behind, behind_max=self._behind_max, lagged_for=now - since)
        return None

    def _remember(self, index: int, low: float) -> None:
        """Add a healthy bucket to the baseline's window (a monotonic deque of minima)."""
        kept = self._baseline
        while kept and kept[-1][1] >= low:
            kept.pop()
        kept.append((index, low))
        while kept[0][0] <= index - self._window_buckets:
            kept.popleft()
