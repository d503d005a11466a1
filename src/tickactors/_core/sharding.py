"""Which connection carries which subscription: the shard plan, sans-I/O.

A venue caps the symbols one connection may carry (AllTick by plan: 5, 100, 200 or
3,000 per kind) and the connections one token may open (1, 3 or 10). A feed whose
desired set outgrows one connection spreads it over several; :class:`ShardPlan` says
where each ``(kind, symbol)`` goes.

Rules, in order of importance:

1. **Nothing moves that need not.** A subscription stays on its connection for as
   long as it is desired: moving one means unsubscribing it on one connection and
   subscribing it on another, a gap or a duplicate each time. Only new subscriptions
   are placed, and removed ones free their room.
2. **Fill before opening.** A new subscription goes to the open connection with the
   most room left for its kind (ties: the lowest slot), so the load stays even; a new
   connection opens only when every open one is full for that kind.
3. **All or nothing.** :meth:`ShardPlan.place` either places every new subscription
   or changes nothing and raises :class:`CapacityError` naming the ones that do not
   fit, so a caller never half-applies a change.

Slot 0 always exists (a feed keeps one connection even with nothing subscribed);
other slots close when they carry nothing. Slot numbers are reused lowest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

import attrs

from .._errors import CapacityError
from .._values import StreamKind

Assignment = dict[StreamKind, set[str]]


@attrs.frozen
class Placement:
    """What one call of :meth:`ShardPlan.place` changed.

    ``added``/``removed``: per slot, per kind, the symbols that slot now carries more
    or no longer carries. ``opened``: slots that did not exist before (open a
    connection); ``closed``: slots that carry nothing now (close it; never slot 0).
    """

    added: Mapping[int, Mapping[StreamKind, frozenset[str]]]
    removed: Mapping[int, Mapping[StreamKind, frozenset[str]]]
    opened: tuple[int, ...]
    closed: tuple[int, ...]

    @property
    def moved(self) -> int:
        """Subscriptions that left one slot for another in this change (always 0 here)."""
        gone = {(k, s) for kinds in self.removed.values() for k, ss in kinds.items() for s in ss}
        came = {(k, s) for kinds in self.added.values() for k, ss in kinds.items() for s in ss}
        return len(gone & came)


class ShardPlan:
    """Desired subscriptions spread over at most ``max_connections`` connections.

    ``max_per_connection``: symbols of one kind one connection may carry (None: no cap,
    one connection is enough).
    """

    def __init__(self, max_per_connection: int | None, max_connections: int = 1) -> None:
        if max_per_connection is not None and max_per_connection < 1:
            raise ValueError("max_per_connection is at least 1 (or None for no cap)")
        if max_connections < 1:
            raise ValueError("max_connections is at least 1")
        self.max_per_connection = max_per_connection
        self.max_connections = max_connections
        self._slots: dict[int, Assignment] = {0: {}}
        self._where: dict[tuple[StreamKind, str], int] = {}

    # -- reading ------------------------------------------------------------------------

    @property
    def slots(self) -> tuple[int, ...]:
        return tuple(sorted(self._slots))

    def assignment(self, slot: int) -> dict[StreamKind, frozenset[str]]:
        """The subscriptions ``slot`` carries, per kind (empty kinds left out)."""
        return {kind: frozenset(s) for kind, s in self._slots[slot].items() if s}

    def slot_of(self, kind: StreamKind, symbol: str) -> int | None:
        return self._where.get((kind, symbol))

    def capacity(self) -> int | None:
        """Subscriptions of one kind the whole feed may carry (None: no cap)."""
        if self.max_per_connection is None:
            return None
        return self.max_per_connection * self.max_connections

    # -- changing -----------------------------------------------------------------------

    def place(self, desired: Mapping[StreamKind, AbstractSet[str]]) -> Placement:
        """Make the plan carry exactly ``desired``; see the module docstring for the rules.

        Raises :class:`CapacityError` (and changes nothing) when the new subscriptions do
        not all fit.
        """
        wanted = {(kind, s) for kind, symbols in desired.items() for s in symbols}
        gone = [key for key in self._where if key not in wanted]
        new = [key for key in wanted if key not in self._where]
        return self._apply(gone, new)

    def change(
        self, kind: StreamKind, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> Placement:
        """:meth:`place` for a change of one kind: ``add`` these, ``remove`` those.

        The same rules and the same all-or-nothing :class:`CapacityError`; the cost is
        that of the change, not of everything desired (a feed's ``subscribe`` calls this).
        A symbol in both is removed and placed again (it may land elsewhere).
        """
        where = self._where
        gone = [key for s in remove if (key := (kind, s)) in where]
        dropped = set(gone)
        new = [key for s in add if (key := (kind, s)) not in where or key in dropped]
        return self._apply(gone, new)

    def _apply(
        self, gone: list[tuple[StreamKind, str]], new: list[tuple[StreamKind, str]]
    ) -> Placement:
        new.sort(key=lambda k: (k[0].value, k[1]))
        counts = {
            slot: {k: len(s) for k, s in kinds.items()} for slot, kinds in self._slots.items()
        }
        for kind, symbol in gone:
            counts[self._where[(kind, symbol)]][kind] -= 1
        target = self._targets(new, counts)  # raises before anything changes
        removed: dict[int, dict[StreamKind, set[str]]] = {}
        for kind, symbol in gone:
            slot = self._where.pop((kind, symbol))
            self._slots[slot][kind].discard(symbol)
            removed.setdefault(slot, {}).setdefault(kind, set()).add(symbol)
        opened = tuple(sorted(slot for slot in set(target.values()) if slot not in self._slots))
        added: dict[int, dict[StreamKind, set[str]]] = {}
        for (kind, symbol), slot in target.items():
            self._slots.setdefault(slot, {}).setdefault(kind, set()).add(symbol)
            self._where[(kind, symbol)] = slot
            added.setdefault(slot, {}).setdefault(kind, set()).add(symbol)
        closed = tuple(
            sorted(
                slot for slot, kinds in self._slots.items() if slot != 0 and not any(kinds.values())
            )
        )
        for slot in closed:
            del self._slots[slot]
        return Placement(_frozen(added), _frozen(removed), opened, closed)

    def _targets(
        self, new: Iterable[tuple[StreamKind, str]], counts: dict[int, dict[StreamKind, int]]
    ) -> dict[tuple[StreamKind, str], int]:
        cap = self.max_per_connection
        target: dict[tuple[StreamKind, str], int] = {}
        misfits: list[str] = []
        # Slots emptied by this very change are still open: they are filled first.
        for kind, symbol in new:
            if cap is None:
                target[(kind, symbol)] = 0
                continue
            room = {slot: cap - c.get(kind, 0) for slot, c in counts.items()}
            slot = max(room, key=lambda s: (room[s], -s)) if room else None
            if slot is None or room[slot] <= 0:
                slot = self._free_slot(counts)
                if slot is None:
                    misfits.append(f"{symbol} ({kind})")
                    continue
                counts[slot] = {}
            counts[slot][kind] = counts[slot].get(kind, 0) + 1
            target[(kind, symbol)] = slot
        if misfits:
            assert cap is not None  # without a cap everything fits on slot 0
            raise CapacityError(misfits, per_connection=cap, connections=self.max_connections)
        return target

    def _free_slot(self, counts: Mapping[int, object]) -> int | None:
        if len(counts) >= self.max_connections:
            return None
        return next(n for n in range(self.max_connections) if n not in counts)


def _frozen(
    table: Mapping[int, Mapping[StreamKind, set[str]]],
) -> dict[int, dict[StreamKind, frozenset[str]]]:
    return {slot: {k: frozenset(s) for k, s in kinds.items()} for slot, kinds in table.items()}
