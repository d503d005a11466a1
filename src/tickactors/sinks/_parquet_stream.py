"""One stream of the Parquet sink (trades, book, quotes or events) into its part files.

Theory of operation
-------------------
Runs in the sink's writer thread only. Rows come in with the UTC day each belongs to
and the sink's clock (``now``); the stream's
:class:`~tickactors._core.part_rotation.PartPolicy` says where they must be cut into
files (date, ``max_rows``, ``max_seconds``). Between cuts, rows pass three stages:

1. *pending values*: the Python values as the feed made them, until they weigh
   :data:`CONVERT_WEIGHT` (a row, plus one per book level), or ``row_group`` if that is
   less -- converting a few thousand rows at a time keeps pyarrow's per-call costs off
   each row;
2. *converted*: Arrow record batches (``_parquet_columns.build``), until they hold
   ``row_group`` rows or :data:`ROW_GROUP_BYTES` bytes of Arrow data;
3. *written*: one row group of the part file (``_parquet_files.PartFile``), opened
   when its first row group is written.

A cut (or the timer, or closing) converts and writes what is left as the file's last row
group and finishes the file: footer, fsync, rename. Memory is bounded by a row group
and a conversion's worth of values per stream.

What can fail, and what it costs:

- a row that cannot be converted (a bug, a value no schema foresaw): the rows of that
  conversion are lost and counted; the file goes on;
- a file that cannot be written, finished or renamed (disk full, a directory gone):
  the whole file is given up (its temporary removed), every row it held is lost and
  counted, and the next row starts a new file.

Each failure goes to ``failed(exc, lost_rows)``, each success of a write to ``wrote()``,
each finished file to ``finished(...)``; the sink turns them into events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from .._core.part_rotation import PartPolicy
from ._parquet_columns import BOOK, SCHEMAS, build, micros
from ._parquet_files import PartFile, partition

__all__ = ["CONVERT_WEIGHT", "ROW_GROUP_BYTES", "Stream"]

#: pending values are converted to Arrow once they weigh this much (rows + book levels)
CONVERT_WEIGHT: Final = 8192
#: a row group is written at ``row_group`` rows, or sooner at this many bytes of Arrow data
ROW_GROUP_BYTES: Final = 64 * 1024 * 1024

# kind, path, reason, rows, row groups, bytes
Finished = Callable[[str, Path, str, int, int, int], None]


class Stream:
    """See the module docstring."""

    def __init__(
        self,
        kind: str,
        root: Path,
        policy: PartPolicy,
        *,
        row_group: int,
        offset: float,
        time_of: Callable[[Any], float],
        failed: Callable[[Exception, int], None],
        wrote: Callable[[], None],
        finished: Finished,
    ) -> None:
        self.kind = kind
        self._root = root
        self._policy = policy
        self._row_group = row_group
        self._offset = offset
        self._time_of = time_of
        self._failed = failed
        self._wrote = wrote
        self._finished = finished
        self._schema = SCHEMAS[kind]
        self._convert_at = min(CONVERT_WEIGHT, row_group)
        self._pending: list[Any] = []
        self._weight = 0
        self._converted: list[pa.RecordBatch] = []
        self._converted_rows = 0
        self._converted_bytes = 0
        self._part: PartFile | None = None
        self._day: int | None = None  # of the current file's rows
        self._first_micros = 0  # of the current file's first row: its name
        self._file_rows = 0  # rows taken into the current file (every stage)
        #: rows written into finished files, files finished, their bytes, rows lost
        self.rows = 0
        self.files = 0
        self.bytes = 0
        self.lost_rows = 0

    def add(self, rows: Sequence[Any], days: Sequence[int], now: float) -> None:
        """Take ``rows`` (of UTC ``days``), handed over at ``now`` (epoch seconds)."""
        start = 0
        for cut in self._policy.cuts(days, now):
            if cut.index > start:
                self._take(rows[start : cut.index], days[start])
            start = cut.index
            self._finish(cut.reason)
        if start < len(rows):
            self._take(rows[start:] if start else rows, days[start])

    def on_time(self, now: float) -> None:
        """Finish the file if its period ended or the clock left its day."""
        reason = self._policy.due(now)
        if reason is not None and self._file_rows:
            self._finish(reason)

    def close(self) -> None:
        """Finish the file (if it holds anything)."""
        if self._file_rows:
            self._finish("close")

    # -- inside --------------------------------------------------------------------------

    def _take(self, rows: Sequence[Any], day: int) -> None:
        if not self._file_rows:
            self._day = day
            self._first_micros = micros(self._time_of(rows[0]), self._offset)
        self._pending.extend(rows)
        self._file_rows += len(rows)
        if self.kind == BOOK:
            self._weight += len(rows) + sum(len(b.bids) + len(b.asks) for b in rows)
        else:
            self._weight += len(rows)
        if self._weight >= self._convert_at:
            self._convert()
            if self._converted_rows >= self._row_group or self._converted_bytes >= ROW_GROUP_BYTES:
                self._write_row_groups(everything=False)

    def _convert(self) -> None:
        pending, self._pending = self._pending, []
        self._weight = 0
        try:
            batch = build(self.kind, pending, self._offset)
        except Exception as exc:
            self._file_rows -= len(pending)
            self.lost_rows += len(pending)
            self._failed(exc, len(pending))
            return
        self._converted.append(batch)
        self._converted_rows += batch.num_rows
        self._converted_bytes += batch.nbytes

    def _write_row_groups(self, *, everything: bool) -> bool:
        """Write the converted rows as row groups of ``row_group`` rows (``everything``:
        the rest too, as a last, smaller one). False when the file had to be given up."""
        if not self._converted_rows:
            return True
        table = pa.Table.from_batches(self._converted, schema=self._schema)
        size = self._row_group
        whole = table.num_rows if everything else table.num_rows - table.num_rows % size
        if not everything and self._converted_bytes >= ROW_GROUP_BYTES:
            whole = table.num_rows  # big rows: one group of what there is
        try:
            if self._part is None:
                assert self._day is not None
                self._part = PartFile(
                    partition(self._root, self.kind, self._day), self._first_micros, self._schema
                )
            offset = 0
            while offset < whole:
                piece = table.slice(offset, min(size, whole - offset))
                self._part.write(piece)
                offset += piece.num_rows
        except Exception as exc:
            self._give_up(exc)
            return False
        rest = table.slice(whole)
        self._converted = rest.to_batches() if rest.num_rows else []
        self._converted_rows = rest.num_rows
        self._converted_bytes = rest.nbytes if rest.num_rows else 0
        self._wrote()
        return True

    def _finish(self, reason: str) -> None:
        if self._pending:
            self._convert()
        if not self._write_row_groups(everything=True):
            return
        part, self._part = self._part, None
        rows, self._file_rows = self._file_rows, 0
        if part is None:  # every row of the file was lost in conversion
            return
        try:
            size = part.finish()
        except Exception as exc:
            part.abandon()
            self.lost_rows += rows
            self._failed(exc, rows)
            return
        self.rows += part.rows
        self.files += 1
        self.bytes += size
        self._finished(self.kind, part.path, reason, part.rows, part.row_groups, size)

    def _give_up(self, exc: Exception) -> None:
        """The file cannot be written: lose every row it holds, start afresh."""
        lost = self._file_rows
        if self._part is not None:
            self._part.abandon()
            self._part = None
        self._pending = []
        self._weight = 0
        self._converted = []
        self._converted_rows = self._converted_bytes = 0
        self._file_rows = 0
        self.lost_rows += lost
        self._failed(exc, lost)
