"""Health events: every actor reports what it noticed and did, and nothing blocks on it.

Events go to the log (``logging.getLogger("tickactors")``) and to a bounded
queue the user reads with ``feed.events()``. A user who never reads events
loses the oldest ones (counted), never the feed's progress.

What a person must act on (a connect that fails for a cause that will not heal) is
also an alarm (:meth:`HealthBus.alarm`): an ERROR record at once, then at most one a
minute per cause (``_core/log_throttle.py``), however often the feed retries.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from .._core.log_throttle import LogThrottle
from .._values import EventName, HealthEvent
from .queues import BatchQueue, Policy

logger = logging.getLogger("tickactors")
logger.addHandler(logging.NullHandler())  # a library logs; the application decides where to

#: Events worth a warning in the log; the rest are INFO (ticks are never logged).
_WARNINGS = frozenset(
    {
        "stale",
        "symbol_stale",
        "lagging",
        "disconnected",
        "connect_failed",
        "certificate_failed",
        "rejected",
        "ghost",
        "gap",
        "trade_gap",
        "handover_incomplete",
        "rotation_failed",
        "captcha",
        "decode_error",
        "request_timeout",
        "rate_limited",
        "token_failed",
        "auth_failed",
        "venue_error",
        "venue_closing",
        "shutdown",
        "sync_failed",
    }
)


class HealthBus:
    """Where actors publish :class:`HealthEvent` values."""

    def __init__(self, capacity: int = 10_000, *, alarm_interval: float = 60.0) -> None:
        self.queue: BatchQueue[HealthEvent] = BatchQueue(capacity, Policy.DROP_OLDEST)
        self.counts: dict[str, int] = {}
        self._alarms = LogThrottle(alarm_interval)

    def emit(
        self, event: EventName, connection: int = 0, message: str = "", **detail: Any
    ) -> None:
        item = HealthEvent(event, trio.current_time(), connection, message, detail)
        name = event.value  # counts keyed by plain text: JSON encoders refuse str subclasses
        self.counts[name] = self.counts.get(name, 0) + 1
        level = logging.WARNING if event in _WARNINGS else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "[conn %d] %s %s %s", connection, event, message, detail or "")
        if not self.queue.closed:
            self.queue.put_nowait((item,))

    def alarm(self, key: str, message: str) -> None:
        """Log ``message`` at ERROR, unless an alarm with this ``key`` was logged less than
        ``alarm_interval`` seconds ago (then it is held back, and counted in the next)."""
        held = self._alarms.allow(key, trio.current_time())
        if held is None:
            return
        if held:
            message += f" ({held} more like it since the last such line)"
        logger.error("%s", message)

    def close(self) -> None:
        self.queue.close()
