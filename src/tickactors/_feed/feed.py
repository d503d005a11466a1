"""``open_feed``: the public face of the actor runtime.

A :class:`Feed` owns one nursery in which every actor of the feed runs: the
token refresher, the request tracker, and per connection slot (``_feed/slot_table.py``,
``_actors/slot.py``) a reconciler and a supervisor (which runs each
connection's reader, writer, heartbeat sender and staleness detector, and
replaces the connection before it grows too old). Nothing outlives the
``async with``.

The user's side is synchronous where it cannot block (``subscribe``,
``unsubscribe``, ``statistics``) and async where it waits (``ticks``,
``batches``, ``events``, ``wait_confirmed``). Errors reach the user as one
``tickactors.FeedError`` (or the user's own exception), never as a raw
``ExceptionGroup``.
"""

from __future__ import annotations

import math
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from .._actors.health_bus import HealthBus
from .._actors.messages import TrackerMessage, UserRequest
from .._actors.queues import MarketQueue
from .._actors.reconciling import Changes, ReconcilerActor
from .._actors.slot import SlotKit
from .._actors.supervisor import Supervisor, connection_numbers
from .._actors.token_refresher import TokenRefresher
from .._actors.tracker import RequestTracker
from .._core.lanes import Policy, parse_policies
from .._core.overlap import RotationPolicy
from .._core.reconciler import Reconciler
from .._core.requests import Outcome, Resolution
from .._core.spacing import SpacingGate
from .._core.staleness import StalenessMonitor
from .._errors import (
    ConnectionLostError,
    FeedClosedError,
    RequestTimeoutError,
    VenueRejectedError,
)
from .._net.batched import connect_batched
from .._net.transport import TransportFactory
from .._values import HealthEvent, MarketData, StreamKind
from ..venues import Answer, AnswerKind, Venue
from .intent import FeedIntent
from .iterators import BatchIterator, ItemIterator
from .slot_table import TOKEN_SPACING_MARGIN, Slots, shard_plan
from .slot_table import request_spacing as request_spacing
from .unwrap import running


class Feed:
    """A live market-data feed. Create it with :func:`open_feed`.

    What the user wants streamed is its :class:`FeedIntent`'s (``_feed/intent.py``):
    ``subscribe`` and ``unsubscribe`` are the intent's own methods, ``desired``,
    ``confirmed``, ``rejected``, ``wait_confirmed``, ``is_converged`` and
    ``wait_converged`` hand the call to it.
    """

    def __init__(
        self,
        venue: Venue,
        *,
        stale_after: float | None,
        symbol_stale_after: float | None,
        connect_timeout: float,
        request_timeout: float | None,
        buffer: int,
        policies: Mapping[StreamKind, Policy],
        backoff_base: float,
        backoff_cap: float,
        healthy_after: float,
        ssl_context: ssl.SSLContext | None,
        transport_factory: TransportFactory,
        rng: random.Random,
        max_symbols_per_connection: int | None = None,
        max_connections: int | None = None,
        rotation: RotationPolicy | None = None,
    ) -> None:
        dialect = venue.dialect
        rotation = RotationPolicy(None) if rotation is None else rotation
        plan = shard_plan(
            dialect,
            max_symbols_per_connection=max_symbols_per_connection,
            max_connections=max_connections,
            rotating=rotation.max_age is not None,
        )
        self.venue = venue
        self.dialect = dialect
        self.health = HealthBus()
        self._market = MarketQueue(buffer, policies)
        self._intent = intent = FeedIntent(dialect, sharded=plan is not None)
        self._wanted = intent.wanted  # the intent's desired sets, read here, never changed
        # The user's hot path: the intent's own bound methods, no call of the feed's between.
        self.subscribe = intent.subscribe
        self.unsubscribe = intent.unsubscribe
        self._closed = False
        self.tokens = TokenRefresher(venue.token_source, self.health, rng=rng)
        to_tracker, tracker_inbox = trio.open_memory_channel[TrackerMessage](math.inf)
        spacing = dialect.token_spacing
        kit = SlotKit(
            dialect=dialect,
            transport_factory=transport_factory,
            ssl_context=ssl_context,
            connect_timeout=connect_timeout,
            numbers=connection_numbers(),
            market=self._market,
            tracker=to_tracker,
            tokens=self.tokens,
            health=self.health,
            changes=Changes(),
            gate=None if spacing is None else SpacingGate(spacing + TOKEN_SPACING_MARGIN),
            spare=trio.Lock(),
            rotation=rotation,
            random=rng.random,
            request_spacing=request_spacing(dialect),
            max_symbols=dialect.max_symbols if plan is None else plan.max_per_connection,
            stale_after=dialect.stale_after if stale_after is None else stale_after,
            symbol_stale_after=symbol_stale_after,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            healthy_after=healthy_after,
        )
        self.slots = Slots(kit, plan, intent.wanted, intent.adopted)
        intent.hand_to(self.slots)
        self.tracker = RequestTracker(
            dialect,
            self.health,
            (to_tracker, tracker_inbox),
            request_timeout=dialect.request_timeout if request_timeout is None else request_timeout,
        )

    @property
    def reconciler(self) -> ReconcilerActor:
        """Slot 0's reconciler actor now (the only one unless the feed is sharded)."""
        return self.slots.first.actor

    @property
    def reconciler_machine(self) -> Reconciler:
        """Slot 0's reconciler machine (the only one unless the feed is sharded)."""
        return self.reconciler.machine

    @property
    def supervisor(self) -> Supervisor:
        """Slot 0's supervisor (the only one unless the feed is sharded)."""
        return self.slots.first.supervisor

    @property
    def monitor(self) -> StalenessMonitor:
        """Slot 0's staleness monitor now."""
        return self.slots.first.shift.monitor

    # -- intent ------------------------------------------------------------------------

    def desired(self, kind: StreamKind | None = None) -> frozenset[str]:
        """The symbols of ``kind`` (default: the venue's main stream) you want now."""
        return self._intent.desired(kind)

    def confirmed(self, kind: StreamKind | None = None) -> frozenset[str]:
        """The symbols of ``kind`` the venue confirmed (on every connection)."""
        return self._intent.confirmed(kind)

    def rejected(self, kind: StreamKind | None = None) -> dict[str, tuple[int, str]]:
        """The symbols of ``kind`` the venue refused: symbol -> (code, reason)."""
        return self._intent.rejected(kind)

    async def wait_confirmed(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Wait until the venue confirmed every one of ``symbols`` (all desired ones if none).

        Raises ``VenueRejectedError`` if the venue rejected one of them. Put it under
        ``trio.fail_after`` for a deadline.
        """
        await self._intent.wait_confirmed(*symbols, kind=kind)

    def is_converged(self) -> bool:
        """True when the venue confirmed every desired symbol (minus rejected ones) and nothing
        undesired is still subscribed, as far as the feed knows (on every connection)."""
        return self._intent.is_converged()

    async def wait_converged(self) -> None:
        """Wait until the venue streams exactly what is desired (minus rejected symbols)."""
        await self._intent.wait_converged()

    async def request(self, endpoint: str, query: str = "", body: Any = None) -> Any:
        """Send a request of your own (Tradovate: ``contract/find``, ``user/syncrequest``, ...).

        Returns the venue's answer payload. It goes on the current authorized connection,
        under the feed's request deadline, and waits out penalty tickets like every request.
        Raises ``RequestTimeoutError`` (no answer in time), ``ConnectionLostError`` (no
        connection, or it was lost meanwhile), ``VenueRejectedError`` (an error answer),
        ``CaptchaRequiredError``.
        """
        if self._closed:
            raise FeedClosedError("the feed is closed")
        reply_in, reply_out = trio.open_memory_channel[Resolution[Any]](1)
        self.tracker.inbox.send_nowait(UserRequest(endpoint, query, body, reply_in))
        async with reply_out:
            resolution = await reply_out.receive()
        if resolution.outcome is Outcome.TIMED_OUT:
            raise RequestTimeoutError(f"no answer to {endpoint} in time")
        if resolution.outcome is not Outcome.ANSWERED:
            raise ConnectionLostError(f"{endpoint}: no connection carried it to an answer")
        answer = resolution.answer
        assert isinstance(answer, Answer)
        if answer.kind is not AnswerKind.OK:
            raise VenueRejectedError(answer.code, answer.message, request=endpoint)
        return answer.data

    # -- data --------------------------------------------------------------------------

    async def get_batch(self) -> list[MarketData]:
        """Every tick waiting (at least one): the fast way to consume a feed."""
        intent = self._intent
        while True:
            batch = await self._market.get_batch()
            if intent.filter_again:
                # An unsubscribe happened since these were queued: a tick of a symbol
                # no longer wanted never reaches the user.
                batch = intent.refilter(batch, drained=not self._market)
                if not batch:
                    continue
            return batch

    def batches(self) -> AsyncIterator[list[MarketData]]:
        """``async for batch in feed.batches()``: lists of ticks, as they arrive."""
        return BatchIterator(self.get_batch)

    def ticks(self) -> AsyncIterator[MarketData]:
        """``async for tick in feed.ticks()``: ticks of desired symbols only."""
        return ItemIterator(self.get_batch)

    def events(self) -> AsyncIterator[HealthEvent]:
        """``async for event in feed.events()``: connected, stale, reconnecting, subscribed, ..."""
        return ItemIterator(self.health.queue.get_batch)

    def statistics(self) -> dict[str, Any]:
        """Counters of every actor; JSON-friendly; never a secret."""
        connection, slots = self.slots.statistics()
        gate = self.slots.kit.gate
        return {
            "venue": self.dialect.name,
            "url": self.dialect.display_url(),
            "desired": {k.value: len(v) for k, v in self._wanted.items()},
            "confirmed": {k.value: len(self.slots.confirmed(k)) for k in self._wanted},
            "connection": connection,
            "slots": slots,
            "gate": None if gate is None else attrs.asdict(gate.statistics()),
            "reconciler": self.reconciler_machine.statistics(),
            "requests": self.tracker.statistics(),
            "staleness": attrs.asdict(self.monitor.statistics()),
            "tokens": attrs.asdict(self.tokens.schedule.statistics()),
            "queue": self._market.statistics(),
            "events": dict(self.health.counts),
        }

    # -- life --------------------------------------------------------------------------

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.tracker.run)
            # Not awaited: a token source that keeps failing must not keep open_feed
            # from returning; the supervisors wait for the first token, and the user
            # sees token_failed events meanwhile.
            nursery.start_soon(self.tokens.run)
            self.slots.start(nursery)
            task_status.started()

    def _close(self) -> None:
        self._closed = True
        self._intent.close()
        self._market.close()
        self.health.close()


@asynccontextmanager
async def open_feed(
    venue: Venue,
    *,
    stale_after: float | None = None,
    symbol_stale_after: float | None = None,
    connect_timeout: float = 10.0,
    request_timeout: float | None = None,
    buffer: int = 100_000,
    policies: Mapping[StreamKind, Policy | str] | str | None = None,
    backoff_base: float = 1.0,
    backoff_cap: float = 60.0,
    healthy_after: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    transport_factory: TransportFactory = connect_batched,
    seed: int | None = None,
    max_symbols_per_connection: int | None = None,
    max_connections: int | None = None,
    max_connection_age: float | None = None,
    rotation_jitter: float = 0.1,
    rotation_patience: float = 30.0,
) -> AsyncIterator[Feed]:
    """Open a feed to ``venue``; every actor runs until the ``async with`` ends.

    ``stale_after``: seconds without any inbound message before a connection is
    declared dead (default: the venue's, AllTick 30 s). ``symbol_stale_after``: seconds
    a confirmed symbol may stay silent before it is re-subscribed (off by default,
    see docs/architecture.md). ``buffer``: items of one stream kind waiting for the user
    before that kind's policy acts. ``policies``: what each stream kind does for a slow
    consumer (``_core/lanes.py``): ``block`` (backpressure; the default for trades),
    ``conflate`` (the latest per symbol; the default for books and quotes) or
    ``drop-oldest``, as ``{TRADES: "drop-oldest"}`` or ``"trades=drop-oldest"``; every
    drop is counted and announced in a ``gap`` event with the symbols and counts.
    ``seed``: makes backoff jitter repeatable.
    ``transport_factory``: how to open a WebSocket; the default reads the socket in
    large chunks and hands every frame in them over at once (``connect_batched``);
    ``tickactors.connect_websocket`` uses trio-websocket instead.

    Several connections (docs/architecture.md, "Slots"): ``max_symbols_per_connection``
    (default: the venue's, ``AllTick(plan=...)``) and ``max_connections`` (connections the
    token may hold, default: the venue's plan's) spread the desired symbols over as many
    connections as needed, moving none that need not move; ``subscribe`` raises
    ``CapacityError`` for symbols beyond the total, changing nothing. Without either
    limit, a feed keeps one connection. ``max_connection_age``: no connection grows older;
    a replacement opens, subscribes the same symbols and proves itself with data for each
    (at most ``rotation_patience`` seconds) before the old one closes, ticks seen on both
    delivered once. It starts at a random moment (``rotation_jitter``: up to 10 % early)
    before ``max_connection_age - connect_timeout - rotation_patience``. A venue's shutdown
    notice starts the same rotation at once. Rotation needs one connection spare under the
    token's cap: the plan leaves it, and refuses (``ValueError``) a cap of one.
    """
    feed = Feed(
        venue,
        stale_after=stale_after,
        symbol_stale_after=symbol_stale_after,
        connect_timeout=connect_timeout,
        request_timeout=request_timeout,
        buffer=buffer,
        policies=_policies(policies),
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        healthy_after=healthy_after,
        ssl_context=ssl_context,
        transport_factory=transport_factory,
        rng=random.Random(seed),
        max_symbols_per_connection=max_symbols_per_connection,
        max_connections=max_connections,
        rotation=RotationPolicy(
            max_connection_age,
            jitter=rotation_jitter,
            patience=rotation_patience,
            connect_timeout=connect_timeout,
        ),
    )
    try:
        async with running(started=feed._run, stop=feed._close):
            yield feed
    finally:
        feed._close()


def _policies(given: Mapping[StreamKind, Policy | str] | str | None) -> dict[StreamKind, Policy]:
    """``open_feed``'s ``policies`` as a full mapping; ValueError says what is wrong."""
    if given is None:
        return parse_policies("")
    if isinstance(given, str):
        return parse_policies(given)
    out = parse_policies("")
    for kind, policy in given.items():
        out[StreamKind(kind)] = Policy(policy)
    return out
