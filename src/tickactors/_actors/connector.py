"""One connection of a slot, from the connect to the close: :class:`Connector` and :class:`Link`.

:meth:`Connector.run` is the task behind every connection a slot opens, first ones,
reconnects and replacements alike. It connects under a deadline, reports the outcome
through ``task_status`` (a :class:`Link`, or the exception that says why there is none),
runs the connection's :class:`~tickactors._actors.session.Session` until it ends, and
cleans up in one place whatever the reason: the dialect forgets what it kept about the
connection (``connection_closed``: Tradovate's Tick charts), the tracker fails what the
connection carried (``LinkDown``), the shift it served hears that it is gone (its reconciler a
``ConnectionLost``, its staleness clock stops), the socket closes (politely unless the
peer is gone or silent).

Everyone learns of a connection through a message or a call of its own: the tracker
``LinkUp``/``LinkDown``, the shift ``Shift.connection_opened``/``connection_closed`` (the
reconciler gets the connection's number in a ``ConnectionOpened``). The connector writes
no other object's fields.

A rotator ends a link on purpose with :meth:`Link.end` (a rotation: :class:`Rotated`);
the link's ``done`` event says when everything above has happened.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator, Mapping

import trio

from .._core.backoff import Backoff
from .._core.budget import OutboundBudget
from .._core.lag import LagMonitor
from .._core.spacing import SpacingGate
from .._errors import CertificateError, ConnectError
from .._net.transport import Transport, TransportClosed, TransportFactory
from .._values import EventName, StreamKind
from ..venues._dialect import Dialect
from .account import AccountSync
from .hand_off import MarketHandOff
from .health_bus import HealthBus
from .market_delivery import SessionCounters
from .messages import LinkDown, LinkUp, Outbound, TrackerMessage
from .session import Session, SessionEnded, StaleConnection
from .shift import Shift
from .token_refresher import TokenRefresher


class Rotated(SessionEnded):
    """The connection was replaced by a newer one (make-before-break) and closed on purpose."""


class Link:
    """One open connection: its number, the shift it carries, its session; ``done`` at the end."""

    def __init__(self, number: int, shift: Shift, session: Session, budget: OutboundBudget) -> None:
        self.number = number
        self.shift = shift
        self.session = session
        self.budget = budget
        self.opened_at = trio.current_time()
        self.done = trio.Event()
        #: why it ended (None until ``done``, or when the feed itself was cancelled)
        self.reason: BaseException | None = None
        #: the token carried a session on it (authorized, or data delivered)
        self.token_proven = False
        self.scope = trio.CancelScope()
        self.ending: BaseException | None = None

    def end(self, reason: BaseException) -> None:
        """Close the connection on purpose (``reason``: why; it becomes ``self.reason``)."""
        if self.ending is None:
            self.ending = reason
        self.scope.cancel()


class Connector:
    """What every connection of one slot needs; :meth:`run` is the task of one connection."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        transport_factory: TransportFactory,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        request_timeout: float,
        numbers: Iterator[int],
        wanted: Mapping[StreamKind, set[str]],
        market: MarketHandOff,
        backoff: Backoff,
        tracker: trio.MemorySendChannel[TrackerMessage],
        tokens: TokenRefresher,
        health: HealthBus,
        gate: SpacingGate | None = None,
        account: AccountSync | None = None,
        lag_after: float | None = None,
    ) -> None:
        self.dialect = dialect
        self._account = account
        self._factory = transport_factory
        self._ssl = ssl_context
        self.connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._numbers = numbers
        self._wanted = wanted
        self._market = market
        self.backoff = backoff
        self._tracker = tracker
        self._tokens = tokens
        self._health = health
        self.gate = gate
        self._lag_after = lag_after
        self.counters = SessionCounters()
        self.connects = 0
        self.disconnects = 0
        self.last_number = 0  # the last connection number drawn

    async def run(
        self, shift: Shift, *, task_status: trio.TaskStatus[Link | BaseException]
    ) -> None:
        """Open a connection for ``shift``; ``task_status.started`` gets the :class:`Link`
        (then serve it to its end) or the ``ConnectError`` that says why there is none."""
        self.last_number = number = next(self._numbers)
        self._health.emit(EventName.CONNECTING, number, url=self.dialect.display_url())
        gate = self.gate
        if gate is not None:
            gate.opened()  # counted before it connects: never fewer than the venue counts
        try:
            await self._connect_and_serve(number, shift, task_status)
        finally:
            if gate is not None:
                gate.closed()

    async def _connect_and_serve(
        self, number: int, shift: Shift, task_status: trio.TaskStatus[Link | BaseException]
    ) -> None:
        link: Link | None = None
        reason: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                url = self.dialect.connect_url(self._tokens.current())
                try:
                    transport = await self._factory(
                        nursery, url, self._tokens.current(), self._ssl, self.connect_timeout
                    )
                except CertificateError as exc:
                    self._health.emit(EventName.CERTIFICATE_FAILED, number, str(exc))
                    nursery.cancel_scope.cancel()
                    task_status.started(exc)
                    return
                except ConnectError as exc:
                    self._health.emit(
                        EventName.CONNECT_FAILED,
                        number,
                        str(exc),
                        permanent=exc.permanent,
                        cause=exc.cause,
                    )
                    nursery.cancel_scope.cancel()
                    task_status.started(exc)
                    return
                link = self._link(number, shift, transport)
                ticks_before = self.counters.ticks_delivered
                task_status.started(link)
                try:
                    with link.scope:
                        reason = await link.session.run()
                    if reason is None:  # ended on purpose (a rotation)
                        reason = link.ending
                finally:
                    link.token_proven = (
                        link.session.authorized or self.counters.ticks_delivered > ticks_before
                    )
                    self.disconnects += 1
                    self.dialect.connection_closed(number)
                    self._tracker.send_nowait(LinkDown(number))
                    shift.connection_closed()
                    # A stale or already closed peer will not answer a close frame; any
                    # other ending (the feed closing included) says goodbye properly.
                    polite = not isinstance(reason, StaleConnection | TransportClosed)
                    await transport.aclose(polite=polite)
                    nursery.cancel_scope.cancel()
            assert reason is not None
            self._health.emit(
                EventName.DISCONNECTED, number, describe(reason), reason=type(reason).__name__
            )
        finally:
            if link is not None:
                link.reason = reason
                link.done.set()

    def _link(self, number: int, shift: Shift, transport: Transport) -> Link:
        """The connection is open: its budget, writer, session; the tracker and shift told."""
        now = trio.current_time()
        self.connects += 1
        self.backoff.connected(now)
        shift.connection_opened(number, now)
        dialect = self.dialect
        budget = OutboundBudget(
            frames=dialect.budget_frames, per=dialect.budget_per, margin=dialect.budget_margin
        )
        writer_in, writer_out = trio.open_memory_channel[Outbound](math.inf)
        self._tracker.send_nowait(LinkUp(number, writer_in))
        self._health.emit(EventName.CONNECTED, number, url=dialect.display_url())
        session = Session(
            connection=number,
            transport=transport,
            dialect=dialect,
            wanted=self._wanted,
            market=self._market,
            monitor=shift.monitor,
            backoff=self.backoff,
            budget=budget,
            tracker=self._tracker,
            reconciler=shift.actor,
            health=self._health,
            counters=self.counters,
            writer=writer_out,
            token=self._tokens.current(),
            request_timeout=self._request_timeout,
            gate=self.gate,
            account=self._account,
            lag=None if self._lag_after is None else LagMonitor(lag_after=self._lag_after),
        )
        return Link(number, shift, session, budget)


def describe(reason: BaseException) -> str:
    """Why a connection ended, in words: who closed it (the peer, we, or nobody: it was
    lost), with the code and reason; any other error by its type and text."""
    if isinstance(reason, TransportClosed):
        text = reason.reason or "no reason"
        if reason.by_us:
            return f"closed by us (code {reason.code}, {text})"
        if reason.lost:
            return f"lost without a close frame ({reason.reason or 'the stream ended'})"
        return f"closed by the peer (code {reason.code}, {text})"
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
