"""When a capture file is cut: by size, by time, or both.

Theory of operation
-------------------
The JSON-lines sink appends whole lines to its active file and, when this policy says
so, closes it (fsync, rename) and starts a new one. Two limits, each optional:

``max_bytes``
    A file never grows past ``max_bytes``, except a file that holds a single line
    longer than that. Before a line is written, if the file already holds something and
    the line would take it past the limit, the file is cut first.
``max_seconds``
    Files cover aligned periods of the clock: the period of a file started at ``t`` ends
    at the next multiple of ``max_seconds`` after ``t`` (with ``max_seconds=3600`` and
    epoch seconds, every file ends at the top of an hour). A line that arrives at or
    after that end goes to a new file. A file still empty when its period ends is not
    cut; its period moves on to the one holding ``now``.

The machine reads no clock: ``now`` comes in as an argument (epoch seconds in the
sink), the caller does the cutting, and :meth:`RotationPolicy.next_deadline` says when
the caller should come back to cut an idle file whose period ended
(:meth:`RotationPolicy.due`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

__all__ = ["Cut", "RotationPolicy"]


@attrs.frozen(slots=True)
class Cut:
    """Start a new file before line ``index`` of the batch; ``reason`` is "size" or "time"."""

    index: int
    reason: str


class RotationPolicy:
    """Decides where a stream of lines is cut into files. See the module docstring."""

    def __init__(self, *, max_bytes: int | None = None, max_seconds: float | None = None) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes!r}")
        if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be a finite number > 0, got {max_seconds!r}")
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._size = 0
        self._period_end: float | None = None

    @property
    def size(self) -> int:
        """Bytes in the current file, as far as this policy was told."""
        return self._size

    def started(self, now: float, size: int = 0) -> None:
        """A file was opened at ``now`` already holding ``size`` bytes."""
        self._size = size
        self._period_end = self.end_of_period(now)

    def cuts(self, sizes: Sequence[int], now: float) -> list[Cut]:
        """Where to cut before writing lines of these byte sizes at ``now``.

        The policy then counts the lines as written, with a new file started at each cut.
        """
        out: list[Cut] = []
        if self._period_end is not None and now >= self._period_end:
            if self._size:
                out.append(Cut(0, "time"))
            self.started(now)
        limit = self.max_bytes
        if limit is None:
            self._size += sum(sizes)
            return out
        size = self._size
        for index, n in enumerate(sizes):
            if size and size + n > limit:
                out.append(Cut(index, "size"))
                size = 0
            size += n
        self._size = size  # a size cut keeps the period: periods are aligned, not per file
        return out

    def due(self, now: float) -> bool:
        """True when the current file's period has ended and the file holds something.

        An empty file's period moves on instead (and False is returned). After True the
        caller cuts, and the policy counts a new, empty file started at ``now``.
        """
        if self._period_end is None or now < self._period_end:
            return False
        rotate = self._size > 0
        self.started(now)
        return rotate

    def next_deadline(self) -> float | None:
        """When the current period ends (None without ``max_seconds``)."""
        return self._period_end

    def end_of_period(self, now: float) -> float | None:
        """When the period holding ``now`` ends (None without ``max_seconds``); depends on
        the configuration only."""
        if self.max_seconds is None:
            return None
        return (math.floor(now / self.max_seconds) + 1) * self.max_seconds
