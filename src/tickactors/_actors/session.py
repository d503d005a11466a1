"""One connection's life: reader, writer, heartbeat sender and staleness detector.

A :class:`Session` runs the four tasks of one open WebSocket in a nursery of
its own. The first task to end for a reason that concerns the connection (the
peer closed, a send timed out, the staleness detector gave up, the venue
refused the token, the venue's close notice ended the session) records that
reason and cancels the rest; the supervisor
then decides what comes next. Anything else escaping a task is a bug, and
propagates.

The reader is the hot path: it takes every frame already buffered in one
call, decodes them into one batch, drops ticks of symbols the user does not
want (ghosts, counted and reported to the reconciler), stamps the staleness
clocks and appends the batch to the user's queue in one hand-off.

On a trading socket whose feed keeps the user's account in sync (``account``, an
:class:`~tickactors._actors.account.AccountSync`), the session asks for the account right
after ``authorize`` and the setup calls, before it says the connection is ready (or at
once, when the sync is wanted only later), and the reader turns the answer (known by its
request id, which the tracker hands back before the frame leaves) and every entity event
into account updates in frame order, one hand-off per read.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from .._core.backoff import Backoff
from .._core.budget import OutboundBudget
from .._core.lag import CaughtUp, Lagging, LagMonitor
from .._core.reconciler import ConnectionReady, Refresh
from .._core.requests import Resolution
from .._core.spacing import SpacingGate
from .._core.staleness import ConnectionStale, StalenessMonitor, SymbolStale
from .._errors import ProtocolError, VenueShutdownError
from .._net.transport import Transport, TransportClosed
from .._secret import Secret
from .._values import AccountUpdate, EventName, MarketData, StreamKind
from ..venues._dialect import Answer, AnswerKind, Dialect, MarketBatch, Notice, NoticeKind
from .account import AccountSync
from .hand_off import MarketHandOff
from .health_bus import HealthBus
from .market_delivery import SessionCounters, report_gaps, wanted_groups
from .messages import (
    AnswerIn,
    Authorize,
    Gated,
    Heartbeat,
    LinkReady,
    Outbound,
    ReaderPaused,
    TrackerMessage,
    UserRequest,
)
from .overlapping import Overlap
from .reconciling import ReconcilerLink

logger = logging.getLogger("tickactors")

#: Frames the reader handles per step before the scheduler runs again (the transport keeps
#: the rest). 128 frames are about 0.6 ms of work: timers (heartbeats, staleness, other
#: connections' deadlines) wake on time. With 512, several loaded readers in one loop
#: pushed timer wake-ups 23-27 ms late at p99 (bench/run.py), and throughput was no better.
MAX_FRAMES_PER_BATCH = 128
#: Tradovate shutdown reasons after which reconnecting would only evict another connection.
QUOTA_SHUTDOWNS = frozenset({"ConnectionQuotaReached", "IPQuotaReached"})


class SessionEnded(Exception):
    """Why a connection ended, when it was not the peer's close or a broken stream."""


class StaleConnection(SessionEnded):
    """Nothing arrived for ``stale_after`` seconds: the socket may look open, but it is dead."""


class AuthRefused(SessionEnded):
    """The venue refused the token."""


class VenueClosed(SessionEnded):
    """The venue ended the session (``NoticeKind.CLOSING``, Tradovate's ``c[code,"reason"]``):
    nothing more comes on it, whether or not the venue closes the socket too."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{code} {reason}" if reason else str(code))
        self.code = code
        self.reason = reason


#: Reasons that end a connection and lead to a reconnect, not to the feed's failure.
CONNECTION_ENDINGS = (
    SessionEnded,
    TransportClosed,
    trio.TooSlowError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
)


class Session:
    """The tasks of one open connection. ``await run()`` returns why it ended."""

    def __init__(
        self,
        *,
        connection: int,
        transport: Transport,
        dialect: Dialect,
        wanted: Mapping[StreamKind, set[str]],
        market: MarketHandOff,
        monitor: StalenessMonitor,
        backoff: Backoff,
        budget: OutboundBudget,
        tracker: trio.MemorySendChannel[TrackerMessage],
        reconciler: ReconcilerLink,
        health: HealthBus,
        counters: SessionCounters,
        writer: trio.MemoryReceiveChannel[Outbound],
        token: Secret | None = None,
        request_timeout: float = 10.0,
        gate: SpacingGate | None = None,
        account: AccountSync | None = None,
        lag: LagMonitor | None = None,
    ) -> None:
        self.connection = connection
        self._transport = transport
        self._dialect = dialect
        self._wanted = wanted
        self._market = market
        self._monitor = monitor
        self._backoff = backoff
        self._budget = budget
        self._tracker = tracker
        self._reconciler = reconciler
        self._health = health
        self._counters = counters
        self._writer = writer
        self._token = token
        self._request_timeout = request_timeout
        self._gate = gate
        self._lag = lag
        #: The feed's clock to the wall clock, for how late data arrives (``_core/lag.py``):
        #: read once, so the estimate runs on the feed's clock (a mock one in tests) and a
        #: step of the wall clock meanwhile is not mistaken for lag.
        self._wall_offset = time.time() - trio.current_time()
        #: Set while a rotation overlaps this connection with another one (make-before-break).
        self._overlap: Overlap | None = None
        #: Set when the venue announced it will shut this connection down (not for a quota).
        self.shutdown = trio.Event()
        self._opened = trio.Event()
        #: The venue accepted this connection's token (Tradovate's ``authorize`` answered OK).
        self.authorized = False
        self._reason: BaseException | None = None
        self._paused = False
        self._resumed = trio.Event()
        self._account = account
        #: Request ids the user sync went out under (the reader makes its answer a snapshot).
        self._sync_ids: set[int] = set()
        self._sync_user: int | None = None
        self._sync_tried = False

    def overlap_with(self, overlap: Overlap | None) -> None:
        """Pass every batch through ``overlap`` (a rotation under way: each item once across
        its connections), or, None, hand batches over as they are."""
        self._overlap = overlap

    async def run(self) -> BaseException:
        try:
            async with trio.open_nursery() as nursery:
                tasks = (
                    self._read,
                    self._write,
                    self._heartbeat,
                    self._watch_staleness,
                    self._ready,
                )
                for task in tasks:
                    nursery.start_soon(self._guard, task, nursery.cancel_scope)
        finally:
            if self._account is not None:
                self._account.connection_closed(self.connection)
        assert self._reason is not None
        return self._reason

    async def _guard(self, task: Callable[[], Awaitable[None]], scope: trio.CancelScope) -> None:
        try:
            await task()
        except CONNECTION_ENDINGS as exc:
            if self._reason is None:
                self._reason = exc
            scope.cancel()

    # -- reader: the hot path ----------------------------------------------------------

    async def _read(self) -> None:
        receive_many = self._transport.receive_many
        decode = self._dialect.decode
        take_trades = self._dialect.take_trades
        monitor = self._monitor
        counters = self._counters
        market = self._market
        account = self._account
        sync_ids = self._sync_ids  # filled by the tracker before each sync frame leaves
        updates: list[AccountUpdate] = []  # a read's account updates (emptied after each)
        closed: Notice | None = None  # the venue's close notice: this batch is the last
        while closed is None:
            frames = await receive_many(MAX_FRAMES_PER_BATCH)
            now = trio.current_time()
            monitor.message(now)
            self._backoff.data_received(now)
            counters.frames_received += len(frames)
            batch = MarketBatch(self.connection)
            i, n = 0, len(frames)
            while i < n:
                if take_trades is not None:
                    i = take_trades(frames, i, now, batch.trades)
                    if i == n:
                        break
                frame = frames[i]
                i += 1
                try:
                    answers = decode(frame, now, batch)
                except ProtocolError as exc:
                    self._bad_frame(exc, frame)
                    continue
                if answers:
                    for answer in answers:
                        if isinstance(answer, Notice):
                            if answer.kind is NoticeKind.PROPS:
                                if account is not None:
                                    parts = self._dialect.read_entity(answer.data)
                                    event = account.entity(self.connection, parts, now)
                                    if event is not None:
                                        updates.append(event)
                            elif self._notice(answer):
                                closed = answer
                            continue
                        if sync_ids and answer.request_id in sync_ids:
                            sync_ids.discard(answer.request_id)
                            self._sync_answered(answer, now, updates)
                        if answer.kind is AnswerKind.AUTH:
                            self._health.emit(
                                EventName.AUTH_FAILED,
                                self.connection,
                                answer.message,
                                code=answer.code,
                            )
                            raise AuthRefused(answer.message)
                        self._tracker.send_nowait(AnswerIn(self.connection, answer))
                if closed is not None:
                    break  # nothing after the venue's close belongs to this session
            if batch:
                out = self._filter(batch, now)
                if self._overlap is not None:
                    out = self._overlap.admit(out, self.connection, now)
                if out:
                    if self._lag is not None:
                        self._observe_lag(out, now)
                    for _, items in out:
                        counters.ticks_delivered += len(items)
                    if market.would_block(out):
                        dropped = await self._paused_for(functools.partial(market.put, out))
                        if dropped or market.gaps_unreported:
                            self._report_gaps(trio.current_time())
                    elif market.put_nowait(out) or market.gaps_unreported:
                        self._report_gaps(now)
            if updates:
                await self._deliver_account(updates, now)
                updates.clear()
        # The data that came before the close was delivered; now the session ends, and the
        # connector closes the socket politely whatever the venue does with it.
        raise VenueClosed(closed.code, closed.text)

    def _filter(self, batch: MarketBatch, now: float) -> list[tuple[StreamKind, list[MarketData]]]:
        """The batch's wanted items by kind (``delivery.wanted_groups``)."""
        return wanted_groups(
            batch, now, self._wanted, self._monitor, self._counters, self._reconciler.inbox
        )

    async def _paused_for(self, put: Callable[[], Awaitable[int]]) -> int:
        """Await ``put()`` (a ``block`` queue's put, waiting for room): the consumer is slow.
        The staleness detector and the tracker know meanwhile that the silence they may see
        is ours, not the venue's (clocks stand still). Returns what ``put`` returns."""
        self._paused = True
        self._tracker.send_nowait(ReaderPaused(self.connection, True))
        try:
            return await put()
        finally:
            self._paused = False
            self._tracker.send_nowait(ReaderPaused(self.connection, False))
            self._monitor.message(trio.current_time())
            self._resumed.set()
            self._resumed = trio.Event()

    async def _deliver_account(self, updates: list[AccountUpdate], now: float) -> None:
        """Hand a read's account updates to the account queue in one call (in order)."""
        account = self._account
        assert account is not None
        queue = account.queue
        if queue.full:
            dropped = await self._paused_for(functools.partial(queue.put, updates))
            now = trio.current_time()
        else:
            dropped = queue.put_nowait(updates)
        if dropped or account.gaps_unreported:
            account.report_gaps(self.connection, now)

    def _sync_answered(self, answer: Answer, now: float, updates: list[AccountUpdate]) -> None:
        """The answer to this connection's user sync: a snapshot, in the reader's order.
        (Anything else, a penalty ticket or a refusal, is the ``_sync`` task's business.)"""
        account = self._account
        if account is None or answer.kind is not AnswerKind.OK:
            return
        entities = self._dialect.read_sync(answer.data)
        if entities is not None:
            updates.append(account.snapshot(self.connection, self._sync_user, entities, now))

    def _observe_lag(self, out: list[tuple[StreamKind, list[MarketData]]], now: float) -> None:
        """How late the batch's newest item arrived (its ``exchange_time`` against the wall
        clock); the lag monitor's verdict, if any, as an event."""
        assert self._lag is not None
        newest: float | None = None
        for _, items in out:
            stamp = items[-1].exchange_time
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
        if newest is None:
            return
        verdict = self._lag.observe(now, now + self._wall_offset - newest)
        if verdict is None:
            return
        if isinstance(verdict, Lagging):
            self._health.emit(
                EventName.LAGGING,
                self.connection,
                f"data arrives {verdict.behind:.1f} s later than it did",
                behind=round(verdict.behind, 3),
                lag_after=self._lag.lag_after,
            )
        else:
            assert isinstance(verdict, CaughtUp)
            self._health.emit(
                EventName.CAUGHT_UP,
                self.connection,
                f"caught up after {verdict.lagged_for:.1f} s of lag"
                f" (at most {verdict.behind_max:.1f} s behind)",
                behind=round(verdict.behind, 3),
                behind_max=round(verdict.behind_max, 3),
                lagged_for=round(verdict.lagged_for, 3),
            )

    def _report_gaps(self, now: float) -> None:
        report_gaps(self._market, self._health, self.connection, now)

    def _bad_frame(self, exc: ProtocolError, frame: str | bytes) -> None:
        self._counters.decode_errors += 1
        count = self._counters.decode_errors
        if count <= 10 or count % 1000 == 0:
            excerpt = frame[:120] if isinstance(frame, str) else repr(frame[:120])
            self._health.emit(
                EventName.DECODE_ERROR,
                self.connection,
                str(exc),
                count=count,
                frame=excerpt,
            )

    # -- authorize, notices ------------------------------------------------------------

    async def _ready(self) -> None:
        """Tell the reconciler the connection is ready: at once, or once authorized, set up
        and (when the feed keeps the account in sync) synced. A sync wanted only later
        (``feed.sync()``) is made then, on this connection as on every later one."""
        if self._dialect.authorize_required:
            await self._authorize()
        for endpoint, query, body in self._dialect.setup_calls():
            await self._setup_call(endpoint, query, body)
        account = self._account
        if account is not None and account.wanted:
            await self._sync(account)
        self._tracker.send_nowait(LinkReady(self.connection))
        self._reconciler.inbox.send_nowait(ConnectionReady())
        if account is not None and not self._sync_tried:
            await account.requested.wait()
            await self._sync(account)

    async def _authorize(self) -> None:
        """Wait for the venue's open frame, then authorize; nothing else goes first."""
        with trio.fail_after(self._request_timeout):
            await self._opened.wait()
        if self._token is None:
            raise AuthRefused("the venue wants a token and the feed has none")
        reply_in, reply_out = trio.open_memory_channel[Answer | None](1)
        self._tracker.send_nowait(Authorize(self.connection, self._token, reply_in))
        async with reply_out:
            answer = await reply_out.receive()  # the tracker's deadline bounds this
        if answer is None:
            raise SessionEnded("no answer to authorize")
        if answer.kind is AnswerKind.AUTH:
            self._health.emit(
                EventName.AUTH_FAILED, self.connection, answer.message, code=answer.code
            )
            raise AuthRefused(answer.message)
        if answer.kind is not AnswerKind.OK:
            raise SessionEnded(f"authorize answered {answer.code} {answer.message}")
        self.authorized = True
        self._health.emit(EventName.AUTHORIZED, self.connection)

    async def _call(
        self,
        endpoint: str,
        query: str,
        body: object,
        opened: Callable[[int], None] | None = None,
    ) -> Answer:
        """One request of this connection's own (set up, sync) and its answer. No answer
        (timed out, connection lost, feed closed) ends the connection."""
        reply_in, reply_out = trio.open_memory_channel[Resolution[Any]](1)
        request = UserRequest(endpoint, query, body, reply_in, self.connection, opened)
        self._tracker.send_nowait(request)
        async with reply_out:
            resolution = await reply_out.receive()  # the tracker's deadline bounds this
        answer = resolution.answer
        if not isinstance(answer, Answer):
            raise SessionEnded(f"{endpoint} failed: {resolution.outcome.value}")
        return answer

    async def _setup_call(self, endpoint: str, query: str, body: object) -> None:
        """One setup request on this connection; anything but a 2xx ends the connection."""
        answer = await self._call(endpoint, query, body)
        if answer.kind is not AnswerKind.OK:
            raise SessionEnded(f"{endpoint} failed: {answer.message}")
        self._health.emit(EventName.SETUP, self.connection, endpoint, request=endpoint)

    async def _sync(self, account: AccountSync) -> None:
        """Ask for the user's account on this connection (the reader makes the answer a
        snapshot). The user is the one given, else the one the venue names (asked once a
        feed). No answer ends the connection, like a setup call; a refusal is announced
        (``sync_failed``) and the connection carries on without the account."""
        self._sync_tried = True
        dialect = self._dialect
        user_id = account.user_id
        if user_id is None:
            endpoint, query, body = dialect.user_call()
            answer = await self._call(endpoint, query, body)
            if answer.kind is not AnswerKind.OK:
                account.sync_failed(self.connection, endpoint, answer.message, answer.code)
                return
            user_id = dialect.read_user_id(answer.data)
            if user_id is None:
                account.sync_failed(self.connection, endpoint, "no user id in the answer", 0)
                return
            account.learned(user_id)
        endpoint, query, body = dialect.sync_call(user_id)
        self._sync_user = user_id
        account.sync_sent()
        answer = await self._call(endpoint, query, body, opened=self._sync_ids.add)
        if answer.kind is not AnswerKind.OK:
            account.sync_failed(self.connection, endpoint, answer.message, answer.code)
        elif dialect.read_sync(answer.data) is None:
            account.sync_failed(self.connection, endpoint, "no entity lists in the answer", 0)

    def _notice(self, notice: Notice) -> bool:
        """Carry out what ``notice`` means; True when it ends the session (``CLOSING``: the
        reader delivers what came before it, then ends the session with ``VenueClosed``)."""
        kind = notice.kind
        if kind is NoticeKind.OPENED:
            self._opened.set()
        elif kind is NoticeKind.CLOSING:
            self._health.emit(
                EventName.VENUE_CLOSING, self.connection, notice.text, code=notice.code
            )
            return True
        elif kind is NoticeKind.SHUTDOWN:
            self._health.emit(EventName.SHUTDOWN, self.connection, notice.text, reason=notice.text)
            if notice.text in QUOTA_SHUTDOWNS:
                raise VenueShutdownError(notice.text)
            self.shutdown.set()  # the supervisor replaces the connection before it goes
        elif kind is NoticeKind.TRADE_GAP:
            data = notice.data
            keys = ("symbol", "after", "first", "missing")
            self._health.emit(
                EventName.TRADE_GAP,
                self.connection,
                f"{notice.text}: trades after id {data.get('after')} missing up to id "
                f"{data.get('first')}; the venue's history did not reach back",
                **{key: data[key] for key in keys if key in data},
            )
        elif kind is NoticeKind.CLOCK:
            # Only the documented keys: the venue's own could collide with emit's
            # arguments (``{"connection": 1}``) and end the feed with a TypeError.
            data = notice.data
            self._health.emit(
                EventName.CLOCK,
                self.connection,
                **{key: data[key] for key in ("t", "s") if key in data},
            )
        return False

    # -- writer, heartbeat, staleness --------------------------------------------------

    async def _write(self) -> None:
        budget = self._budget
        async for frame in self._writer:
            at = budget.next_free(trio.current_time())
            await trio.sleep_until(at)
            budget.consume(trio.current_time())
            if isinstance(frame, Gated):
                if self._gate is not None:
                    self._gate.taken(trio.current_time())
                frame = frame.frame
            await self._transport.send(frame)
            self._counters.frames_sent += 1

    async def _heartbeat(self) -> None:
        """One heartbeat per interval on a fixed grid: a late wake-up is not carried into
        the next interval (no drift); after a pause longer than an interval, no burst.
        How late each wake-up was is counted (``SessionCounters.heartbeat_lateness``)."""
        interval = self._dialect.heartbeat_interval
        lateness = self._counters.heartbeat_lateness
        due = trio.current_time() + interval
        while True:
            await trio.sleep_until(due)
            now = trio.current_time()
            lateness.observe(now - due)  # how busy the Trio thread was when it was due
            self._tracker.send_nowait(Heartbeat(self.connection))
            due += interval
            if due <= now:
                due = now + interval

    async def _watch_staleness(self) -> None:
        monitor = self._monitor
        while True:
            deadline = monitor.next_deadline()
            watch_changed = self._reconciler.watch_changed
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await watch_changed.wait()
                continue  # new symbol clocks: compute the wake-up time again
            if self._paused:
                await self._resumed.wait()
                continue
            now = trio.current_time()
            for verdict in monitor.poll(now):
                if isinstance(verdict, ConnectionStale):
                    self._health.emit(
                        EventName.STALE,
                        self.connection,
                        f"nothing received for {verdict.silent_for:.3f} s",
                        silent_for=round(verdict.silent_for, 6),
                    )
                    raise StaleConnection(f"silent for {verdict.silent_for:.3f} s")
                assert isinstance(verdict, SymbolStale)
                last = monitor.last_message_at
                if last is not None and now - last >= verdict.silent_for / 2:
                    # Nothing at all arrived for half as long: the connection is going
                    # silent, not the symbol (while others flow, the last message is
                    # fresh). Resubscribing would spend the rate budget on a socket that
                    # may be dead; the connection's own deadline decides, and the symbol's
                    # clock fires again if the others come back without it.
                    continue
                kinds = self._reconciler.kinds_of(verdict.symbol)
                self._health.emit(
                    EventName.SYMBOL_STALE,
                    self.connection,
                    f"{verdict.symbol} silent for {verdict.silent_for:.3f} s; re-subscribing it",
                    symbol=verdict.symbol,
                    silent_for=round(verdict.silent_for, 6),
                )
                for kind in kinds:
                    self._reconciler.inbox.send_nowait(Refresh(kind, frozenset((verdict.symbol,))))
