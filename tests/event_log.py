"""A feed's health events as a test sees them: every one kept, and a way to wait for some."""

from __future__ import annotations

import trio

import tickactors


class EventLog:
    """``nursery.start_soon(log.follow, feed)``, then ``await log.wait_for("rotated", 3)``."""

    def __init__(self) -> None:
        self.events: list[tickactors.HealthEvent] = []
        self._changed = trio.Event()

    async def follow(self, feed: tickactors.Feed) -> None:
        async for event in feed.events():
            self.events.append(event)
            self._changed.set()
            self._changed = trio.Event()

    def named(self, name: str) -> list[tickactors.HealthEvent]:
        return [event for event in self.events if event.event == name]

    def names(self) -> list[str]:
        return [event.event for event in self.events]

    async def wait_for(self, name: str, count: int = 1) -> tickactors.HealthEvent:
        """The ``count``-th event called ``name`` (put the call under ``trio.fail_after``)."""
        while len(self.named(name)) < count:
            await self._changed.wait()
        return self.named(name)[count - 1]
