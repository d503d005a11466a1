"""The runner's one way to put a line of text on stderr.

Every human line the runner writes to stderr goes through :func:`error_line`: a
refusal of the command line, a fatal error, a warning, a log record. Before the Trio
run (the parser's refusals) that is a plain print, flushed at once. While a command
runs, :func:`stderr_routed_to` hands the lines to stderr's writer thread
(``fd_lines.py``) instead, which never waits: a stderr nobody reads can hold no task of
the run. A stderr that is closed or gone (``2>&-``, a reader that left) loses the line
and stops nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol


class _Lines(Protocol):
    def write_nowait(self, data: bytes) -> bool: ...


_routes: list[_Lines] = []


@contextlib.contextmanager
def stderr_routed_to(lines: _Lines) -> Iterator[None]:
    """While the block runs, :func:`error_line` offers its lines to ``lines``."""
    _routes.append(lines)
    try:
        yield
    finally:
        _routes.remove(lines)


def error_line(text: str) -> None:
    """Write ``text`` and a newline to stderr (flushed; or offered to its writer thread)."""
    if _routes:
        _routes[-1].write_nowait(f"{text}\n".encode(errors="backslashreplace"))
        return
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # closed, or nobody reads it any more
        print(text, file=stream, flush=True)
