"""Tradovate market replay, the client's side: where the clock starts, and how fast.

The dialect sends ``replay/initializeClock`` on every new connection (a setup call);
after a drop it resumes from the last ``clock`` reading instead of the start.
"""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen
class Replay:
    """Market replay: where the clock starts, how fast (percent of real time, 0 to 400, as
    Tradovate documents ``speed``) and the simulated account's starting balance."""

    start: str  # ISO-8601, e.g. "2024-01-02T14:30:00.000Z"
    speed: int = 100
    initial_balance: float = 50_000.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.speed <= 400:
            raise ValueError("replay speed is 0 to 400 (percent of real time)")
        if _iso_seconds(self.start) is None:
            raise ValueError(f"replay start is an ISO-8601 time, not {self.start!r}")


def _iso_seconds(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None
