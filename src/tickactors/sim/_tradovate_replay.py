"""The market-replay clock of one replay socket.

Theory of operation
-------------------
``replay/initializeClock`` with ``{"startTimestamp": ISO, "speed": 0..400,
"initialBalance": N}`` starts a :class:`ReplayClock`: replay time equals
``startTimestamp`` at the trio time of the request and then runs at
``speed`` PERCENT of real time (Tradovate's documentation: "the percent
speed of real-time"; 400 = four times real time, 0 = paused; ``docs/venues.md``,
Tradovate, "Market replay"), not a multiple of it, as it is easy to read.
``replay/changeSpeed`` re-anchors the clock so replay time never jumps.

The connection sends a ``clock`` event right after the OK answer and then
once a second of real time: ``{"e":"clock","d":"{\\"t\\":ISO,\\"s\\":speed}"}``
(``d`` is a JSON string). Quotes and DOMs sent to that socket carry replay
timestamps. ``initialBalance`` is accepted (a non-negative number) and
otherwise ignored: there is no simulated account activity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from . import _tradovate_protocol as proto

MAX_SPEED: Final = 400
CLOCK_INTERVAL: Final = 1.0


@attrs.define(slots=True)
class ReplayClock:
    """Replay wall-clock seconds as a function of trio time."""

    start_wall: float
    speed: float
    anchor: float  # trio time at which replay time was start_wall
    initial_balance: float = 50_000.0

    def wall_at(self, now: float) -> float:
        return self.start_wall + (now - self.anchor) * self.speed / 100.0

    def change_speed(self, speed: float, now: float) -> None:
        self.start_wall = self.wall_at(now)
        self.anchor = now
        self.speed = speed

    def event(self, now: float) -> dict[str, Any]:
        return proto.clock_event(self.wall_at(now), self.speed)


def check_speed(value: object) -> float | str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "speed must be a number in 0..400"
    if not 0 <= value <= MAX_SPEED:
        return "speed must be a number in 0..400"
    return float(value)


def initialize(params: Mapping[str, Any], now: float) -> ReplayClock | str:
    """A clock from an ``initializeClock`` body, or the error text."""
    start = proto.parse_iso(params.get("startTimestamp"))
    if start is None:
        return "startTimestamp must be an ISO-8601 timestamp"
    speed = check_speed(params.get("speed", 100))
    if isinstance(speed, str):
        return speed
    balance = params.get("initialBalance", 50_000)
    if isinstance(balance, bool) or not isinstance(balance, int | float) or balance < 0:
        return "initialBalance must be a non-negative number"
    return ReplayClock(start, speed, now, float(balance))
