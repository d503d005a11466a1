"""A connection slot: the subscriptions the shard plan gives it, carried by one connection.

A feed has one slot per connection it needs (slot 0 always; more when a venue caps the
symbols per connection, see ``_core/sharding.py``). Each slot has everything a single
connection used to have, its own: desired sets (``wanted``, read by its readers' ghost
filter), reconciler, staleness monitor, backoff, counters, supervisor. So a slot that
fails, reconnects or rotates disturbs no other. What the slots share is the feed's:
the token refresher, the request tracker, the market queue, the health bus, the
connection numbers, the token's spacing gate and its spare connection (:class:`SlotKit`).

A slot's reconciler actor and staleness monitor form a
:class:`~tickactors._actors.shift.Shift`: they serve the slot's connection and every
connection that replaces it after a failure (a reconnect resends everything desired, as
ever). A make-before-break rotation starts a new shift for the replacement connection
(:meth:`Slot.begin_shift`), which becomes the slot's when the replacement proved itself
(:meth:`Slot.adopt`); the old one is retired with its connection (:meth:`Slot.retire`).

The slot builds its parts and owns them; they do not know it. Its supervisor and the
supervisor's rotator see it through ``rotation.Shifts``, the small interface it
implements; its reconcilers take changes of intent through their
``IntentQueue`` (:meth:`Slot.intend`); a shift's actors hear of their connections in
messages. Whoever hands changes of intent to the slot's current reconciler directly
(the feed's intent, for a feed of one slot) is told when a rotation replaced it
(``adopted``).
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable, Iterator

import attrs
import trio

from .._core.backoff import Backoff
from .._core.connect_failures import DEFAULT_GIVE_UP_AFTER
from .._core.overlap import RotationPolicy
from .._core.reconciler import IntentChange, Reconciler
from .._core.spacing import SpacingGate
from .._core.staleness import StalenessMonitor
from .._net.transport import TransportFactory
from .._values import StreamKind
from ..venues._dialect import Dialect
from .account import AccountSync
from .connector import Connector
from .hand_off import MarketHandOff
from .health_bus import HealthBus
from .messages import TrackerMessage
from .reconciling import Changes, Inbound, IntentQueue, ReconcilerActor
from .shift import Shift
from .supervisor import Supervisor
from .token_refresher import TokenRefresher


@attrs.frozen(eq=False)
class SlotKit:
    """What every slot of a feed is built from, and the parts the slots share."""

    dialect: Dialect
    transport_factory: TransportFactory
    ssl_context: ssl.SSLContext | None
    connect_timeout: float
    numbers: Iterator[int]
    market: MarketHandOff
    tracker: trio.MemorySendChannel[TrackerMessage]
    tokens: TokenRefresher
    health: HealthBus
    changes: Changes
    gate: SpacingGate | None
    spare: trio.Lock
    rotation: RotationPolicy
    random: Callable[[], float]
    request_spacing: float
    max_symbols: int | None
    stale_after: float
    #: The deadline of every request, and of the venue's open frame before ``authorize``.
    request_timeout: float
    symbol_stale_after: float | None
    #: How far behind its own best a connection's data may fall before ``lagging``; None: off.
    lag_after: float | None
    backoff_base: float
    backoff_cap: float
    healthy_after: float
    #: consecutive connect failures that will not heal before the feed ends (None: never)
    give_up_after: int | None = DEFAULT_GIVE_UP_AFTER
    #: The feed's user sync (trading sockets): carried by slot 0's connections alone.
    account: AccountSync | None = None


def new_shift(kit: SlotKit, machine: Reconciler) -> Shift:
    """A shift for ``machine``: a reconciler actor and a staleness monitor of its own."""
    monitor = StalenessMonitor(
        stale_after=kit.stale_after, symbol_stale_after=kit.symbol_stale_after
    )
    inbox = trio.open_memory_channel[Inbound](math.inf)
    actor = ReconcilerActor(machine, monitor, kit.health, inbox, kit.tracker, kit.changes)
    return Shift(actor, monitor)


class Slot:
    """One connection slot of a feed (see the module docstring)."""

    def __init__(
        self,
        number: int,
        kit: SlotKit,
        *,
        wanted: dict[StreamKind, set[str]] | None = None,
        adopted: Callable[[Slot], None] | None = None,
    ) -> None:
        dialect = kit.dialect
        self.number = number
        self._kit = kit
        #: What this slot's connection should carry, per kind (for a feed of one slot, the
        #: feed's intent's sets, which only the intent changes; else the slot's own, which
        #: only :meth:`intend` changes): its readers let through these symbols' data, no other.
        self.wanted = {kind: set() for kind in dialect.kinds} if wanted is None else wanted
        self._adopted = adopted
        machine = Reconciler(
            dialect.semantics,
            dialect.kinds,
            request_spacing=kit.request_spacing,
            max_symbols=kit.max_symbols,
            gate=kit.gate,
        )
        self.shift = new_shift(kit, machine)
        self.connector = Connector(
            dialect=dialect,
            transport_factory=kit.transport_factory,
            ssl_context=kit.ssl_context,
            connect_timeout=kit.connect_timeout,
            request_timeout=kit.request_timeout,
            numbers=kit.numbers,
            wanted=self.wanted,
            market=kit.market,
            backoff=Backoff(
                base=kit.backoff_base,
                cap=kit.backoff_cap,
                floor=dialect.reconnect_floor,
                healthy_after=kit.healthy_after,
                random=kit.random,
            ),
            tracker=kit.tracker,
            tokens=kit.tokens,
            health=kit.health,
            gate=kit.gate,
            account=kit.account if number == 0 else None,
            lag_after=kit.lag_after,
        )
        self.supervisor = Supervisor(
            shifts=self,
            connector=self.connector,
            tokens=kit.tokens,
            health=kit.health,
            rotation=kit.rotation,
            spare=kit.spare,
            random=kit.random,
            give_up_after=kit.give_up_after,
        )
        self.scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None

    @property
    def actor(self) -> ReconcilerActor:
        """The reconciler actor that takes this slot's changes of intent now."""
        return self.shift.actor

    @property
    def intents(self) -> IntentQueue:
        """Where this slot's changes of intent go now (its current reconciler's queue)."""
        return self.shift.actor.intents

    def intend(self, change: IntentChange) -> None:
        """Carry ``change`` (its share of a change under the shard plan): the slot's own
        desired sets follow it, and its reconciler gets it (a burst costs one wake-up).

        Only for a slot with sets of its own: a feed of one slot shares the feed's intent's
        sets with slot 0, and its intent hands changes to slot 0's reconciler itself.
        """
        kind, symbols, wanted = change
        if wanted:
            self.wanted[kind].update(symbols)
        else:
            self.wanted[kind].difference_update(symbols)
        self.shift.actor.intents.put(change)

    async def run(self) -> None:
        """Run the slot (its shifts' actors and its supervisor) until :meth:`close`."""
        with self.scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.shift.run)
                await self.supervisor.run()

    def close(self) -> None:
        """The slot carries nothing any more: end it (its connection closes politely)."""
        self.scope.cancel()

    # -- rotation ------------------------------------------------------------------------

    def carried(self) -> dict[StreamKind, frozenset[str]]:
        """What the current connection streams: desired and confirmed, per kind (once it
        is gone, what it streamed when it went: ``Shift.carried``)."""
        return self.shift.carried()

    def begin_shift(self) -> Shift:
        """A shift for a replacement connection: the successor of the current machine,
        told every change of intent from now on; its actor runs at once."""
        assert self._nursery is not None
        old = self.shift
        shift = new_shift(self._kit, old.actor.machine.successor())
        self._nursery.start_soon(shift.run)
        old.actor.forward_to(shift.actor)
        return shift

    def adopt(self, shift: Shift) -> None:
        """``shift`` (begun by :meth:`begin_shift`) becomes the slot's: changes of intent go
        to it from now on, those not taken yet included."""
        old = self.shift
        old.actor.hand_over_to(shift.actor)
        self.shift = shift
        if self._adopted is not None:
            self._adopted(self)

    def retire(self, shift: Shift) -> None:
        """A shift whose connection is gone: its actor stops."""
        shift.retire()

    def drop_shift(self, shift: Shift) -> None:
        """A shift begun for a rotation that failed: forget it."""
        self.shift.actor.stop_forwarding_to(shift.actor)
        shift.retire()

    def statistics(self) -> dict[str, object]:
        machine = self.shift.actor.machine
        stats = self.supervisor.statistics()
        return {
            "slot": self.number,
            **stats,
            "desired": {k.value: len(v) for k, v in self.wanted.items()},
            "confirmed": {k.value: len(machine.confirmed(k)) for k in machine.kinds},
            "reconciler": machine.statistics(),
            "staleness": attrs.asdict(self.shift.monitor.statistics()),
        }
