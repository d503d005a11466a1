"""The feed's connection slots, and the shard plan that spreads the desired symbols over them.

Without limits (no symbol cap per connection given, no connection cap known) a feed has
one slot, whose desired sets are the feed's intent's own, and no plan: every change goes
to slot 0's reconciler on the fast path of ``_feed/intent.py``. With limits (``open_feed``'s
``max_symbols_per_connection`` / ``max_connections``, or a venue preset such as
``AllTick(plan="professional")``), a :class:`~tickactors._core.sharding.ShardPlan` says
which slot carries each subscription: :meth:`Slots.place` applies a change to the plan
first (all or nothing: ``CapacityError`` names the misfits and nothing changes), then
opens the slots it needs, hands each slot its share of the change, and closes slots that
carry nothing any more.

With rotation on (``max_connection_age``), the plan keeps one connection of the token's
cap spare: a replacement must open before the connection it replaces closes, and the
slots take turns with that spare (one rotation at a time per feed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import trio

from .._actors.slot import Slot, SlotKit
from .._core.sharding import ShardPlan
from .._values import StreamKind
from ..venues._dialect import Dialect

#: Added to the venue's token-wide spacing (AllTick 3 s): the venue measures arrival times.
TOKEN_SPACING_MARGIN = 0.25

#: Counters that add up over slots in the feed's ``statistics()["connection"]``.
_SUMMED = (
    "connects",
    "disconnects",
    "rotations",
    "rotation_failures",
    "frames_received",
    "frames_sent",
    "ticks_delivered",
    "ghost_ticks",
    "decode_errors",
)


def request_spacing(dialect: Dialect) -> float:
    """Seconds between two subscription requests, so that they and the heartbeats together
    stay inside the venue's outbound budget (AllTick, heartbeat every 10 s: 1.17 s;
    Tradovate: 0.104 s). Spaced any closer, requests queue behind the budget until they
    miss their deadlines while the venue is still answering."""
    slot = dialect.budget_per / dialect.budget_frames + dialect.budget_margin
    return 1.0 / (1.0 / slot - 1.0 / dialect.heartbeat_interval)


def shard_plan(
    dialect: Dialect,
    *,
    max_symbols_per_connection: int | None,
    max_connections: int | None,
    rotating: bool,
) -> ShardPlan | None:
    """The plan for these limits, or None for a feed of one slot without a plan.

    Raises ``ValueError`` for limits that cannot work, rotation without a spare included.
    """
    cap = dialect.max_connections if max_connections is None else max_connections
    if max_connections is not None and max_connections < 1:
        raise ValueError("max_connections is at least 1")
    if max_symbols_per_connection is not None and max_symbols_per_connection < 1:
        raise ValueError("max_symbols_per_connection is at least 1")
    if rotating and cap is not None and cap < 2:
        raise ValueError(
            f"max_connection_age needs a spare connection: a replacement opens before the "
            f"connection it replaces closes, and {dialect.name} allows {cap} connection(s) "
            f"per token here (an AllTick premium or professional plan allows 3 or 10)"
        )
    if max_symbols_per_connection is None and cap is None:
        return None
    per = dialect.max_symbols if max_symbols_per_connection is None else max_symbols_per_connection
    usable = 1 if cap is None else cap - 1 if rotating else cap
    return ShardPlan(per, usable)


class Slots:
    """Every slot of a feed by number, and the plan (None: one slot, no plan)."""

    def __init__(
        self,
        kit: SlotKit,
        plan: ShardPlan | None,
        wanted: dict[StreamKind, set[str]],
        adopted: Callable[[Slot], None],
    ) -> None:
        self.kit = kit
        self.plan = plan
        self._adopted = adopted
        first = Slot(0, kit, wanted=wanted if plan is None else None, adopted=adopted)
        self.by_number: dict[int, Slot] = {0: first}
        self._nursery: trio.Nursery | None = None
        self.opened = 1
        self.closed = 0

    @property
    def first(self) -> Slot:
        return self.by_number[0]

    def __iter__(self) -> Iterator[Slot]:
        return iter([self.by_number[n] for n in sorted(self.by_number)])

    def start(self, nursery: trio.Nursery) -> None:
        """Run every slot in ``nursery`` (and those opened later)."""
        self._nursery = nursery
        for slot in self:
            nursery.start_soon(slot.run)

    def place(self, kind: StreamKind, symbols: frozenset[str], wanted: bool) -> None:
        """Apply a change of intent to the plan and hand each slot its share.

        Raises ``CapacityError`` (nothing changed) when new subscriptions do not fit.
        """
        assert self.plan is not None
        if wanted:
            placement = self.plan.change(kind, add=symbols)
        else:
            placement = self.plan.change(kind, remove=symbols)
        for number in placement.opened:
            self._open(number)
        for number, kinds in (placement.added if wanted else placement.removed).items():
            slot = self.by_number[number]
            for change_kind, share in kinds.items():
                slot.intend((change_kind, tuple(share), wanted))
        for number in placement.closed:
            self.closed += 1
            self.by_number.pop(number).close()

    def _open(self, number: int) -> None:
        slot = Slot(number, self.kit, adopted=self._adopted)
        self.by_number[number] = slot
        self.opened += 1
        if self._nursery is not None:
            self._nursery.start_soon(slot.run)

    # -- the feed's view over every slot -------------------------------------------------

    def confirmed(self, kind: StreamKind) -> frozenset[str]:
        if len(self.by_number) == 1:
            return self.first.actor.machine.confirmed(kind)
        return frozenset().union(*(slot.actor.machine.confirmed(kind) for slot in self))

    def rejected(self, kind: StreamKind) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for slot in self:
            out.update(slot.actor.machine.rejected(kind))
        return out

    async def wait_changed(self) -> None:
        """Wait until the next step (or poll) of any slot's reconciler is over."""
        await self.kit.changes.wait()

    def is_converged(self) -> bool:
        for slot in self.by_number.values():
            machine = slot.actor.machine
            if not machine.is_converged():
                return False
            if any(machine.desired(kind) != wanted for kind, wanted in slot.wanted.items()):
                return False
        return True

    def statistics(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The feed's ``connection`` entry (slot 0's, counters and reconnects summed over
        slots) and one entry per slot."""
        per_slot = [slot.statistics() for slot in self]
        total = dict(self.first.supervisor.statistics())
        if len(per_slot) > 1:
            for key in _SUMMED:
                total[key] = sum(cast(int, entry[key]) for entry in per_slot)
            reconnects = [cast(dict[str, int], entry["reconnects"]) for entry in per_slot]
            total["reconnects"] = {
                cause: sum(r[cause] for r in reconnects) for cause in reconnects[0]
            }
        return total, per_slot
