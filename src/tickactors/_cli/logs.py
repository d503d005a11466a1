"""``--log-level``: the ``tickactors`` logger on stderr, one line per record.

The library only ever adds a ``NullHandler`` to its logger (the application decides
where logs go), so without this nothing it logs is shown anywhere. The runner and the
demo send it to stderr through :func:`~.stderr.error_line` at the level asked for.
The default, ``error``, shows nothing in normal operation: every health event is
already a line on stdout, and a fatal error already has its own line on stderr. What it
shows is what a person must act on: a connect that fails for a cause that will not heal
(``HealthBus.alarm``), at once and then at most once a minute.
``warning`` adds a line per worrying health event (``stale``, ``disconnected``,
``rate_limited``, ...), ``info`` every health event, ``debug`` token renewals too.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from .._arg_types import one_line
from .stderr import error_line

LEVELS = ("debug", "info", "warning", "error")
DEFAULT = "error"


def add_log_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default=DEFAULT,
        help="send the tickactors log to stderr from this level up, one line per record "
        f"(default: {DEFAULT}: health events are on stdout already, and this shows only "
        "connect failures that will not heal, once a minute; warning adds a line per "
        "stale, disconnected, rate_limited, ... event)",
    )


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            error_line(one_line(self.format(record)))
        except Exception:
            self.handleError(record)


@contextmanager
def logging_to_stderr(level: str | None) -> Iterator[None]:
    """While the block runs, the ``tickactors`` logger writes ``level`` and up to stderr.

    ``None``: leave logging as it is (a command without ``--log-level``).
    """
    if level is None:
        yield
        return
    logger = logging.getLogger("tickactors")
    handler = _StderrHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    before = logger.level
    logger.setLevel(level.upper())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
