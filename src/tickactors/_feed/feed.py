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

import functools
import math
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, overload

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
from .._values import BookSnapshot, HealthEvent, MarketData, Quote, StreamKind, Tick
from ..venues import Venue
from ..venues._dialect import Answer, AnswerKind, feed_timings
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
        stale_after, request_timeout = feed_timings(dialect, stale_after, request_timeout)
        rotation = RotationPolicy(None) if rotation is None else rotation
        plan = shard_plan(
            dialect,
            max_symbols_per_connection=max_symbols_per_connection,
            max_connections=max_connections,
            rotating=rotation.max_age is not None,
        )
        self._venue = venue
        self._dialect = dialect
        self._health = HealthBus()
        self._market = MarketQueue(buffer, policies)
        self._intent = intent = FeedIntent(dialect, sharded=plan is not None)
        self._wanted = intent.wanted  # the intent's desired sets, read here, never changed
        # The user's hot path: the intent's own bound methods, no call of the feed's between
        # (a delegating method doubles a call's cost); they shadow the methods below, which
        # carry the signatures and the documentation.
        self.subscribe = intent.subscribe  # type: ignore[method-assign]
        self.unsubscribe = intent.unsubscribe  # type: ignore[method-assign]
        self._closed = False
        self._tokens = TokenRefresher(venue.token_source, self._health, rng=rng)
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
            tokens=self._tokens,
            health=self._health,
            changes=Changes(),
            gate=None if spacing is None else SpacingGate(spacing + TOKEN_SPACING_MARGIN),
            spare=trio.Lock(),
            rotation=rotation,
            random=rng.random,
            request_spacing=request_spacing(dialect),
            max_symbols=dialect.max_symbols if plan is None else plan.max_per_connection,
            stale_after=stale_after,
            request_timeout=request_timeout,
            symbol_stale_after=symbol_stale_after,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            healthy_after=healthy_after,
        )
        self._slots = Slots(kit, plan, intent.wanted, intent.adopted)
        intent.hand_to(self._slots)
        self._tracker = RequestTracker(
            dialect,
            self._health,
            (to_tracker, tracker_inbox),
            request_timeout=request_timeout,
        )

    @property
    def _reconciler(self) -> ReconcilerActor:
        """Slot 0's reconciler actor now (the only one unless the feed is sharded)."""
        return self._slots.first.actor

    @property
    def venue(self) -> Venue:
        """The venue this feed connects to, as given to :func:`open_feed`."""
        return self._venue

    def subscribe(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Want these symbols' ``kind`` stream (the venue's main stream without ``kind``).

        Synchronous: validated at once, reconciled in the background. Raises
        ``InvalidSymbolError`` or ``CapacityError`` (both ``ValueError``) and changes
        nothing if a symbol is invalid or would not fit the connections allowed.
        """
        self._intent.subscribe(*symbols, kind=kind)

    def unsubscribe(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """No longer want these symbols' ``kind`` stream; their ticks stop reaching you at
        once, whatever the venue still sends. Raises ``InvalidSymbolError`` for a bad one."""
        self._intent.unsubscribe(*symbols, kind=kind)

    @property
    def kinds(self) -> tuple[StreamKind, ...]:
        """The stream kinds the venue offers; the first is what ``subscribe`` means without
        ``kind=`` (AllTick: ``(TRADES, BOOK)``; Tradovate: ``(QUOTES, BOOK)``)."""
        return self._dialect.kinds

    @property
    def _reconciler_machine(self) -> Reconciler:
        """Slot 0's reconciler machine (the only one unless the feed is sharded)."""
        return self._reconciler.machine

    @property
    def _supervisor(self) -> Supervisor:
        """Slot 0's supervisor (the only one unless the feed is sharded)."""
        return self._slots.first.supervisor

    @property
    def _monitor(self) -> StalenessMonitor:
        """Slot 0's staleness monitor now."""
        return self._slots.first.shift.monitor

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
        under the feed's request deadline (``open_feed(request_timeout=...)``), and waits out
        penalty tickets like every request. Made before the feed's first connection is ready
        (right after ``open_feed``), it waits for that connection within the same deadline.
        Raises ``RequestTimeoutError`` (no answer in time), ``ConnectionLostError`` (its
        connection was lost meanwhile, or none is ready after the first: it is never sent
        again), ``VenueRejectedError`` (an error answer; at once for a venue that takes no
        requests of the user's own, AllTick), ``CaptchaRequiredError``, ``FeedClosedError``
        (the feed was closed, or closed before the answer came).
        """
        if self._closed:
            raise FeedClosedError("the feed is closed")
        reply_in, reply_out = trio.open_memory_channel[Resolution[Any]](1)
        self._tracker.inbox.send_nowait(UserRequest(endpoint, query, body, reply_in))
        async with reply_out:
            resolution = await reply_out.receive()
        if resolution.outcome is Outcome.TIMED_OUT:
            raise RequestTimeoutError(f"no answer to {endpoint} in time")
        if resolution.outcome is Outcome.CLOSED:
            raise FeedClosedError(f"{endpoint}: the feed closed before an answer came")
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

    async def _get_kind_batch(self, kind: StreamKind) -> list[MarketData]:
        """Every item of ``kind`` waiting (at least one), from that kind's lane alone."""
        intent = self._intent
        while True:
            batch = await self._market.get_kind_batch(kind)
            if intent.filter_again:  # as in get_batch
                batch = intent.refilter(batch, drained=not self._market)
                if not batch:
                    continue
            return batch

    def _kind_batches(self, kind: StreamKind) -> Callable[[], Awaitable[list[MarketData]]]:
        if kind not in self._wanted:
            raise ValueError(f"{self._dialect.name} has no {kind} stream")
        return functools.partial(self._get_kind_batch, kind)

    @overload
    def batches(self, *, kind: Literal[StreamKind.TRADES]) -> AsyncIterator[list[Tick]]: ...
    @overload
    def batches(self, *, kind: Literal[StreamKind.BOOK]) -> AsyncIterator[list[BookSnapshot]]: ...
    @overload
    def batches(self, *, kind: Literal[StreamKind.QUOTES]) -> AsyncIterator[list[Quote]]: ...
    @overload
    def batches(self, *, kind: StreamKind | None = None) -> AsyncIterator[list[MarketData]]: ...

    def batches(self, *, kind: StreamKind | None = None) -> AsyncIterator[list[Any]]:
        """``async for batch in feed.batches()``: lists of ticks, as they arrive.

        ``kind`` (``TRADES``, ``BOOK``, ``QUOTES``): that stream kind's alone, typed
        precisely (``batches(kind=TRADES)`` yields ``list[Tick]``). It takes from that kind's
        lane of the hand-off and leaves the other kinds waiting for their own consumer
        (``batches(kind=BOOK)`` in another task), so consume every kind you subscribe: a
        ``block`` lane that nobody empties stops the reader. Without ``kind``: every kind,
        the fast way to consume a busy feed. ``ValueError`` for a kind the venue lacks.
        """
        if kind is None:
            return BatchIterator(self.get_batch)
        return BatchIterator(self._kind_batches(kind))

    @overload
    def ticks(self, *, kind: Literal[StreamKind.TRADES]) -> AsyncIterator[Tick]: ...
    @overload
    def ticks(self, *, kind: Literal[StreamKind.BOOK]) -> AsyncIterator[BookSnapshot]: ...
    @overload
    def ticks(self, *, kind: Literal[StreamKind.QUOTES]) -> AsyncIterator[Quote]: ...
    @overload
    def ticks(self, *, kind: StreamKind | None = None) -> AsyncIterator[MarketData]: ...

    def ticks(self, *, kind: StreamKind | None = None) -> AsyncIterator[MarketData]:
        """``async for tick in feed.ticks()``: ticks of desired symbols only.

        ``kind``: that stream kind's alone, typed precisely (``ticks(kind=TRADES)`` yields
        ``Tick``, ``kind=BOOK`` ``BookSnapshot``, ``kind=QUOTES`` ``Quote``), as in
        :meth:`batches`. Without ``kind``: every kind, a ``MarketData`` union to narrow.
        """
        if kind is None:
            return ItemIterator(self.get_batch)
        return ItemIterator(self._kind_batches(kind))

    def events(self) -> AsyncIterator[HealthEvent]:
        """``async for event in feed.events()``: connected, stale, reconnecting, subscribed, ..."""
        return ItemIterator(self._health.queue.get_batch)

    def statistics(self) -> dict[str, Any]:
        """Counters of every actor; JSON-friendly; never a secret.

        ``tickactors.FeedCollector`` exposes them to Prometheus (docs/operations.md).
        """
        connection, slots = self._slots.statistics()
        gate = self._slots.kit.gate
        return {
            "venue": self._dialect.name,
            "url": self._dialect.display_url(),
            "desired": {k.value: len(v) for k, v in self._wanted.items()},
            "confirmed": {k.value: len(self._slots.confirmed(k)) for k in self._wanted},
            "rejected": {k.value: len(self._slots.rejected(k)) for k in self._wanted},
            "connection": connection,
            "slots": slots,
            "gate": None if gate is None else attrs.asdict(gate.statistics()),
            "reconciler": self._reconciler_machine.statistics(),
            "requests": self._tracker.statistics(),
            "staleness": attrs.asdict(self._monitor.statistics()),
            "tokens": attrs.asdict(self._tokens.schedule.statistics()),
            "queue": self._market.statistics(),
            "events": dict(self._health.counts),
        }

    # -- life --------------------------------------------------------------------------

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._tracker.run)
            # Not awaited: a token source that keeps failing must not keep open_feed
            # from returning; the supervisors wait for the first token, and the user
            # sees token_failed events meanwhile.
            nursery.start_soon(self._tokens.run)
            self._slots.start(nursery)
            task_status.started()

    def _close(self) -> None:
        self._closed = True
        self._intent.close()
        self._market.close()
        self._health.close()


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

    Every limit and deadline of the feed is set here (a venue object holds only what the
    venue decides). ``stale_after``: seconds without any inbound message before a connection
    is declared dead (default: the venue's, AllTick 30 s, Tradovate 10 s).
    ``request_timeout``: seconds a request waits for its answer (AllTick 5 s, Tradovate
    10 s). ``symbol_stale_after``: seconds
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
