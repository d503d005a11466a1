"""Make-before-break rotation: a slot replaces its connection before the old one goes.

The :class:`Rotator` watches the slot's current connection. When the connection nears
``max_connection_age`` (a jittered due time, ``RotationPolicy.due``), or as soon as the
venue announces a shutdown (``NoticeKind.SHUTDOWN``: the session sets ``shutdown``), it:

1. takes the feed's *spare* (a lock: the token's connection cap leaves room for one
   replacement at a time, so slots rotate one after the other);
2. starts a new shift for the slot (``Slot.begin_shift``: a reconciler whose machine is
   the old one's ``successor()``, which from now on hears every change of intent too)
   and opens a replacement connection for it: it authorizes and subscribes the same
   symbols like any new connection, under the same rate rules;
3. passes both connections' batches through one :class:`Overlap`, so that each tick
   seen on both reaches the user once, and waits until the replacement delivered data
   for every symbol the old one streamed (``Handover``), or its patience ran out, or the
   old connection ended first (event ``handover_incomplete``, naming the symbols that
   never showed and which of the two cut the wait: ``Handover.shortfall``);
4. makes the new shift the slot's (``Slot.adopt``), and only then closes the old
   connection (politely, reason :class:`~tickactors._actors.connector.Rotated`); the overlap
   ends with it (event ``rotated``).

A rotation that cannot complete (no connection to be had, or the replacement died before
it proved itself) changes nothing: the old connection keeps serving, the new shift is
dropped, event ``rotation_failed``, and it is tried again after
``RotationPolicy.retry_after``. If the old connection dies while its replacement is
already open, the replacement takes over at once, without a backoff: that is what a
shutdown notice followed by the venue's close comes to.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import trio

from .._core.overlap import Handover, RotationPolicy
from .connector import Connector, Link, Rotated, describe
from .health_bus import HealthBus
from .overlapping import Overlap

if TYPE_CHECKING:
    from .slot import Shift, Slot
    from .supervisor import Supervisor


class Rotator:
    """Replaces a slot's connection, make-before-break; :attr:`current` is the slot's link."""

    def __init__(
        self,
        current: Link,
        *,
        slot: Slot,
        connector: Connector,
        policy: RotationPolicy,
        spare: trio.Lock | None,
        random: Callable[[], float],
        health: HealthBus,
        supervisor: Supervisor,
    ) -> None:
        self.current = current
        self._slot = slot
        self._connector = connector
        self._policy = policy
        self._spare = spare if spare is not None else trio.Lock()
        self._random = random
        self._health = health
        self._supervisor = supervisor
        self._rotating: trio.Event | None = None

    async def settled(self) -> None:
        """Return once no rotation is under way (at once if none is)."""
        if self._rotating is not None:
            await self._rotating.wait()

    async def run(self, nursery: trio.Nursery) -> None:
        failures = 0
        while True:
            link = self.current
            now = trio.current_time()
            if failures:
                due = now + self._policy.retry_after(failures)
            else:
                due = self._policy.due(link.opened_at, self._random())
            with trio.move_on_at(due):
                await _first(link.session.shutdown, link.done)
            if link.done.is_set():
                await trio.sleep_forever()  # the supervisor takes it from here
            why = "shutdown" if link.session.shutdown.is_set() else "age"
            async with self._turn() as ready:
                if not ready:
                    await trio.sleep_forever()  # the old one died while we waited
                if await self._replace(nursery, link, why):
                    failures = 0
                else:
                    failures += 1
                    self._supervisor.rotation_failures += 1

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[bool]:
        """The spare connection, for this slot's rotation; False if the old link died first."""
        link = self.current
        async with self._spare:
            if link.done.is_set():
                yield False
                return
            self._rotating = rotating = trio.Event()
            try:
                yield True
            finally:
                self._rotating = None
                rotating.set()

    async def _replace(self, nursery: trio.Nursery, old: Link, why: str) -> bool:
        slot, health = self._slot, self._health
        health.emit(
            "rotating",
            old.number,
            f"replacing connection {old.number} ({why})",
            reason=why,
            age=round(trio.current_time() - old.opened_at, 6),
        )
        carried = slot.carried()
        shift = slot.begin_shift()
        overlap = Overlap()
        old.session.overlap = overlap
        opened = await nursery.start(self._connector.run, shift)
        if isinstance(opened, BaseException):
            return self._failed(old, shift, f"no replacement connection: {opened}")
        new = opened
        new.session.overlap = overlap
        handover = Handover(carried, started_at=trio.current_time(), patience=self._policy.patience)
        overlap.prove(new.number, handover)
        with trio.move_on_at(handover.deadline):
            await _first(overlap.proved, new.done, old.done)
        if new.done.is_set():
            return self._failed(old, shift, "the replacement connection ended before it was ready")
        shortfall = handover.shortfall(trio.current_time(), old_closed=old.done.is_set())
        slot.adopt(shift)
        self.current = new
        if shortfall is not None:
            old_end = describe(old.reason) if old.reason is not None else ""
            health.emit(
                "handover_incomplete",
                new.number,
                shortfall.message(old.number, new.number, old_end),
                symbols={kind.value: sorted(s)[:100] for kind, s in shortfall.missing.items()},
                reason=shortfall.cut.value,
                waited=round(shortfall.waited, 6),
            )
        if not old.done.is_set():
            old.end(Rotated(f"replaced by connection {new.number}"))
            await old.done.wait()  # bounded: the close has a deadline of its own
        new.session.overlap = None
        slot.retire(old.shift)
        self._supervisor.rotations += 1
        health.emit(
            "rotated",
            new.number,
            f"connection {new.number} replaced connection {old.number}",
            replaced=old.number,
            reason=why,
            duplicates=overlap.filter.duplicates,
            took=round(trio.current_time() - handover.started_at, 6),
        )
        return True

    def _failed(self, old: Link, shift: Shift, why: str) -> bool:
        old.session.overlap = None
        self._slot.drop_shift(shift)
        self._health.emit("rotation_failed", old.number, why)
        return False


async def _first(*events: trio.Event) -> None:
    """Wait until one of ``events`` is set."""
    if any(event.is_set() for event in events):
        return
    async with trio.open_nursery() as nursery:

        async def wait(event: trio.Event) -> None:
            await event.wait()
            nursery.cancel_scope.cancel()

        for event in events:
            nursery.start_soon(wait, event)
