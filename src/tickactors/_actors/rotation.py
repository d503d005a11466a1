"""Make-before-break rotation: a slot replaces its connection before the old one goes.

The :class:`Rotator` carries the slot's connections for its supervisor
(:meth:`Rotator.carry`: the first one, and each that replaces it) and watches the current
one. When it nears ``max_connection_age`` (a jittered due time, ``RotationPolicy.due``),
or as soon as the venue announces a shutdown (``NoticeKind.SHUTDOWN``: the session sets
``shutdown``), the rotator:

1. takes the feed's *spare* (a lock: the token's connection cap leaves room for one
   replacement at a time, so slots rotate one after the other);
2. asks the slot for a new shift (``begin_shift``: a reconciler whose machine is the old
   one's ``successor()``, which from now on hears every change of intent too)
   and opens a replacement connection for it: it authorizes and subscribes the same
   symbols like any new connection, under the same rate rules;
3. passes both connections' batches through one :class:`Overlap`, so that each tick
   seen on both reaches the user once, and waits until the replacement delivered data
   for every symbol the old one streamed (``Handover``), or its patience ran out, or the
   old connection ended first (event ``handover_incomplete``, naming the symbols that
   never showed and which of the two cut the wait: ``Handover.shortfall``);
4. makes the new shift the slot's (``adopt``), and only then closes the old
   connection (politely, reason :class:`~tickactors._actors.connector.Rotated`); the overlap
   ends with it (event ``rotated``).

A rotation that cannot complete (no connection to be had, or the replacement died before
it proved itself) changes nothing: the old connection keeps serving, the new shift is
dropped, event ``rotation_failed``, and it is tried again after
``RotationPolicy.retry_after``. If the old connection dies while its replacement is
already open, the replacement takes over at once, without a backoff: that is what a
shutdown notice followed by the venue's close comes to.

The rotator talks to its slot through :class:`Shifts`, a small interface the slot
implements (this module imports nothing of the slot's), and keeps its own counters
(:meth:`Rotator.statistics`, and ``rotations_by_reason``, which the supervisor counts
among the slot's reconnects).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import trio

from .._core.overlap import Handover, RotationPolicy
from .._values import EventName, StreamKind
from .connector import Connector, Link, Rotated, describe
from .health_bus import HealthBus
from .overlapping import Overlap
from .shift import Shift


class Shifts(Protocol):
    """What the supervisor and the rotator ask of the slot whose connections they run
    (``Slot`` is one): its shift now, what that shift's connection streams, and a shift
    for a replacement connection, to begin, then adopt and retire the old one, or drop."""

    @property
    def shift(self) -> Shift:
        """The shift a new connection of the slot serves."""
        ...

    def carried(self) -> dict[StreamKind, frozenset[str]]:
        """What the current connection streams: desired and confirmed, per kind (once it
        is gone, what it streamed when it went)."""
        ...

    def begin_shift(self) -> Shift:
        """A shift for a replacement connection; its reconciler hears every change of
        intent from now on."""
        ...

    def adopt(self, shift: Shift) -> None:
        """``shift`` becomes the slot's (changes of intent go to it from now on)."""
        ...

    def retire(self, shift: Shift) -> None:
        """``shift``'s connection is gone and none will serve it again."""
        ...

    def drop_shift(self, shift: Shift) -> None:
        """``shift`` was begun for a rotation that failed: forget it."""
        ...


class Rotator:
    """Carries a slot's connections, make-before-break; :attr:`current` is the slot's link."""

    def __init__(
        self,
        *,
        shifts: Shifts,
        connector: Connector,
        policy: RotationPolicy,
        spare: trio.Lock | None,
        random: Callable[[], float],
        health: HealthBus,
    ) -> None:
        self._shifts = shifts
        self._connector = connector
        self._policy = policy
        self._spare = spare if spare is not None else trio.Lock()
        self._random = random
        self._health = health
        #: The slot's connection now (the last one, between two; None before the first).
        self.current: Link | None = None
        self._rotating: trio.Event | None = None
        self._rotations = 0
        self._failures = 0
        #: Completed rotations by reason (``age``, ``shutdown``).
        self.rotations_by_reason: dict[str, int] = {}

    async def carry(self, first: Link) -> Link:
        """Serve ``first`` and every connection that replaces it by rotation, until one ends
        that no replacement took over from; return that one."""
        self.current = link = first
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._rotate, nursery)
            while True:
                link = self.current
                await link.done.wait()
                await self._settled()  # a rotation under way may take over
                if self.current is link:
                    break
            nursery.cancel_scope.cancel()
        return link

    async def _settled(self) -> None:
        """Return once no rotation is under way (at once if none is)."""
        if self._rotating is not None:
            await self._rotating.wait()

    async def _rotate(self, nursery: trio.Nursery) -> None:
        """Replace the current connection whenever it is due (age, or a shutdown notice)."""
        failures = 0
        while True:
            link = self.current
            assert link is not None
            now = trio.current_time()
            if failures:
                due = now + self._policy.retry_after(failures)
            else:
                due = self._policy.due(link.opened_at, self._random())
            with trio.move_on_at(due):
                await _first(link.session.shutdown, link.done)
            if link.done.is_set():
                await trio.sleep_forever()  # carry() takes it from here
            why = "shutdown" if link.session.shutdown.is_set() else "age"
            async with self._turn(link) as ready:
                if not ready:
                    await trio.sleep_forever()  # the old one died while we waited
                if await self._replace(nursery, link, why):
                    failures = 0
                else:
                    failures += 1
                    self._failures += 1

    @contextlib.asynccontextmanager
    async def _turn(self, link: Link) -> AsyncIterator[bool]:
        """The spare connection, for this slot's rotation; False if ``link`` died first."""
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
        shifts, health = self._shifts, self._health
        health.emit(
            EventName.ROTATING,
            old.number,
            f"replacing connection {old.number} ({why})",
            reason=why,
            age=round(trio.current_time() - old.opened_at, 6),
        )
        carried = shifts.carried()
        shift = shifts.begin_shift()
        overlap = Overlap()
        old.session.overlap_with(overlap)
        opened = await nursery.start(self._connector.run, shift)
        if isinstance(opened, BaseException):
            return self._failed(old, shift, f"no replacement connection: {opened}")
        new = opened
        new.session.overlap_with(overlap)
        handover = Handover(carried, started_at=trio.current_time(), patience=self._policy.patience)
        overlap.prove(new.number, handover)
        with trio.move_on_at(handover.deadline):
            await _first(overlap.proved, new.done, old.done)
        if new.done.is_set():
            return self._failed(old, shift, "the replacement connection ended before it was ready")
        shortfall = handover.shortfall(trio.current_time(), old_closed=old.done.is_set())
        shifts.adopt(shift)
        self.current = new
        if shortfall is not None:
            old_end = describe(old.reason) if old.reason is not None else ""
            health.emit(
                EventName.HANDOVER_INCOMPLETE,
                new.number,
                shortfall.message(old.number, new.number, old_end),
                symbols={kind.value: sorted(s)[:100] for kind, s in shortfall.missing.items()},
                reason=shortfall.cut.value,
                waited=round(shortfall.waited, 6),
            )
        if not old.done.is_set():
            old.end(Rotated(f"replaced by connection {new.number}"))
            await old.done.wait()  # bounded: the close has a deadline of its own
        new.session.overlap_with(None)
        shifts.retire(old.shift)
        self._rotations += 1
        self.rotations_by_reason[why] = self.rotations_by_reason.get(why, 0) + 1
        health.emit(
            EventName.ROTATED,
            new.number,
            f"connection {new.number} replaced connection {old.number}",
            replaced=old.number,
            reason=why,
            duplicates=overlap.filter.duplicates,
            took=round(trio.current_time() - handover.started_at, 6),
        )
        return True

    def _failed(self, old: Link, shift: Shift, why: str) -> bool:
        old.session.overlap_with(None)
        self._shifts.drop_shift(shift)
        self._health.emit(EventName.ROTATION_FAILED, old.number, why)
        return False

    def statistics(self) -> dict[str, int]:
        """``rotations`` completed and ``rotation_failures``, over the slot's life."""
        return {"rotations": self._rotations, "rotation_failures": self._failures}


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
