"""``open_feed``: the public face of the actor runtime.

A :class:`Feed` owns one nursery in which every actor of the feed runs: the
token refresher, the request tracker, and per connection slot a reconciler
and a supervisor (which runs each connection's reader, writer, heartbeat
sender and staleness detector). Nothing outlives the ``async with``.

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

from ._actors.messages import TrackerMessage, UserRequest
from ._actors.reconciling import Inbound, ReconcilerActor
from ._actors.supervisor import Supervisor, connection_numbers
from ._actors.tokens import TokenRefresher
from ._actors.tracker import RequestTracker
from ._core.backoff import Backoff
from ._core.delivery import Policy, parse_policies
from ._core.reconciler import Reconciler
from ._core.requests import Outcome, Resolution
from ._core.staleness import StalenessMonitor
from ._errors import (
    ConnectionLostError,
    FeedClosedError,
    FeedError,
    RequestTimeoutError,
    VenueRejectedError,
)
from ._handoff import MarketQueue
from ._health import HealthBus
from ._intent import FeedIntent
from ._iterators import BatchIterator, ItemIterator
from ._transport import TransportFactory
from ._transport_batched import connect_batched
from ._values import HealthEvent, MarketData, StreamKind
from .venues import Answer, AnswerKind, Dialect, Venue


def request_spacing(dialect: Dialect) -> float:
    """Seconds between two subscription requests, so that they and the heartbeats together
    stay inside the venue's outbound budget (AllTick, heartbeat every 10 s: 1.17 s;
    Tradovate: 0.104 s). Spaced any closer, requests queue behind the budget until they
    miss their deadlines while the venue is still answering."""
    slot = dialect.budget_per / dialect.budget_frames + dialect.budget_margin
    return 1.0 / (1.0 / slot - 1.0 / dialect.heartbeat_interval)


class Feed(FeedIntent):
    """A live market-data feed. Create it with :func:`open_feed`.

    ``subscribe``, ``unsubscribe`` and ``desired`` come from :class:`FeedIntent`.
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
    ) -> None:
        dialect = venue.dialect
        self.venue = venue
        self.dialect = dialect
        self.health = HealthBus()
        self._market = MarketQueue(buffer, policies)
        self._init_intent(dialect)
        self._filter_again = False
        self._closed = False
        self.tokens = TokenRefresher(venue.token_source, self.health, rng=rng)
        self.reconciler_machine = Reconciler(
            dialect.semantics,
            dialect.kinds,
            request_spacing=request_spacing(dialect),
            max_symbols=dialect.max_symbols,
        )
        self.monitor = StalenessMonitor(
            stale_after=dialect.stale_after if stale_after is None else stale_after,
            symbol_stale_after=symbol_stale_after,
        )
        # The two actors talk both ways: make both inboxes first.
        to_tracker, tracker_inbox = trio.open_memory_channel[TrackerMessage](math.inf)
        to_reconciler, reconciler_inbox = trio.open_memory_channel[Inbound](math.inf)
        self.tracker = RequestTracker(
            dialect,
            self.health,
            (to_tracker, tracker_inbox),
            to_reconciler,
            request_timeout=dialect.request_timeout if request_timeout is None else request_timeout,
        )
        self.reconciler = ReconcilerActor(
            self.reconciler_machine,
            self.monitor,
            self.health,
            (to_reconciler, reconciler_inbox),
            to_tracker,
        )
        self._hand_intents_to(self.reconciler)
        self.supervisor = Supervisor(
            dialect=dialect,
            transport_factory=transport_factory,
            ssl_context=ssl_context,
            connect_timeout=connect_timeout,
            numbers=connection_numbers(),
            wanted=self._wanted,
            market=self._market,
            monitor=self.monitor,
            backoff=Backoff(
                base=backoff_base,
                cap=backoff_cap,
                floor=dialect.reconnect_floor,
                healthy_after=healthy_after,
                random=rng.random,
            ),
            tracker=self.tracker.inbox,
            reconciler=self.reconciler,
            tokens=self.tokens,
            health=self.health,
        )

    # -- intent ------------------------------------------------------------------------

    def confirmed(self, kind: StreamKind | None = None) -> frozenset[str]:
        return self.reconciler_machine.confirmed(self._kind(kind))

    def rejected(self, kind: StreamKind | None = None) -> dict[str, tuple[int, str]]:
        return dict(self.reconciler_machine.rejected(self._kind(kind)))

    async def wait_confirmed(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Wait until the venue confirmed every one of ``symbols`` (all desired ones if none).

        Raises ``VenueRejectedError`` if the venue rejected one of them. Put it under
        ``trio.fail_after`` for a deadline.
        """
        kind = self._kind(kind)
        wanted = self._validate(symbols, kind) if symbols else None
        while True:
            target = self._wanted[kind] if wanted is None else wanted
            rejected = self.reconciler_machine.rejected(kind)
            for symbol in target:
                if symbol in rejected:
                    code, reason = rejected[symbol]
                    raise VenueRejectedError(code, reason, request=f"subscribe {symbol}")
            if target <= self.reconciler_machine.confirmed(kind):
                return
            await self.reconciler.wait_changed()

    def is_converged(self) -> bool:
        """True when the venue confirmed every desired symbol (minus rejected ones) and nothing
        undesired is still subscribed, as far as the feed knows."""
        machine = self.reconciler_machine
        return machine.is_converged() and all(
            machine.desired(kind) == wanted for kind, wanted in self._wanted.items()
        )

    async def wait_converged(self) -> None:
        """Wait until the venue streams exactly what is desired (minus rejected symbols)."""
        while not self.is_converged():
            await self.reconciler.wait_changed()

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
        while True:
            batch = await self._market.get_batch()
            if self._filter_again:
                # An unsubscribe happened since these were queued: a tick of a symbol
                # no longer wanted never reaches the user.
                if not self._market:
                    self._filter_again = False
                wanted = self._wanted
                batch = [item for item in batch if item.symbol in wanted[item.kind]]
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
        return {
            "venue": self.dialect.name,
            "url": self.dialect.display_url(),
            "desired": {k.value: len(v) for k, v in self._wanted.items()},
            "confirmed": {k.value: len(self.reconciler_machine.confirmed(k)) for k in self._wanted},
            "connection": self.supervisor.statistics(),
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
            nursery.start_soon(self.reconciler.run)
            # Not awaited: a token source that keeps failing must not keep open_feed
            # from returning; the supervisor waits for the first token, and the user
            # sees token_failed events meanwhile.
            nursery.start_soon(self.tokens.run)
            nursery.start_soon(self.supervisor.run)
            task_status.started()

    def _close(self) -> None:
        self._closed = True
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
) -> AsyncIterator[Feed]:
    """Open a feed to ``venue``; every actor runs until the ``async with`` ends.

    ``stale_after``: seconds without any inbound message before a connection is
    declared dead (default: the venue's, AllTick 30 s). ``symbol_stale_after``: seconds
    a confirmed symbol may stay silent before it is re-subscribed (off by default,
    see docs/architecture.md). ``buffer``: items of one stream kind waiting for the user
    before that kind's policy acts. ``policies``: what each stream kind does for a slow
    consumer (``_core/delivery.py``): ``block`` (backpressure; the default for trades),
    ``conflate`` (the latest per symbol; the default for books and quotes) or
    ``drop-oldest``, as ``{TRADES: "drop-oldest"}`` or ``"trades=drop-oldest"``; every
    drop is counted and announced in a ``gap`` event with the symbols and counts.
    ``seed``: makes backoff jitter repeatable.
    ``transport_factory``: how to open a WebSocket; the default reads the socket in
    large chunks and hands every frame in them over at once (``connect_batched``);
    ``tickactors.connect_websocket`` uses trio-websocket instead.
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
    )
    body_errors: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(feed._run)
            try:
                yield feed
            except BaseException as exc:
                body_errors.append(exc)
                raise
            finally:
                feed._close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = _unwrap(group, body_errors)
        if error is group:
            raise
        # Keep the exception's own cause; hide the group it travelled in.
        raise error from error.__cause__
    finally:
        feed._close()


def _unwrap(
    group: BaseExceptionGroup[BaseException], body_errors: list[BaseException]
) -> BaseException:
    """The one exception a user should see for a failed feed.

    The user's own exception comes back exactly as the body raised it (a group
    from the user's own nursery included). A failure of the feed comes back as a
    ``FeedError`` (an unexpected one wrapped, its cause kept).
    """

    def leaves_of(exc: BaseException) -> list[BaseException]:
        if isinstance(exc, BaseExceptionGroup):
            return [leaf for inner in exc.exceptions for leaf in leaves_of(inner)]
        return [] if isinstance(exc, trio.Cancelled) else [exc]

    for body_error in body_errors:
        if leaves_of(body_error):
            return body_error  # not merely the cancellation a failing actor caused
    leaves = leaves_of(group)
    if not leaves:
        return group  # only cancellations: the enclosing cancel scope absorbs them
    for leaf in leaves:
        if not isinstance(leaf, Exception):
            return leaf  # KeyboardInterrupt and friends
    if len(leaves) == 1 and isinstance(leaves[0], FeedError):
        return leaves[0]
    error = FeedError("the feed failed: " + "; ".join(f"{type(e).__name__}: {e}" for e in leaves))
    error.__cause__ = leaves[0] if len(leaves) == 1 else group
    return error


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
