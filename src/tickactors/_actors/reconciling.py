"""The subscription reconciler actor: the ``Reconciler`` machine, fed by a channel.

It hears the user's intent, the connection's life (``ConnectionReady``/``ConnectionLost``),
the tracker's verdicts (``Acked``, ``Rejected``, ``RateLimited``, ``TimedOut``), ghosts
from the reader and stale symbols from the staleness detector. It sends the machine's
requests to the request tracker, tells the staleness monitor which symbols to watch, and
publishes what is confirmed and rejected.

The user's intent does not travel as one item per call: whoever changes it (the feed's
intent, a slot) hands each change to the actor's :class:`IntentQueue` (``put``), which puts
its list in the inbox only when it was empty. A burst of calls thus costs one inbox item
and one step, in which the actor takes the whole list as one ``Intents`` event (handled
exactly as the Want/Unwant of each change). While handling a change could send nothing
anyway (the machine's ``intents_due()``: the request spacing holds everything back, or there
is no connection), the queue is not :attr:`~IntentQueue.eager`: a change is one
``list.append``, and the actor takes the list when that time comes or at its next step for
another reason, whichever is first. Under churn against AllTick's one request a second,
that is one step a second instead of one per burst.

The actor learns the number of the connection that serves it from a message
(``ConnectionOpened``, sent by the connector), like everything else it hears.

Between steps the actor waits in one cancel scope whose deadline follows the machine's
``next_deadline()`` (and ``intents_due()`` while it keeps changes back); when it passes
(or is due already after a step), it polls.

One actor serves one *shift* of a connection slot: the slot's connection and the ones
that replace it after failures. During a make-before-break rotation the replacement
connection has an actor of its own (its machine is ``machine.successor()``), and the
old actor forwards every change of intent it takes to it
(:meth:`~ReconcilerActor.forward_to`) until the replacement takes over
(:meth:`~ReconcilerActor.hand_over_to`). Every actor of a feed wakes the same
:class:`Changes` after each step, so ``wait_confirmed`` and ``wait_converged`` see every
slot and every shift.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from .._core.reconciler import (
    Command,
    Confirmed,
    ConnectionLost,
    ConnectionReady,
    Event,
    GhostPersisting,
    IntentChange,
    Intents,
    Reconciler,
    SendRequest,
    SymbolsRejected,
    Unwant,
    Want,
)
from .._core.staleness import StalenessMonitor
from .._values import EventName, StreamKind
from .health_bus import HealthBus
from .messages import ConnectionOpened, Subscription, TrackerMessage

#: Events handled in one step at most (the rest wait for the next one, after a checkpoint).
MAX_EVENTS_PER_STEP = 4096

#: What the inbox carries: events, the actor's own intents list as a wake-up, and the
#: number of the connection that serves it now.
Inbound = Event | list[IntentChange] | ConnectionOpened


class Changes:
    """Wakes whoever waits for a state (``wait_confirmed``) after any actor's step."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: trio.Event | None = None  # made by the first waiter

    def wake(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        """Wait until some actor's next step (or poll) is over."""
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()


class IntentQueue:
    """The user's changes of intent one reconciler actor has not taken yet, oldest first,
    and the one way to hand it one: :attr:`put`.

    The first change since the actor last took the list puts the list itself in the
    actor's inbox (once: the actor takes it whole from there), unless the actor keeps
    changes back (not :attr:`eager`: handling them could send nothing yet, and the actor
    takes them when that time comes, or at its next step). Every other change is one
    ``list.append``: ``put`` *is* the list's ``append`` whenever no wake-up is due, so the
    hand-off costs the user's hot path no Python call of its own. ``put`` changes with the
    state: call ``queue.put(change)``, never keep ``queue.put``.

    The owning actor takes the list (:meth:`take`) and, after each step, says whether it
    wants a wake-up for the next change (:meth:`settle`).
    """

    __slots__ = ("_eager", "_inbox", "changes", "put")

    def __init__(self, inbox: trio.MemorySendChannel[Inbound]) -> None:
        #: The changes not taken yet (also the inbox item that wakes the actor).
        self.changes: list[IntentChange] = []
        self._inbox = inbox
        self._eager = True
        #: Hand over one change (see the class docstring).
        self.put: Callable[[IntentChange], None] = self._first

    @property
    def eager(self) -> bool:
        """Whether a change wakes the actor (False: it keeps changes back until due)."""
        return self._eager

    def _first(self, change: IntentChange) -> None:
        """``put`` while the list is empty and the actor eager: wake it, once."""
        changes = self.changes
        self._inbox.send_nowait(changes)
        changes.append(change)
        self.put = changes.append

    def take(self) -> Intents:
        """Every change not taken yet, as one event (later ones start the list anew)."""
        changes = self.changes
        taken = Intents(tuple(changes))
        changes.clear()
        return taken

    def settle(self, eager: bool) -> None:
        """The actor's step is over: ``eager``, whether the next change should wake it."""
        self._eager = eager
        changes = self.changes
        self.put = self._first if eager and not changes else changes.append

    def hand_over_to(self, other: IntentQueue) -> None:
        """Move the changes not taken yet to ``other`` (its actor takes over), in order."""
        changes = self.changes
        for change in changes:
            other.put(change)
        changes.clear()  # this actor will find its list empty: nothing to do
        self.settle(self._eager)


class ReconcilerLink(Protocol):
    """What a connection's session needs of its reconciler actor, and all it may touch:
    the inbox to tell it things (``ConnectionReady``, ``Refresh``, ghosts), the event that
    says the watched symbols changed, and which kinds a symbol is confirmed in.
    :class:`ReconcilerActor` is one."""

    @property
    def inbox(self) -> trio.MemorySendChannel[Inbound]: ...

    @property
    def watch_changed(self) -> trio.Event: ...

    def kinds_of(self, symbol: str) -> list[StreamKind]: ...


class ReconcilerActor:
    """Owns one ``Reconciler`` (one connection slot)."""

    def __init__(
        self,
        machine: Reconciler,
        monitor: StalenessMonitor,
        health: HealthBus,
        inbox: tuple[trio.MemorySendChannel[Inbound], trio.MemoryReceiveChannel[Inbound]],
        tracker: trio.MemorySendChannel[TrackerMessage],
        changes: Changes | None = None,
    ) -> None:
        self.machine = machine
        self._monitor = monitor
        self._health = health
        self._tracker = tracker
        self.inbox, self._receive = inbox
        #: The user's changes not taken yet, and the way to hand it one (``put``). Not
        #: eager while handling a change could not send anything before ``_intents_due``
        #: (the spacing holds requests back, or not connected): the actor takes the kept
        #: changes then, or at its next step, whichever comes first.
        self.intents = IntentQueue(self.inbox)
        self._intents_due = -math.inf
        self._connection = 0  # the connection that serves it (ConnectionOpened)
        self._changes = Changes() if changes is None else changes
        #: The actor of a replacement connection (a rotation): it gets every change of
        #: intent this one takes, until it takes over.
        self._successor: ReconcilerActor | None = None
        self._watching: set[str] = set()
        #: Set (and replaced) whenever watching symbols moves the monitor's next deadline.
        self.watch_changed = trio.Event()

    async def run(self) -> None:
        while True:
            deadline = self._deadline()
            if deadline > trio.current_time():
                # One cancel scope for as long as the deadline does not pass, its deadline
                # kept equal to _deadline() after every step: the same as a fresh
                # move_on_at around every receive, at a fraction of the cost.
                with trio.CancelScope(deadline=deadline) as scope:
                    while True:
                        self._step(await self._receive.receive())
                        deadline = self._deadline()
                        if deadline <= trio.current_time():
                            break  # already due: poll before the next receive
                        if deadline != scope.deadline:
                            scope.deadline = deadline
            # The deadline passed: time for poll (and for the changes kept back).
            self._step(None)

    def _deadline(self) -> float:
        """When the actor must act without news: the machine's next deadline, or the
        time from which the changes of intent it keeps back are due."""
        deadline = _at(self.machine.next_deadline())
        return deadline if self.intents.eager else min(deadline, self._intents_due)

    def _step(self, item: Inbound | None) -> None:
        """Handle ``item`` and everything else waiting in the inbox, in one step; ``None``:
        a deadline passed, poll."""
        now = trio.current_time()
        machine = self.machine
        polled = item is None
        events: list[Event] = []
        intents = self.intents
        if not intents.eager and intents.changes:
            # Changes kept back (they are older than anything in the inbox).
            events.append(intents.take())
        if item is not None and (event := self._event(item)) is not None:
            events.append(event)
        # Everything waiting goes in one step: a burst of subscribe calls costs one
        # wake-up and one request, not one scheduler pass per call.
        while len(events) < MAX_EVENTS_PER_STEP:
            try:
                item = self._receive.receive_nowait()
            except trio.WouldBlock:
                break
            if (event := self._event(item)) is not None:
                events.append(event)
        if self._successor is not None:
            self._forward(events, self._successor)
        commands = machine.handle_all(events, now)
        if polled:
            commands += machine.poll(now)
        reset = unwanted = False
        for event in events:
            if isinstance(event, Intents):
                unwanted = unwanted or any(not wanted for _, _, wanted in event.changes)
            elif isinstance(event, Unwant):
                unwanted = True
            elif isinstance(event, ConnectionLost | ConnectionReady):
                reset = True
        if reset:
            self._watching = set()  # the monitor was reset with the connection
        if unwanted:
            self._sync_watch(now)
        self._dispatch(commands, now)
        # Keep the next changes back while handling them could not send anything yet
        # (never with per-symbol staleness: an unwanted symbol stops being watched at once).
        self._intents_due = due = machine.intents_due()
        intents.settle(due <= now or self._monitor.per_symbol)
        self._changes.wake()  # anyone waiting for a state (wait_confirmed)

    @staticmethod
    def _forward(events: Sequence[Event], successor: ReconcilerActor) -> None:
        """The replacement's machine hears every change of intent this one hears."""
        for event in events:
            if isinstance(event, Intents | Want | Unwant):
                successor.inbox.send_nowait(event)

    def forward_to(self, successor: ReconcilerActor) -> None:
        """``successor`` (the actor of a replacement connection, whose machine is this one's
        ``successor()`` now) hears every change of intent this actor takes from now on."""
        self._successor = successor

    def stop_forwarding_to(self, successor: ReconcilerActor) -> None:
        """``successor`` will never take over (its rotation failed): forward nothing more."""
        if self._successor is successor:
            self._successor = None

    def hand_over_to(self, successor: ReconcilerActor) -> None:
        """``successor`` takes over: changes not taken yet go to it, and forwarding stops.

        Synchronous: no change can slip between the two actors.
        """
        self._successor = None
        self.intents.hand_over_to(successor.intents)
        self._changes.wake()

    def _event(self, item: Inbound) -> Event | None:
        """The event ``item`` stands for (None: nothing for the machine)."""
        if isinstance(item, list):
            # The queue's list (the only list this inbox carries): every change until now.
            return self.intents.take()
        if isinstance(item, ConnectionOpened):
            self._connection = item.connection
            return None
        return item

    def _dispatch(self, commands: Sequence[Command], now: float) -> None:
        for command in commands:
            if isinstance(command, SendRequest):
                self._tracker.send_nowait(Subscription(self._connection, command, self.inbox))
            elif isinstance(command, Confirmed):
                self._confirmed(command, now)
            elif isinstance(command, SymbolsRejected):
                self._health.emit(
                    EventName.REJECTED,
                    self._connection,
                    command.reason,
                    stream=command.kind.value,
                    symbols=sorted(command.symbols),
                    code=command.code,
                )
            elif isinstance(command, GhostPersisting):
                self._health.emit(
                    EventName.GHOST,
                    self._connection,
                    "data keeps coming after the venue confirmed the unsubscribe; asking again",
                    stream=command.kind.value,
                    symbol=command.symbol,
                    count=command.count,
                )

    def _sync_watch(self, now: float) -> None:
        """Per-symbol staleness runs for symbols both desired and confirmed, no others."""
        if not self._monitor.per_symbol:
            return  # no symbol clocks to keep: nothing to watch (churn pays nothing here)
        watched = self.machine.desired_and_confirmed()
        new = watched - self._watching
        gone = self._watching - watched
        if new:
            before = self._monitor.next_deadline()
            self._monitor.watch(new, now)
            if self._monitor.next_deadline() != before:
                # The new clocks fall due before the detector's current wake-up time.
                self.watch_changed.set()
                self.watch_changed = trio.Event()
        if gone:
            self._monitor.unwatch(gone)
        self._watching = watched

    def _confirmed(self, command: Confirmed, now: float) -> None:
        self._sync_watch(now)
        self._health.emit(
            EventName.SUBSCRIBED,
            self._connection,
            stream=command.kind.value,
            symbols=sorted(command.symbols),
            count=len(command.symbols),
        )

    def kinds_of(self, symbol: str) -> list[StreamKind]:
        """The kinds in which ``symbol`` is desired and confirmed (for a per-symbol refresh)."""
        return [
            kind
            for kind in self.machine.kinds
            if symbol in self.machine.confirmed(kind) and symbol in self.machine.desired(kind)
        ]


def _at(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline
