"""The file operations of the JSON-lines sink: append whole lines, repair a torn tail, rotate.

The rules that make a capture safe against a crash mid-write:

- the active file is opened ``O_APPEND`` and written with ``os.write`` only, a batch of
  whole lines at a time; nothing is buffered in the process between batches;
- a crash can still leave the last line cut short (a write interrupted, or a power loss
  that kept part of the last block). :func:`repair_torn_tail` truncates the file after
  its last ``\\n`` and is run on every file the sink opens, so a torn line never
  survives into the next run;
- a file is retired by :func:`retire`: ``fsync`` of the file, ``rename`` to its final
  name, ``fsync`` of the directory. A retired file therefore holds whole lines only and
  is on disk under its final name when the rename is reported.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["open_active", "repair_torn_tail", "retire", "retired_name", "write_all"]

_CHUNK = 64 * 1024


def open_active(path: Path) -> tuple[int, int, int]:
    """Open (creating) the active file for appending; ``(fd, size, bytes_removed)``.

    A torn last line left by a crash is removed first (``bytes_removed`` says how much).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        removed = repair_torn_tail(fd)
        size = os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise
    return fd, size, removed


def repair_torn_tail(fd: int) -> int:
    """Truncate the file after its last ``\\n`` (to empty if it has none); bytes removed."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    if keep == size:
        return 0
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return size - keep


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def retired_name(path: Path, now: float) -> Path:
    """``ticks.jsonl`` -> ``ticks.20260301T120000.123456Z.jsonl`` (``now`` in epoch seconds,
    UTC, to the microsecond). A name already taken moves the stamp on by a microsecond,
    so that names keep sorting in the order the files were retired."""
    micros = round(now * 1_000_000)
    while True:
        seconds, fraction = divmod(micros, 1_000_000)
        stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(seconds))}.{fraction:06d}Z"
        candidate = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
        if not candidate.exists():
            return candidate
        micros += 1


def retire(fd: int, path: Path, now: float) -> Path:
    """fsync and close the active file, rename it to its retired name, fsync the directory."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    target = retired_name(path, now)
    os.rename(path, target)
    fsync_directory(path.parent)
    return target


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
