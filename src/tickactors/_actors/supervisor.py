"""The connection supervisor: connect, serve, notice the end, back off, connect again.

One supervisor drives one connection slot. Each attempt runs under its own
deadline (trio-websocket's connect timeout does not cover a server that
accepts TCP and never answers the upgrade). The delay between attempts is the
sans-I/O ``Backoff``'s: full jitter, a floor (AllTick: 3 s), and a reset only
after a connection proved healthy, so a venue that accepts and closes at once
sees delays grow, not a storm.

When the venue refuses the token, the supervisor asks the token refresher for
one fresh token and tries once more; a second refusal in a row ends the feed
with ``AuthenticationError``. A TLS certificate that cannot be verified ends
the feed at once with ``CertificateError`` (event ``certificate_failed``):
the next attempt would meet the same certificate, so retrying only hides a
configuration error.
"""

from __future__ import annotations

import itertools
import math
import ssl
from collections.abc import Iterator, Mapping

import attrs
import trio

from .._core.backoff import Backoff
from .._core.budget import OutboundBudget
from .._core.reconciler import ConnectionLost
from .._core.staleness import StalenessMonitor
from .._errors import AuthenticationError, CertificateError, ConnectError
from .._handoff import MarketQueue
from .._health import HealthBus
from .._transport import TransportClosed, TransportFactory
from .._values import StreamKind
from ..venues import Dialect
from .connection import AuthRefused, Session, StaleConnection
from .delivery import SessionCounters
from .messages import LinkDown, LinkUp, TrackerMessage
from .reconciling import ReconcilerActor
from .tokens import TokenRefresher


class Supervisor:
    """Owns one connection slot's lifecycle."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        transport_factory: TransportFactory,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        numbers: Iterator[int],
        wanted: Mapping[StreamKind, set[str]],
        market: MarketQueue,
        monitor: StalenessMonitor,
        backoff: Backoff,
        tracker: trio.MemorySendChannel[TrackerMessage],
        reconciler: ReconcilerActor,
        tokens: TokenRefresher,
        health: HealthBus,
    ) -> None:
        self._dialect = dialect
        self._factory = transport_factory
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._numbers = numbers
        self._wanted = wanted
        self._market = market
        self._monitor = monitor
        self.backoff = backoff
        self._tracker = tracker
        self._reconciler = reconciler
        self._tokens = tokens
        self._health = health
        self.counters = SessionCounters()
        self.state = "starting"
        self.connection = 0
        self.connects = 0
        self.disconnects = 0
        self.budget: OutboundBudget | None = None
        self._token_proven = False  # the last attempt's token carried a session

    async def run(self) -> None:
        refused_in_a_row = 0
        token_generation = 0
        await self._tokens.wait_token(0)
        while True:
            token = self._tokens.current()
            token_generation = self._tokens.generation
            reason = await self._attempt()
            now = trio.current_time()
            if isinstance(reason, CertificateError):
                self.state = "failed"
                raise reason
            if isinstance(reason, AuthRefused):
                # A token that carried a session before (an ``authorize`` answered OK, or
                # data delivered) was revoked since: a new episode, not a second refusal.
                refused_in_a_row = 1 if self._token_proven else refused_in_a_row + 1
                if refused_in_a_row >= 2:
                    raise AuthenticationError(
                        "the venue refused the token twice in a row, the second time "
                        "just after a refresh"
                    )
                if token is not None:
                    self._tokens.request_refresh()
                    with trio.move_on_after(30):
                        await self._tokens.wait_token(token_generation)
            elif self._token_proven or self.backoff.attempts == 0:
                refused_in_a_row = 0  # that connection proved the token (or was healthy)
            delay = self.backoff.connection_failed(now)
            self.state = "backoff"
            self._health.emit(
                "reconnecting",
                self.connection,
                f"next attempt in {delay:.3f} s",
                delay=round(delay, 6),
                attempt=self.backoff.attempts,
            )
            await trio.sleep(delay)

    async def _attempt(self) -> BaseException:
        self.connection = number = next(self._numbers)
        self._token_proven = False
        ticks_before = self.counters.ticks_delivered
        self.state = "connecting"
        url = self._dialect.connect_url(self._tokens.current())
        self._health.emit("connecting", number, url=self._dialect.display_url())
        async with trio.open_nursery() as nursery:
            try:
                transport = await self._factory(
                    nursery, url, self._tokens.current(), self._ssl, self._connect_timeout
                )
            except CertificateError as exc:
                self._health.emit("certificate_failed", number, str(exc))
                nursery.cancel_scope.cancel()
                return exc
            except ConnectError as exc:
                self._health.emit("connect_failed", number, str(exc))
                nursery.cancel_scope.cancel()
                return exc
            now = trio.current_time()
            self.connects += 1
            self.state = "connected"
            self.backoff.connected(now)
            self._monitor.connection_opened(now)
            self.budget = budget = OutboundBudget(
                frames=self._dialect.budget_frames,
                per=self._dialect.budget_per,
                margin=self._dialect.budget_margin,
            )
            writer_in, writer_out = trio.open_memory_channel[str](math.inf)
            self._reconciler.connection = number
            self._tracker.send_nowait(LinkUp(number, writer_in))
            self._health.emit("connected", number, url=self._dialect.display_url())
            session = Session(
                connection=number,
                transport=transport,
                dialect=self._dialect,
                wanted=self._wanted,
                market=self._market,
                monitor=self._monitor,
                backoff=self.backoff,
                budget=budget,
                tracker=self._tracker,
                reconciler=self._reconciler,
                health=self._health,
                counters=self.counters,
                writer=writer_out,
                token=self._tokens.current(),
                request_timeout=self._dialect.request_timeout,
            )
            reason: BaseException | None = None
            try:
                reason = await session.run()
            finally:
                self._token_proven = (
                    session.authorized or self.counters.ticks_delivered > ticks_before
                )
                self.disconnects += 1
                self._tracker.send_nowait(LinkDown(number))
                self._reconciler.inbox.send_nowait(ConnectionLost())
                self._monitor.connection_closed()
                # A stale or already closed peer will not answer a close frame; any
                # other ending (the feed closing included) says goodbye properly.
                polite = not isinstance(reason, StaleConnection | TransportClosed)
                await transport.aclose(polite=polite)
                nursery.cancel_scope.cancel()
        self._health.emit("disconnected", number, _describe(reason), reason=type(reason).__name__)
        return reason

    def statistics(self) -> dict[str, object]:
        c = self.counters
        budget = None if self.budget is None else attrs.asdict(self.budget.statistics())
        return {
            "budget": budget,
            "backoff": attrs.asdict(self.backoff.statistics()),
            "state": self.state,
            "connection": self.connection,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "backoff_attempts": self.backoff.attempts,
            "frames_received": c.frames_received,
            "frames_sent": c.frames_sent,
            "ticks_delivered": c.ticks_delivered,
            "ghost_ticks": c.ghost_ticks,
            "decode_errors": c.decode_errors,
        }


def _describe(reason: BaseException) -> str:
    if isinstance(reason, TransportClosed):
        return f"closed by the peer (code {reason.code}, {reason.reason or 'no reason'})"
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def connection_numbers() -> Iterator[int]:
    """Connection numbers, unique for a feed's life across all its slots."""
    return itertools.count(1)
