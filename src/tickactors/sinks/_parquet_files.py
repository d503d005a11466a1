"""The Parquet sink's files: a part written under a temporary name, finished by rename;
the leftovers of a crash found and settled at the next start; one writer per directory.

The rules that keep a reader from ever seeing a torn file:

- a part file is written as ``.part-<stamp>.parquet.tmp`` in its final directory (a
  hidden name that no ``*.parquet`` glob and no dataset discovery picks up), row group by
  row group, with a CRC on every page;
- :meth:`PartFile.finish` writes the footer, ``fsync``\\ s the file, renames it to
  ``part-<stamp>.parquet`` and ``fsync``\\ s the directory (and its parent, which may have
  just got the directory). A ``part-*.parquet`` is therefore complete, on disk under its
  final name once the rename is reported, and never touched again;
- a crash leaves at most one temporary file per stream. Its row groups cannot be read
  without the footer, which is written last; :func:`settle_leftovers`, run at every
  start, removes such a file (what it held is lost) or, when the crash came between the
  footer and the rename and every page still checks out, finishes the rename instead;
- :func:`lock_directory` takes an exclusive ``flock`` on ``DIR/.lock`` for the life of
  the sink: a second capture into the same directory is refused rather than left to
  delete the first one's temporary files. The kernel drops the lock with the process,
  so a crash never leaves the directory locked.
"""

from __future__ import annotations

import calendar
import fcntl
import os
import time
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from ._files import fsync_directory
from ._parquet_columns import encodings

__all__ = ["PartFile", "lock_directory", "partition", "settle_leftovers"]

#: zstd level: 3 saved 1.4 % of the bytes on market-like ticks (docs/sinks.md), not worth it
ZSTD_LEVEL: Final = 1
_EPOCH: Final = date(1970, 1, 1)
_TEMP_PREFIX: Final = ".part-"
_TEMP_SUFFIX: Final = ".parquet.tmp"


def partition(root: Path, kind: str, day: int) -> Path:
    """``root/<kind>/date=YYYY-MM-DD`` for a UTC day (days since the epoch)."""
    return root / kind / f"date={(_EPOCH + timedelta(days=day)).isoformat()}"


def _stamp(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(seconds))}.{fraction:06d}Z"


def _temp_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _free_name(directory: Path, micros: int) -> Path:
    """``part-<UTC stamp of micros>.parquet``, the stamp moved on by a microsecond while
    the name (or its temporary name) is taken: names sort in the order of the files' first
    rows."""
    while True:
        path = directory / f"part-{_stamp(micros)}.parquet"
        if not path.exists() and not _temp_of(path).exists():
            return path
        micros += 1


class PartFile:
    """One part file being written: its temporary file, its final name, its writer."""

    def __init__(self, directory: Path, first_micros: int, schema: pa.Schema) -> None:
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        self._new_directory = created
        self.path = _free_name(directory, first_micros)
        self.temp = _temp_of(self.path)
        self.rows = 0
        self.row_groups = 0
        self._file = pa.OSFile(str(self.temp), "wb")
        dictionary, delta = encodings(schema)
        try:
            self._writer = pq.ParquetWriter(
                self._file,
                schema,
                compression="zstd",
                compression_level=ZSTD_LEVEL,
                use_dictionary=dictionary,
                column_encoding=delta,
                write_page_checksum=True,
            )
        except BaseException:
            self.abandon()
            raise

    def write(self, table: pa.Table) -> None:
        """Append ``table`` as one row group."""
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows
        self.row_groups += 1

    def finish(self) -> int:
        """Footer, fsync, rename to the final name, fsync of the directory; the size."""
        self._writer.close()
        os.fsync(self._file.fileno())
        self._file.close()
        size = os.stat(self.temp).st_size
        os.rename(self.temp, self.path)
        fsync_directory(self.path.parent)
        if self._new_directory:  # the date directory itself must survive a power loss
            fsync_directory(self.path.parent.parent)
            fsync_directory(self.path.parent.parent.parent)
            self._new_directory = False
        return size

    def abandon(self) -> None:
        """Give the file up (a failed write): close what is open, remove the temporary."""
        writer = getattr(self, "_writer", None)
        if writer is not None:
            with suppress(Exception):
                writer.close()
        with suppress(Exception):
            self._file.close()
        with suppress(OSError):
            self.temp.unlink()


def settle_leftovers(root: Path) -> list[tuple[Path, str, int]]:
    """Every temporary part file under ``root`` (a crash's leftovers): finished when it is a
    whole Parquet file whose pages all check out, removed otherwise. Returns, for each,
    ``(path, "recovered", rows)`` with the final path or ``(path, "removed", bytes)``."""
    out: list[tuple[Path, str, int]] = []
    for temp in sorted(root.glob(f"*/date=*/{_TEMP_PREFIX}*{_TEMP_SUFFIX}")):
        rows = _whole_rows(temp)
        if rows is None:
            size = temp.stat().st_size
            temp.unlink()
            fsync_directory(temp.parent)
            out.append((temp, "removed", size))
            continue
        fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = temp.with_name(temp.name[1 : -len(".tmp")])
        if final.exists():  # never over a finished file: a name of its own
            micros = _micros_of(final.name)
            final = _free_name(temp.parent, micros) if micros is not None else final
        os.rename(temp, final)
        fsync_directory(temp.parent)
        out.append((final, "recovered", rows))
    return out


def _whole_rows(path: Path) -> int | None:
    """The rows of a complete Parquet file whose every page checks out; None if it is not one."""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except Exception:  # no footer, a torn page, zeros: any failure means not whole
        return None
    return int(table.num_rows)


def _micros_of(name: str) -> int | None:
    """The microseconds of a ``part-YYYYmmddTHHMMSS.ffffffZ.parquet`` name."""
    try:
        stamp = name[len("part-") : -len("Z.parquet")]
        whole, fraction = stamp.split(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y%m%dT%H%M%S"))
        return seconds * 1_000_000 + int(fraction)
    except ValueError:
        return None


def lock_directory(root: Path) -> int:
    """Create ``root`` if needed and take the exclusive lock on ``root/.lock``; its fd.
    ``BlockingIOError`` when another capture holds it."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd
