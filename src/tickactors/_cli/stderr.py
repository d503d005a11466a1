"""The runner's one way to put a line of text on stderr.

Every human line the runner writes to stderr goes through :func:`error_line`: a
refusal of the command line, a fatal error, a warning, a log record. Today that is a
plain print, flushed at once; how it is written can change here alone. A stderr that
is closed or gone (``2>&-``, a reader that left) loses the line and stops nothing.
"""

from __future__ import annotations

import contextlib
import sys


def error_line(text: str) -> None:
    """Write ``text`` and a newline to stderr, flushed."""
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # closed, or nobody reads it any more
        print(text, file=stream, flush=True)
