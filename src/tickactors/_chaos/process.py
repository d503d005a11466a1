"""What the soak reads off its own process: swallowed exceptions and memory."""

from __future__ import annotations

import logging

from .ledger import Ledger


class ErrorCounter(logging.Handler):
    """Counts log records that carry an exception: an exception someone swallowed."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(logging.ERROR)
        self.ledger = ledger

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.ledger.unhandled_exception(f"{record.name}: {record.getMessage()}")


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
