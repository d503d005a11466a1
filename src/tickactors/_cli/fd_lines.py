"""The runner's stdout and stderr: whole lines, written by a worker thread, never by Trio's.

Whoever reads the runner's stdout may stop reading for minutes (``run ... | ./slow``).
A blocking ``write`` on the Trio thread would then freeze the whole process, heartbeats
included, and the venue would drop the connection. :class:`FdLines` hands the bytes to a
:class:`~tickactors.sinks._writer_thread.WriterThread`, whose thread does the blocking
writes; the Trio side waits for room (market data, paced by the reader of stdout) or
offers a line and is told whether it fit (health events and status lines, which never
wait).

Why a thread rather than ``trio.lowlevel.FdStream``: an ``FdStream`` puts the file
descriptor in non-blocking mode, and that flag belongs to the open file description,
which stdout shares with stderr under ``2>&1``, with the terminal the shell also uses,
and with every other process writing to the same pipe. Each of those would then get
``EAGAIN`` (Python: ``BlockingIOError``) from ordinary blocking writes: a traceback
printed to stderr could fail half-way. A thread leaves the descriptor as it found it.
``bench/stdout.py`` measured both at full speed into ``/dev/null``; the figures are in
``docs/performance.md``.

Every line arrives whole. Into a pipe, the thread writes pieces of at most ``PIPE_BUF``
bytes cut at line ends (a longer line goes in one write): POSIX makes such a write
atomic, so even a write cut short by the process's exit (a reader that never read
again) leaves no torn line behind, and two such writers sharing one pipe (stdout and
stderr under ``2>&1``) interleave whole lines only.
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..sinks._writer_thread import WriterThread

__all__ = ["FdLines", "open_fd_lines", "write_whole_lines"]

#: bytes waiting for a reader before the market pump waits (about 16,000 tick lines)
CAPACITY = 4 * 1024 * 1024
#: room beyond CAPACITY for health events and status lines, which never wait
RESERVE = 1024 * 1024
#: how long closing waits for the reader to take what is still queued
CLOSE_TIMEOUT = 5.0


def write_whole_lines(fd: int, data: bytes, piece: int | None) -> None:
    """Write all of ``data`` (whole lines) to ``fd``, blocking as long as it takes.

    With ``piece``, in writes of at most ``piece`` bytes that each end at a line end
    (a line longer than ``piece`` in a write of its own).
    """
    view = memoryview(data)
    start, end = 0, len(data)
    while start < end:
        stop = end
        if piece is not None and end - start > piece:
            cut = data.rfind(b"\n", start, start + piece)
            if cut < 0:  # one line longer than a piece: all of it at once
                cut = data.find(b"\n", start + piece)
            stop = end if cut < 0 else cut + 1
        while start < stop:
            start += os.write(fd, view[start:stop])


class FdLines:
    """Whole lines to a file descriptor; see the module docstring.

    ``write`` raises what the writer thread met (``BrokenPipeError`` once nobody reads);
    ``write_nowait`` never raises and says whether the line was taken.
    """

    def __init__(
        self,
        fd: int,
        *,
        capacity: int = CAPACITY,
        reserve: int = RESERVE,
        name: str = "tickactors-stdout",
    ) -> None:
        self.fd = fd
        try:
            mode = os.fstat(fd).st_mode
        except OSError:  # closed (``>&-``): what is written goes nowhere
            self._usable = False
            self._piece: int | None = None
        else:
            self._usable = True
            self._piece = select.PIPE_BUF if stat.S_ISFIFO(mode) else None
        self._thread: WriterThread[bytes] = WriterThread(
            self._write, capacity=capacity, reserve=reserve, name=name
        )

    @property
    def blocked(self) -> bool:
        """The reader is behind by ``capacity`` bytes or more."""
        return self._thread.full

    @property
    def failed(self) -> bool:
        """A write failed (``BrokenPipeError``: nobody reads any more); nothing more goes."""
        return self._thread.error is not None

    async def write(self, data: bytes) -> None:
        """Queue ``data``, then wait while the reader is ``capacity`` bytes behind."""
        self._raise_error()
        self._thread.put(data, len(data))
        if self._thread.full:
            await self._thread.wait_room()
            self._raise_error()

    def write_nowait(self, data: bytes) -> bool:
        """Queue ``data`` if it fits (within ``capacity + reserve``); never waits."""
        return self._thread.offer(data, len(data))

    def statistics(self) -> dict[str, Any]:
        return self._thread.statistics()

    def _raise_error(self) -> None:
        error = self._thread.error
        if error is not None:
            raise error

    def _write(self, chunks: list[bytes]) -> None:
        if self._usable:
            write_whole_lines(self.fd, b"".join(chunks), self._piece)


@asynccontextmanager
async def open_fd_lines(
    fd: int, *, close_timeout: float = CLOSE_TIMEOUT, **options: Any
) -> AsyncIterator[FdLines]:
    """An :class:`FdLines` whose thread runs while the body does; at the end, what is
    queued is written for at most ``close_timeout`` seconds."""
    lines = FdLines(fd, **options)
    lines._thread.start()
    try:
        yield lines
    finally:
        with trio.CancelScope(shield=True):  # bounded by close_timeout
            await lines._thread.aclose(close_timeout)
