"""How a sink reports what happened to it: :class:`~tickactors.HealthEvent` values.

Every event goes to the ``tickactors`` logger and to the ``emit`` callback the sink
was opened with (the runner passes one that writes it like any health event: to
stdout and to every other sink). ``detail`` always names the sink (``sink``: its
display form, credentials masked). The list is in ``docs/sinks.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from .._actors.health_bus import logger
from .._errors import FeedError
from .._values import EventName, HealthEvent

__all__ = ["Emit", "SinkError", "SinkEvents"]


class SinkError(FeedError):
    """A sink that cannot start: its optional dependency (nats-py) is not installed, or
    its file cannot be opened. Raised when the sink opens, never while it runs."""


Emit = Callable[[HealthEvent], None]

#: Sink events worth a warning in the log; the rest are INFO.
WARNINGS = frozenset(
    {
        EventName.SINK_LOSS,
        EventName.SINK_ERROR,
        EventName.SINK_REPAIRED,
        EventName.SINK_DISCONNECTED,
        EventName.SINK_CONNECT_FAILED,
        EventName.SINK_REJECTED,
    }
)


class SinkEvents:
    """``events(EventName.SINK_LOSS, "message", dropped=3)``: log it, hand it to ``emit``."""

    def __init__(self, sink: str, emit: Emit | None) -> None:
        self.sink = sink
        self._emit = emit

    def __call__(self, event: EventName, message: str = "", **detail: Any) -> HealthEvent:
        return self.at(trio.current_time(), event, message, **detail)

    def at(self, time: float, event: EventName, message: str = "", **detail: Any) -> HealthEvent:
        """The same, for what happened at ``time`` on the feed's clock (a sink's writer
        thread reports its events later, on the Trio thread, with the time of the work)."""
        item = HealthEvent(event, time, 0, message, {"sink": self.sink, **detail})
        level = logging.WARNING if event in WARNINGS else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "[%s] %s %s %s", self.sink, event, message, detail or "")
        if self._emit is not None:
            self._emit(item)
        return item
