"""``open_feed``: the public face of the actor runtime.

A :class:`Feed` owns one nursery in which every actor of the feed runs: the
token refresher, the request tracker, and per connection slot (``_feed/slot_table.py``,
``_actors/slot.py``) a reconciler and a supervisor (which runs each
connection's reader, writer, heartbeat sender and staleness detector, and
replaces the connection before it grows too old). Nothing outlives the
``async with``.

The user's side is synchronous where it cannot block (``subscribe``,
``unsubscribe``, ``sync``, ``statistics``) and async where it waits (``ticks``,
``batches``, ``events``, ``account``, ``wait_confirmed``); or, opened with ``on_batch``,
the readers call the user's function with each read's ticks and nothing is queued
(``_actors/hand_off.py``). Errors reach the user as one ``tickactors.FeedError`` (or the
user's own exception, ``on_batch``'s included), never as a raw ``ExceptionGroup``.

On a trading socket the feed can keep the user's account in sync (``open_feed(sync=True)``
or ``feed.sync()``; ``_actors/account.py``): a snapshot on every connection, entity
events after it, all in one ordered queue read with ``feed.account()``.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, NoReturn, overload

import attrs
import trio

from .._actors.account import AccountSync
from .._actors.hand_off import CallbackHandOff, MarketHandOff
from .._actors.health_bus import HealthBus
from .._actors.messages import TrackerMessage, UserRequest
from .._actors.queues import MarketQueue
from .._actors.reconciling import Changes, ReconcilerActor
from .._actors.slot import SlotKit
from .._actors.supervisor import Supervisor, connection_numbers
from .._actors.token_refresher import TokenRefresher
from .._actors.tracker import RequestTracker
from .._core.connect_failures import DEFAULT_GIVE_UP_AFTER, check_give_up_after
from .._core.lanes import Policy, parse_policies
from .._core.overlap import RotationPolicy
from .._core.reconciler import Reconciler
from .._core.requests import Outcome, Resolution
from .._core.spacing import SpacingGate
from .._core.staleness import StalenessMonitor
from .._errors import (
    CaptchaRequiredError,
    ConnectionLostError,
    FeedClosedError,
    RequestTimeoutError,
    VenueRejectedError,
)
from .._net.batched import connect_batched
from .._net.transport import TransportFactory
from .._values import (
    AccountUpdate,
    BookSnapshot,
    HealthEvent,
    MarketData,
    Quote,
    StreamKind,
    Tick,
)
from ..venues import Venue
from ..venues._dialect import Answer, AnswerKind, feed_timings
from ..venues._tradovate_auth import TradovateTokenSource
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
        lag_after: float | None,
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
        give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
        sync: bool = False,
        user_id: int | None = None,
        account_buffer: int = 10_000,
        account_policy: Policy = Policy.BLOCK,
        on_batch: Callable[[list[MarketData]], object] | None = None,
    ) -> None:
        dialect = venue.dialect
        if on_batch is not None:
            _check_on_batch(on_batch)
        give_up_after = check_give_up_after(give_up_after)
        if sync:
            _check_sync(venue)
        stale_after, request_timeout = feed_timings(dialect, stale_after, request_timeout)
        if lag_after is not None and not (math.isfinite(lag_after) and lag_after > 0):
            raise ValueError(f"lag_after must be None or a finite number > 0, got {lag_after!r}")
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
        #: ``on_batch``: the readers call it instead of queueing (``_actors/hand_off.py``).
        self._callback = None if on_batch is None else CallbackHandOff(on_batch)
        hand_off: MarketHandOff = self._market if self._callback is None else self._callback
        if account_buffer < 1:
            raise ValueError(f"account_buffer is at least 1, not {account_buffer!r}")
        self._account = AccountSync(
            self._health,
            wanted=sync,
            user_id=user_id,
            capacity=account_buffer,
            policy=account_policy,
        )
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
            market=hand_off,
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
            lag_after=lag_after,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            healthy_after=healthy_after,
            give_up_after=give_up_after,
            account=self._account if dialect.user_sync else None,
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
        answer = await wait_answer(endpoint, submit_request(self, endpoint, query, body))
        return answer.data

    # -- the account (trading sockets) ---------------------------------------------------

    def sync(self, user_id: int | None = None) -> None:
        """Keep the user's account in sync from now on (``open_feed(sync=True)`` does it
        from the start). Synchronous and idempotent.

        Every connection from now on asks the venue for the whole account (Tradovate
        ``user/syncrequest``, for ``user_id`` or else the user ``auth/me`` names) after
        ``authorize`` and before anything else goes on it; connections already up ask at
        once. The snapshots and the entity events that follow come from
        :meth:`account`. ``ValueError`` on a venue whose socket keeps no account
        (AllTick, Tradovate's market-data socket), with a market-data token
        (``TradovateTokenSource(which="md")``), or for another user than the one given
        before.
        """
        _check_sync(self._venue)
        self._account.want(user_id)

    def account(self) -> AsyncIterator[AccountUpdate]:
        """``async for update in feed.account()``: the user's account, in the venue's order.

        A :class:`~tickactors.SyncSnapshot` (the whole account) for every connection the
        account is synced on, and :class:`~tickactors.EntityEvent` values (one entity
        created, updated or deleted) that apply on top of the latest snapshot. Only with
        ``open_feed(sync=True)`` or after :meth:`sync`; one consumer. Every snapshot after
        the first comes with a ``resynced`` health event: reconcile against it (an order
        sent over a connection that dropped may exist or not). Consume it: under the
        default ``account_policy="block"`` a full queue (``account_buffer``) holds the
        connection's reader, market data included.
        """
        return ItemIterator(self._account.queue.get_batch)

    def account_batches(self) -> AsyncIterator[list[AccountUpdate]]:
        """As :meth:`account`, a list of every update waiting at a time (the runner's way)."""
        return BatchIterator(self._account.queue.get_batch)

    # -- data --------------------------------------------------------------------------

    async def get_batch(self) -> list[MarketData]:
        """Every tick waiting (at least one): the fast way to consume a feed.

        ``RuntimeError`` on a feed opened with ``on_batch``, which queues nothing.
        """
        if self._callback is not None:
            self._no_queue()
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

    def _no_queue(self) -> NoReturn:
        """What reading the queue of a feed opened with ``on_batch`` raises."""
        raise RuntimeError(
            "this feed hands its data to on_batch: it has no queue for get_batch, "
            "batches or ticks to read"
        )

    def _kind_batches(self, kind: StreamKind) -> Callable[[], Awaitable[list[MarketData]]]:
        if self._callback is not None:
            self._no_queue()
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
        the fast way to consume a busy feed. ``ValueError`` for a kind the venue lacks;
        ``RuntimeError`` on a feed opened with ``on_batch``.
        """
        if kind is None:
            if self._callback is not None:
                self._no_queue()
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
        ``RuntimeError`` on a feed opened with ``on_batch``.
        """
        if kind is None:
            if self._callback is not None:
                self._no_queue()
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
            "callback": None if self._callback is None else self._callback.statistics(),
            "dialect": self._dialect.statistics(),
            "account": self._account.statistics(),
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
        if self._callback is not None:
            self._callback.close()
        self._account.queue.close()
        self._health.close()


def submit_request(
    feed: Feed, endpoint: str, query: str = "", body: Any = None
) -> trio.MemoryReceiveChannel[Resolution[Any]]:
    """The first half of :meth:`Feed.request`, synchronous: hand the request to the tracker
    now, so that requests go out in the order of these calls; its resolution comes on the
    channel returned (:func:`wait_answer`). Raises ``FeedClosedError`` if the feed is closed.

    For the runner's stdin ``request`` lines, which are sent in the order they were read and
    print the answer's status beside its data. Kept out of the public surface: a library
    user calls :meth:`Feed.request`.
    """
    if feed._closed:
        raise FeedClosedError("the feed is closed")
    reply_in, reply_out = trio.open_memory_channel[Resolution[Any]](1)
    feed._tracker.inbox.send_nowait(UserRequest(endpoint, query, body, reply_in))
    return reply_out


async def wait_answer(endpoint: str, reply: trio.MemoryReceiveChannel[Resolution[Any]]) -> Answer:
    """The second half of :meth:`Feed.request`: the venue's whole OK :class:`Answer` (its
    ``code`` is the venue's status, Tradovate's ``s``), not only its payload. Raises what
    :meth:`Feed.request` raises."""
    with reply:  # closed without a checkpoint: a resolution received is never lost to a
        resolution = await reply.receive()  # cancellation (the feed stopping on a captcha)
    if resolution.outcome is Outcome.TIMED_OUT:
        raise RequestTimeoutError(f"no answer to {endpoint} in time")
    if resolution.outcome is Outcome.CLOSED:
        raise FeedClosedError(f"{endpoint}: the feed closed before an answer came")
    if resolution.outcome is not Outcome.ANSWERED:
        raise ConnectionLostError(f"{endpoint}: no connection carried it to an answer")
    answer = resolution.answer
    assert isinstance(answer, Answer)
    if answer.kind is AnswerKind.CAPTCHA:
        raise CaptchaRequiredError(endpoint)
    if answer.kind is not AnswerKind.OK:
        raise VenueRejectedError(answer.code, answer.message, request=endpoint)
    return answer


@asynccontextmanager
async def open_feed(
    venue: Venue,
    *,
    stale_after: float | None = None,
    symbol_stale_after: float | None = None,
    lag_after: float | None = 5.0,
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
    give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
    sync: bool = False,
    user_id: int | None = None,
    account_buffer: int = 10_000,
    account_policy: Literal["block", "drop-oldest"] | Policy = "block",
    on_batch: Callable[[list[MarketData]], object] | None = None,
) -> AsyncIterator[Feed]:
    """Open a feed to ``venue``; every actor runs until the ``async with`` ends.

    Every limit and deadline of the feed is set here (a venue object holds only what the
    venue decides). ``stale_after``: seconds without any inbound message before a connection
    is declared dead (default: the venue's, AllTick 30 s, Tradovate 10 s).
    ``request_timeout``: seconds a request waits for its answer (AllTick 5 s, Tradovate
    10 s). ``symbol_stale_after``: seconds
    a confirmed symbol may stay silent before it is re-subscribed (off by default,
    see docs/architecture.md). ``lag_after``: how many seconds later than its own recent
    best a connection's freshest data (its ``exchange_time`` against the wall clock) may
    arrive before a ``lagging`` event says it is falling behind (``caught_up`` when it is
    back); ``None`` turns it off. ``buffer``: items of one stream kind waiting for the user
    before that kind's policy acts. ``policies``: what each stream kind does for a slow
    consumer (``_core/lanes.py``): ``block`` (backpressure; the default for trades),
    ``conflate`` (the latest per symbol; the default for books and quotes) or
    ``drop-oldest``, as ``{TRADES: "drop-oldest"}`` or ``"trades=drop-oldest"``; every
    drop is counted and announced in a ``gap`` event with the symbols and counts.
    ``seed``: makes backoff jitter repeatable.
    ``transport_factory``: how to open a WebSocket; the default reads the socket in
    large chunks and hands every frame in them over at once (``connect_batched``);
    ``tickactors.connect_websocket`` uses trio-websocket instead.

    Connects that fail are retried for ever with backoff, unless the cause will not heal
    (an HTTP 4xx answer to the upgrade other than 408 and 429, a host name that does not
    exist; the ``connect_failed`` event's ``permanent`` and ``cause`` say which): each of
    those is also logged at ERROR on the ``tickactors`` logger, at once and then at most
    once a minute, and after ``give_up_after`` of them in a row (default 30, about 13
    minutes of retries; None: never) the feed ends with ``PermanentConnectError``. A
    connection that opens, or a transient failure, starts the count again. A certificate
    that cannot be verified ends the feed at once (``CertificateError``).

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

    The user's account (a trading socket: ``Tradovate(url=Tradovate.DEMO_URL, ...)`` with
    the access token; docs/venues.md, "Trading on the socket"): ``sync`` keeps it in sync
    from the start (as :meth:`Feed.sync` does later), for ``user_id`` or else the user the
    venue names (``auth/me``); :meth:`Feed.account` yields a snapshot per connection and
    the entity events after it. ``account_buffer``: updates waiting for the user before
    ``account_policy`` acts: ``"block"`` (the connection's reader waits; nothing lost) or
    ``"drop-oldest"`` (counted, announced in ``gap`` events with an ``account`` detail).

    ``on_batch``: the lowest latency, for code that acts on each tick at once. Each
    connection's reader calls ``on_batch(items)`` with what one read of its socket brought
    (a new list of ``MarketData``, trades then books then quotes, desired symbols only)
    instead of queueing it, so user code holds a tick one Trio task switch sooner than
    ``get_batch`` would give it (docs/performance.md, "Latency"). The function is plain and
    synchronous and runs on the Trio thread inside the reader: while it runs, nothing else
    of the process does, so it must be quick and must never block (hand slow work to a
    task or a thread). Nothing is queued, so ``buffer`` and ``policies`` do not apply and
    nothing is dropped: a slow function slows the reader, and the venue is held back by
    TCP. ``get_batch``, ``batches`` and ``ticks`` raise ``RuntimeError``; ``events``,
    ``account`` and the rest work as ever. If the function raises, the feed ends and
    ``open_feed`` raises that exception. ``TypeError`` at once for an async function or
    anything not callable.
    """
    feed = Feed(
        venue,
        stale_after=stale_after,
        symbol_stale_after=symbol_stale_after,
        lag_after=lag_after,
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
        give_up_after=give_up_after,
        sync=sync,
        user_id=user_id,
        account_buffer=account_buffer,
        account_policy=_account_policy(account_policy),
        on_batch=on_batch,
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


def _account_policy(given: str | Policy) -> Policy:
    try:
        policy = Policy(given)
    except ValueError:
        policy = Policy.CONFLATE  # refused below, with the same message
    if policy is Policy.CONFLATE:
        raise ValueError(f"account_policy is 'block' or 'drop-oldest', not {given!r}")
    return policy


def _check_on_batch(on_batch: object) -> None:
    """Refuse an ``on_batch`` the reader cannot call, with a ``TypeError`` that says why."""
    if not callable(on_batch):
        raise TypeError(f"on_batch must be a function, not {type(on_batch).__name__}")
    if inspect.iscoroutinefunction(on_batch) or inspect.iscoroutinefunction(
        getattr(on_batch, "__call__", None)  # noqa: B004 (an object whose __call__ is async)
    ):
        raise TypeError(
            "on_batch must be a plain synchronous function: the reader calls it and does "
            "not await (consume with get_batch or batches in a task for async code)"
        )


def _check_sync(venue: Venue) -> None:
    """Refuse a user sync the venue cannot serve, with a ``ValueError`` that says why."""
    dialect = venue.dialect
    if not dialect.user_sync:
        if dialect.name == "tradovate":
            raise ValueError(
                "Tradovate's market-data socket keeps no account: sync on a trading socket "
                "(Tradovate.DEMO_URL or Tradovate.LIVE_URL, with the access token)"
            )
        raise ValueError(f"{dialect.name} keeps no account on its socket: nothing to sync")
    source = venue.token_source
    if isinstance(source, TradovateTokenSource) and source.which == "md":
        raise ValueError(
            "a user sync needs the access token, not the market-data token: "
            'TradovateTokenSource(..., which="access")'
        )
