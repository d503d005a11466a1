"""The request tracker: every request gets a unique id and a deadline, and resolves once.

The tracker stands between the actors that want something sent (heartbeat
sender, reconciler) and the connection's writer. It numbers each request from
one ``RequestTable`` for the whole life of the feed (so ids never repeat across
reconnects), encodes it with the venue's dialect, and hands the frame to the
writer of the connection it is meant for. Answers come back from the reader;
deadlines come from the table. When a connection is lost, every request it
carried fails at once. A subscription's verdict goes back to the reconciler that asked
(``Subscription.reply``), and nowhere else: with several slots, and shifts replacing
each other in rotations, there is no "the" reconciler.

A user's own request (``feed.request``) goes on the newest ready connection. One made
before any connection was ever ready waits for the first one, within its own deadline
(``request_timeout`` from the moment it was made), and then goes on it; once a connection
has been ready, a request made while none is fails at once, as one whose connection drops
does (it is never sent again).

How long the venue took to answer is counted once per answered request, by kind of
request, into fixed buckets (``latency``: a ``Histogram`` per kind, in ``statistics()``;
``tickactors_request_latency_seconds`` in Prometheus).
"""

from __future__ import annotations

import contextlib
from typing import Literal

import attrs
import trio

from .._core.histogram import REQUEST_LATENCY_BUCKETS, Histogram
from .._core.penalties import PenaltyBox
from .._core.reconciler import Acked, Action, RateLimited, Rejected, TimedOut
from .._core.requests import Outcome, RequestTable, Resolution
from .._errors import CaptchaRequiredError
from .._values import EventName
from ..venues._dialect import Answer, AnswerKind, Dialect
from .health_bus import HealthBus
from .messages import (
    AnswerIn,
    Authorize,
    Gated,
    Heartbeat,
    LinkDown,
    LinkReady,
    LinkUp,
    Outbound,
    ReaderPaused,
    Subscription,
    TrackerMessage,
    UserRequest,
)
from .timers import receive_or_deadline


@attrs.frozen(slots=True)
class _Meta:
    what: Literal["heartbeat", "subscription", "lookup", "authorize", "user"]
    connection: int
    ref: int = 0
    describe: str = ""
    #: lookup: the subscription that waits for it
    pending: Subscription | None = attrs.field(default=None, eq=False)
    #: authorize: where the answer goes
    reply: trio.MemorySendChannel[Answer | None] | None = attrs.field(default=None, eq=False)
    #: user: the request, and where its resolution goes
    call: UserRequest | None = attrs.field(default=None, eq=False)


class RequestTracker:
    """The actor. ``inbox`` takes :data:`TrackerMessage` values."""

    def __init__(
        self,
        dialect: Dialect,
        health: HealthBus,
        inbox: tuple[
            trio.MemorySendChannel[TrackerMessage], trio.MemoryReceiveChannel[TrackerMessage]
        ],
        *,
        request_timeout: float,
    ) -> None:
        self._dialect = dialect
        self._health = health
        self._timeout = request_timeout
        self.table: RequestTable[_Meta] = RequestTable()
        self.penalties: PenaltyBox[_Meta] = PenaltyBox()
        self.inbox, self._receive = inbox
        self._links: dict[int, trio.MemorySendChannel[Outbound]] = {}
        self._ready: set[int] = set()  # authorized links, for the user's own requests
        #: User requests made before any connection was ready, with their deadlines (in order).
        self._waiting: list[tuple[UserRequest, float]] = []
        self._ever_ready = False
        self.unsent = 0
        self.unsolicited = 0
        #: Seconds from sending to the answer, per kind of request (``_Meta.what``), from
        #: its first answer on: recorded once per answered request, never per tick.
        self.latency: dict[str, Histogram] = {}

    async def run(self) -> None:
        try:
            while True:
                message = await receive_or_deadline(self._receive, self._next_deadline)
                now = trio.current_time()
                if message is None:
                    for resolution in self.table.poll(now):
                        self._route(resolution)
                    for due in self.penalties.poll(now):
                        self._resend(due.item, due.ticket, now)
                    if self._waiting:
                        self._expire_waiting(now)
                else:
                    self._handle(message, now)
        finally:  # the feed is closing (this task is cancelled with it)
            self._close_user_requests(trio.current_time())

    def _close_user_requests(self, now: float) -> None:
        """Every user request still open, held out a penalty or waiting for a first
        connection ends as ``CLOSED``: ``feed.request`` awaited outside the feed's ``async
        with`` must not wait for an answer that can no longer come. (Subscriptions need
        nothing: their reconcilers stop with the feed.)"""
        calls = [r.meta.call for r in self.table.close(now) if r.meta.call is not None]
        calls += [meta.call for meta in self.penalties.clear() if meta.call is not None]
        calls += [message for message, _ in self._waiting]
        self._waiting = []
        for call in calls:
            meta = _Meta("user", 0, describe=call.endpoint, call=call)
            with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
                call.reply.send_nowait(Resolution(0, meta, Outcome.CLOSED, None, now, now))

    def _next_deadline(self) -> float | None:
        deadlines = [d for d in (self.table.next_deadline(), self.penalties.next_deadline()) if d]
        if self._waiting:
            deadlines.append(self._waiting[0][1])
        return min(deadlines) if deadlines else None

    def _handle(self, message: TrackerMessage, now: float) -> None:
        if isinstance(message, AnswerIn):
            self._answer(message.connection, message.answer, now)
        elif isinstance(message, Heartbeat | Subscription):
            self._send(message, now)
        elif isinstance(message, Authorize):
            self._authorize(message, now)
        elif isinstance(message, LinkReady):
            self._ready.add(message.connection)
            self._ever_ready = True
            if self._waiting:
                self._send_waiting(now)
        elif isinstance(message, UserRequest):
            self._user_request(message, now)
        elif isinstance(message, LinkUp):
            self._links[message.connection] = message.writer
        elif isinstance(message, ReaderPaused):
            if message.paused:
                self.table.hold(message.connection, now)
            else:
                self.table.release(message.connection, now)
        else:
            assert isinstance(message, LinkDown)
            self._links.pop(message.connection, None)
            self._ready.discard(message.connection)
            for held in self.penalties.connection_lost(message.connection):
                self._held_request_lost(held, now)
            for resolution in self.table.connection_lost(message.connection, now):
                self._route(resolution)

    def _authorize(self, message: Authorize, now: float) -> None:
        writer = self._links.get(message.connection)
        meta = _Meta("authorize", message.connection, describe="authorize", reply=message.reply)
        request_id = self.table.open(
            meta, now=now, timeout=self._timeout, connection=message.connection
        )
        frame = self._dialect.encode_authorize(message.token, request_id)
        if writer is None or frame is None:
            for resolution in self.table.connection_lost(message.connection, now):
                self._route(resolution)
            return
        self._write(writer, frame)

    def _user_request(self, message: UserRequest, now: float, timeout: float | None = None) -> None:
        """On the newest authorized connection; none -> it fails at once as connection lost,
        unless no connection was ever ready: then it waits for the first (``_waiting``)."""
        if message.connection is None and not self._ever_ready:
            if self._refused_at_once(message, now):
                return
            self._waiting.append((message, now + self._timeout))
            return
        connection = message.connection or max(self._ready, default=0)
        meta = _Meta("user", connection, describe=message.endpoint, call=message)
        request_id = self.table.open(
            meta,
            now=now,
            timeout=self._timeout if timeout is None else timeout,
            connection=connection,
        )
        writer = self._links.get(connection)
        if writer is None:
            for resolution in self.table.connection_lost(connection, now):
                self._route(resolution)
            return
        try:
            frame = self._dialect.encode_call(
                message.endpoint, request_id, message.query, message.body
            )
        except ValueError as exc:  # a request the venue cannot take: refused at once
            refused = Answer(request_id, AnswerKind.BAD_REQUEST, 0, str(exc))
            answered = self.table.answer(request_id, refused, now)
            if answered is not None:
                self._route(answered)
            return
        if message.opened is not None:
            message.opened(request_id)
        self._write(writer, frame)

    def _refused_at_once(self, message: UserRequest, now: float) -> bool:
        """A request the venue cannot take is refused now, not after waiting for a connection."""
        try:
            self._dialect.encode_call(message.endpoint, 0, message.query, message.body)
        except ValueError as exc:
            meta = _Meta("user", 0, describe=message.endpoint, call=message)
            refused = Answer(0, AnswerKind.BAD_REQUEST, 0, str(exc))
            self._route(Resolution(0, meta, Outcome.ANSWERED, refused, now, now))
            return True
        return False

    def _send_waiting(self, now: float) -> None:
        """The first connection is ready: the requests that waited for it go on it, each
        within what is left of its deadline."""
        waiting, self._waiting = self._waiting, []
        for message, deadline in waiting:
            if deadline <= now:
                self._waited_too_long(message, deadline - self._timeout, now)
            else:
                self._user_request(message, now, timeout=deadline - now)

    def _expire_waiting(self, now: float) -> None:
        while self._waiting and self._waiting[0][1] <= now:
            message, deadline = self._waiting.pop(0)
            self._waited_too_long(message, deadline - self._timeout, now)

    def _waited_too_long(self, message: UserRequest, opened_at: float, now: float) -> None:
        self._health.emit(
            EventName.REQUEST_TIMEOUT,
            0,
            f"no connection ready for user request {message.endpoint} within {self._timeout:g} s",
            request_id=0,
        )
        meta = _Meta("user", 0, describe=message.endpoint, call=message)
        with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
            message.reply.send_nowait(Resolution(0, meta, Outcome.TIMED_OUT, None, opened_at, now))

    def _lookup(
        self, message: Subscription, writer: trio.MemorySendChannel[Outbound], now: float
    ) -> bool:
        """Resolve the symbol first when the venue needs it; True if a lookup went out."""
        request = message.request
        if request.action is not Action.SUBSCRIBE or len(request.symbols) != 1:
            return False
        symbol = request.symbols[0]
        if not self._dialect.needs_contract_lookup(symbol):
            return False
        meta = _Meta("lookup", message.connection, request.ref, f"lookup {symbol}", pending=message)
        request_id = self.table.open(
            meta, now=now, timeout=self._timeout, connection=message.connection
        )
        self._write(writer, self._dialect.encode_contract_lookup(symbol, request_id))
        return True

    def _send(self, message: Heartbeat | Subscription, now: float) -> None:
        writer = self._links.get(message.connection)
        if writer is None:
            # The connection went away before the request could leave: the reconciler
            # hears ConnectionLost and sends again on the next connection.
            self.unsent += 1
            return
        if isinstance(message, Heartbeat):
            if not self._dialect.heartbeat_tracked:
                # The venue answers no heartbeat (Tradovate's ``[]``): no id, no deadline.
                untracked = self._dialect.encode_heartbeat(0)
                if untracked is not None:
                    self._write(writer, untracked)
                return
            meta = _Meta("heartbeat", message.connection)
        else:
            if self._lookup(message, writer, now):
                return
            request = message.request
            meta = _Meta(
                "subscription",
                message.connection,
                request.ref,
                f"{request.action.value} {request.kind.value} ({len(request.symbols)} symbols)",
                pending=message,
            )
        request_id = self.table.open(
            meta, now=now, timeout=self._timeout, connection=message.connection
        )
        if isinstance(message, Heartbeat):
            frame = self._dialect.encode_heartbeat(request_id)
            if frame is None:
                self.table.answer(request_id, None, now)
                return
            self._write(writer, frame)
        else:
            frame = self._dialect.encode_request(message.request, request_id, message.connection)
            self._write(writer, Gated(frame))

    def _write(self, writer: trio.MemorySendChannel[Outbound], frame: Outbound) -> None:
        try:
            writer.send_nowait(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.unsent += 1

    def _answer(self, connection: int, answer: Answer, now: float) -> None:
        resolution = (
            self.table.answer(answer.request_id, answer, now) if answer.request_id else None
        )
        if resolution is not None:
            self._answered(resolution)
            self._route(resolution)
            return
        if answer.kind is not AnswerKind.OK:
            # An error that answers nothing we have open: the venue's complaint about
            # the connection as a whole (AllTick sends such errors with seq_id 0).
            self.unsolicited += 1
            self._health.emit(
                EventName.VENUE_ERROR,
                connection,
                answer.message,
                code=answer.code,
                request_id=answer.request_id,
            )

    def _answered(self, resolution: Resolution[_Meta]) -> None:
        """Count how long the venue took to answer (``statistics()["latency"]``)."""
        what = resolution.meta.what
        histogram = self.latency.get(what)
        if histogram is None:
            histogram = self.latency[what] = Histogram(REQUEST_LATENCY_BUCKETS)
        histogram.observe(resolution.resolved_at - resolution.opened_at)

    def _route(self, resolution: Resolution[_Meta]) -> None:
        meta = resolution.meta
        if resolution.outcome is Outcome.TIMED_OUT:
            self._health.emit(
                EventName.REQUEST_TIMEOUT,
                meta.connection,
                f"no answer to {meta.what} request {resolution.request_id} "
                f"within {self._timeout:g} s",
                request_id=resolution.request_id,
            )
        if meta.what == "user":
            assert meta.call is not None
            answer = resolution.answer
            if isinstance(answer, Answer) and answer.kind is AnswerKind.CAPTCHA:
                # its caller hears of it (CaptchaRequiredError) before the feed stops below
                with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
                    meta.call.reply.send_nowait(resolution)
            if not (resolution.outcome is Outcome.ANSWERED and self._penalized(meta, resolution)):
                with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
                    meta.call.reply.send_nowait(resolution)
            return
        if meta.what == "authorize":
            assert meta.reply is not None
            answer = resolution.answer if resolution.outcome is Outcome.ANSWERED else None
            with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
                meta.reply.send_nowait(answer if isinstance(answer, Answer) else None)
            return
        if resolution.outcome is Outcome.ANSWERED and self._penalized(meta, resolution):
            return
        if meta.what == "lookup" and resolution.outcome is Outcome.ANSWERED:
            answer = resolution.answer
            assert isinstance(answer, Answer) and meta.pending is not None
            symbol = meta.pending.request.symbols[0]
            if answer.kind is AnswerKind.OK and self._dialect.learn_contract(symbol, answer):
                self._send(meta.pending, resolution.resolved_at)  # now the subscription itself
                return
            # fall through: the venue does not know the symbol -> the reconciler rejects it
        if meta.what not in ("subscription", "lookup"):
            return
        assert meta.pending is not None
        reconciler = meta.pending.reply
        if resolution.outcome is Outcome.TIMED_OUT:
            reconciler.send_nowait(TimedOut(meta.ref))
            return
        if resolution.outcome is not Outcome.ANSWERED:
            return  # connection lost or feed closed: the reconciler hears ConnectionLost
        answer = resolution.answer
        assert isinstance(answer, Answer)
        if answer.kind is AnswerKind.OK and meta.what == "lookup":
            reconciler.send_nowait(Rejected(meta.ref, 404, "unknown contract"))
        elif answer.kind is AnswerKind.OK:
            reconciler.send_nowait(Acked(meta.ref))
        elif answer.kind in (AnswerKind.RATE_LIMITED, AnswerKind.KICKED):
            self._health.emit(
                EventName.RATE_LIMITED, meta.connection, answer.message, code=answer.code
            )
            reconciler.send_nowait(RateLimited(meta.ref, answer.retry_after))
        else:
            reconciler.send_nowait(Rejected(meta.ref, answer.code, answer.message))

    def _penalized(self, meta: _Meta, resolution: Resolution[_Meta]) -> bool:
        """Hold a request the venue ticketed; raise for a captcha. True if handled here."""
        answer = resolution.answer
        if not isinstance(answer, Answer) or (meta.pending is None and meta.call is None):
            return False
        if answer.kind is AnswerKind.CAPTCHA:
            self._health.emit(
                EventName.CAPTCHA, meta.connection, answer.message, request=meta.describe
            )
            raise CaptchaRequiredError(meta.describe)
        if answer.kind is not AnswerKind.PENALTY or answer.ticket is None:
            return False
        wait = answer.retry_after or 0.0
        self.penalties.hold(
            meta,
            ticket=answer.ticket,
            connection=meta.connection,
            now=resolution.resolved_at,
            wait=wait,
        )
        self._health.emit(
            EventName.PENALTY,
            meta.connection,
            f"the venue asks to resend {meta.describe} in {wait:g} s",
            wait=wait,
            request=meta.describe,
        )
        return True

    def _held_request_lost(self, meta: _Meta, now: float) -> None:
        """A request waiting out a penalty lost its connection: a user's fails at once.

        Subscriptions and lookups need nothing: the reconciler hears ConnectionLost and
        sends again on the next connection.
        """
        if meta.call is None:
            return
        lost = Resolution(0, meta, Outcome.CONNECTION_LOST, None, now, now)
        with contextlib.suppress(trio.BrokenResourceError, trio.WouldBlock):
            meta.call.reply.send_nowait(lost)

    def _resend(self, meta: _Meta, ticket: str, now: float) -> None:
        """The identical request again, with the penalty ticket, under a new id."""
        writer = self._links.get(meta.connection)
        if writer is None:
            self.unsent += 1
            self._held_request_lost(meta, now)
            return
        request_id = self.table.open(
            meta, now=now, timeout=self._timeout, connection=meta.connection
        )
        if meta.call is not None:
            call = meta.call
            frame = self._dialect.encode_call(call.endpoint, request_id, call.query, call.body)
            if call.opened is not None:
                call.opened(request_id)
            self._write(writer, self._dialect.add_penalty_ticket(frame, ticket))
            return
        assert meta.pending is not None
        request = meta.pending.request
        if meta.what == "lookup":
            frame = self._dialect.encode_contract_lookup(request.symbols[0], request_id)
        else:
            frame = self._dialect.encode_request(request, request_id, meta.connection)
        self._write(writer, self._dialect.add_penalty_ticket(frame, ticket))

    def statistics(self) -> dict[str, object]:
        stats = attrs.asdict(self.table.statistics())
        stats["unsent"] = self.unsent
        stats["unsolicited_errors"] = self.unsolicited
        stats["penalties"] = self.penalties.statistics()
        stats["latency"] = {what: h.statistics() for what, h in self.latency.items()}
        return stats
