"""When a Parquet part file is cut: by rows, by time, or by the date its rows belong to.

Theory of operation
-------------------
The Parquet sink writes each stream (trades, books, quotes, events) into part files
under a directory per UTC date (``<kind>/date=YYYY-MM-DD/``), and finishes a part file
(footer, fsync, rename) when this policy says so. Three rules, checked in this order
for every row:

the date
    Every row of a part file belongs to one UTC day: its ``day`` (whole days since the
    epoch, of the row's own time) is the file's. A row of another day goes to a new
    file, whichever way the clock went (rows of two connections may straddle midnight
    out of order: each run of one day gets its file).
``max_rows``
    A file never holds more than ``max_rows`` rows.
``max_seconds``
    Files cover aligned periods of the clock, as the JSON-lines sink's do
    (:class:`~tickactors._core.sink_rotation.RotationPolicy`): the period holding the
    moment a file started ends at the next multiple of ``max_seconds``; rows handed over
    at or after that end go to a new file.

A file that is still empty is never cut. Between rows, :meth:`PartPolicy.due` says
whether a file must be finished because its period ended or the clock left its day
(the sink asks at every :func:`next_boundary`), so that an idle stream's file does not
stay open past midnight or its period.

The machine reads no clock: ``now`` comes in as an argument (epoch seconds in the
sink). ``days`` are computed by the caller from each row's own time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .sink_rotation import Cut

__all__ = ["DAY", "Cut", "PartPolicy", "next_boundary"]

#: seconds in a UTC day (the epoch has no leap seconds)
DAY = 86_400


def _end_of_period(now: float, max_seconds: float | None) -> float | None:
    if max_seconds is None:
        return None
    return (math.floor(now / max_seconds) + 1) * max_seconds


def next_boundary(now: float, max_seconds: float | None) -> float:
    """The next moment after ``now`` when some file may have to be finished: the end of
    the ``max_seconds`` period holding ``now``, or the next UTC midnight if sooner."""
    midnight = (math.floor(now / DAY) + 1) * DAY
    end = _end_of_period(now, max_seconds)
    return midnight if end is None else min(end, midnight)


class PartPolicy:
    """Decides where one stream's rows are cut into part files. See the module docstring."""

    def __init__(self, *, max_rows: int, max_seconds: float | None = None) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows!r}")
        if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be a finite number > 0, got {max_seconds!r}")
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._rows = 0
        self._day: int | None = None
        self._period_end: float | None = None

    @property
    def rows(self) -> int:
        """Rows in the current file, as far as this policy was told."""
        return self._rows

    @property
    def day(self) -> int | None:
        """The UTC day (days since the epoch) of the current file's rows; None while empty."""
        return self._day if self._rows else None

    def started(self, now: float) -> None:
        """A new, empty file begins at ``now``."""
        self._rows = 0
        self._day = None
        self._period_end = _end_of_period(now, self.max_seconds)

    def cuts(self, days: Sequence[int], now: float) -> list[Cut]:
        """Where to cut before writing rows of these UTC ``days``, handed over at ``now``.

        ``Cut(index, reason)``: finish the file before row ``index`` (``reason`` is
        ``"time"``, ``"date"`` or ``"rows"``); the policy then counts the rows as written,
        with a new file started at each cut.
        """
        out: list[Cut] = []
        if self._period_end is None:
            self._period_end = _end_of_period(now, self.max_seconds)
        elif now >= self._period_end:
            if self._rows:
                out.append(Cut(0, "time"))
            self.started(now)
        n = len(days)
        if not n:
            return out
        rows = self._rows
        first = days[0]
        # The usual batch: one day, the file's, and room for all of it (min/max run in C).
        if (
            rows + n <= self.max_rows
            and (rows == 0 or first == self._day)
            and min(days) == max(days) == first
        ):
            self._rows = rows + n
            self._day = first
            return out
        day = self._day
        limit = self.max_rows
        for index, row_day in enumerate(days):
            if rows and row_day != day:
                out.append(Cut(index, "date"))
                rows = 0
            elif rows >= limit:
                out.append(Cut(index, "rows"))
                rows = 0
            if not rows:
                day = row_day
            rows += 1
        self._rows = rows
        self._day = day
        return out

    def due(self, now: float) -> str | None:
        """``"time"`` when the file's period has ended, ``"date"`` when ``now`` is past
        the end of its rows' day; None otherwise or when the file is empty. After a
        reason, the caller finishes the file and the policy counts a new, empty one
        started at ``now``; an empty file's period just moves on."""
        if self._period_end is not None and now >= self._period_end:
            reason: str | None = "time"
        elif self._rows and self._day is not None and now >= (self._day + 1) * DAY:
            reason = "date"
        else:
            return None
        if not self._rows:
            reason = None
        self.started(now)
        return reason
