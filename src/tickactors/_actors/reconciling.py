"""The subscription reconciler actor: the ``Reconciler`` machine, fed by a channel.

It hears the user's intent (``Want``/``Unwant``), the connection's life
(``ConnectionReady``/``ConnectionLost``), the tracker's verdicts (``Acked``,
``Rejected``, ``RateLimited``, ``TimedOut``), ghosts from the reader and
stale symbols from the staleness detector. It sends the machine's requests to
the request tracker, tells the staleness monitor which symbols to watch, and
publishes what is confirmed and rejected.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from .._core.reconciler import (
    Command,
    Confirmed,
    ConnectionLost,
    ConnectionReady,
    Event,
    GhostPersisting,
    Reconciler,
    SendRequest,
    SymbolsRejected,
    Unwant,
)
from .._core.staleness import StalenessMonitor
from .._health import HealthBus
from .._values import StreamKind
from .messages import Subscription, TrackerMessage
from .timers import receive_or_deadline

#: Events handled in one step at most (the rest wait for the next one, after a checkpoint).
MAX_EVENTS_PER_STEP = 4096


class ReconcilerActor:
    """Owns one ``Reconciler`` (one connection slot)."""

    def __init__(
        self,
        machine: Reconciler,
        monitor: StalenessMonitor,
        health: HealthBus,
        inbox: tuple[trio.MemorySendChannel[Event], trio.MemoryReceiveChannel[Event]],
        tracker: trio.MemorySendChannel[TrackerMessage],
    ) -> None:
        self.machine = machine
        self._monitor = monitor
        self._health = health
        self._tracker = tracker
        self.inbox, self._receive = inbox
        self.connection = 0
        self._changed = trio.Event()
        self._watching: set[str] = set()
        #: Set (and replaced) whenever symbols start being watched.
        self.watch_changed = trio.Event()

    async def run(self) -> None:
        while True:
            event = await receive_or_deadline(self._receive, self.machine.next_deadline)
            now = trio.current_time()
            if event is None:
                commands = self.machine.poll(now)
            else:
                # Everything waiting goes in one step: a burst of subscribe calls costs one
                # wake-up and one request, not one scheduler pass per call.
                events = [event]
                while len(events) < MAX_EVENTS_PER_STEP:
                    try:
                        events.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                commands = self.machine.handle_all(events, now)
                if any(isinstance(e, ConnectionLost | ConnectionReady) for e in events):
                    self._watching = set()  # the monitor was reset with the connection
                if any(isinstance(e, Unwant) for e in events):
                    self._sync_watch(now)
            self._dispatch(commands, now)
            # Wake anyone waiting for a state (wait_confirmed) after every step.
            self._changed.set()
            self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _dispatch(self, commands: Sequence[Command], now: float) -> None:
        for command in commands:
            if isinstance(command, SendRequest):
                self._tracker.send_nowait(Subscription(self.connection, command))
            elif isinstance(command, Confirmed):
                self._confirmed(command, now)
            elif isinstance(command, SymbolsRejected):
                self._health.emit(
                    "rejected",
                    self.connection,
                    command.reason,
                    stream=command.kind.value,
                    symbols=sorted(command.symbols),
                    code=command.code,
                )
            elif isinstance(command, GhostPersisting):
                self._health.emit(
                    "ghost",
                    self.connection,
                    "data keeps coming after the venue confirmed the unsubscribe; asking again",
                    stream=command.kind.value,
                    symbol=command.symbol,
                    count=command.count,
                )

    def _sync_watch(self, now: float) -> None:
        """Per-symbol staleness runs for symbols both desired and confirmed, no others."""
        watched = self._watched()
        new = watched - self._watching
        gone = self._watching - watched
        if new:
            self._monitor.watch(new, now)
            # New clocks may fall due before the detector's current wake-up time.
            self.watch_changed.set()
            self.watch_changed = trio.Event()
        if gone:
            self._monitor.unwatch(gone)
        self._watching = watched

    def _confirmed(self, command: Confirmed, now: float) -> None:
        self._sync_watch(now)
        self._health.emit(
            "subscribed",
            self.connection,
            stream=command.kind.value,
            symbols=sorted(command.symbols),
            count=len(command.symbols),
        )

    def _watched(self) -> set[str]:
        watched: set[str] = set()
        for kind in self.machine.kinds:
            watched |= self.machine.confirmed(kind) & self.machine.desired(kind)
        return watched

    def kinds_of(self, symbol: str) -> list[StreamKind]:
        """The kinds in which ``symbol`` is desired and confirmed (for a per-symbol refresh)."""
        return [
            kind
            for kind in self.machine.kinds
            if symbol in self.machine.confirmed(kind) and symbol in self.machine.desired(kind)
        ]
