"""The connection supervisor: connect, serve, rotate, notice the end, back off, connect again.

One supervisor drives one connection slot. Each attempt runs under its own
deadline (trio-websocket's connect timeout does not cover a server that
accepts TCP and never answers the upgrade); ``connector.Connector`` runs each
connection, and the supervisor's ``rotation.Rotator`` carries it, replacing it
make-before-break before it grows too old or when the venue announces a shutdown.
The supervisor knows its slot through the rotator's small interface
(``rotation.Shifts``: the shift a new connection serves), and reads the rotator's
counters through its statistics. The delay between attempts is the
sans-I/O ``Backoff``'s: full jitter, a floor (AllTick: 3 s), and a reset only
after a connection proved healthy, so a venue that accepts and closes at once
sees delays grow, not a storm.

When the venue refuses the token, the supervisor asks the token refresher for
one fresh token and tries once more; a second refusal in a row ends the feed
with ``AuthenticationError``. A TLS certificate that cannot be verified ends
the feed at once with ``CertificateError`` (event ``certificate_failed``):
the next attempt would meet the same certificate, so retrying only hides a
configuration error.

A connect that fails for another cause that will not heal (an HTTP 4xx answer to the
upgrade other than 408 and 429, a host name that does not exist: the ``ConnectError``'s
``permanent``) is retried like any other, but each one is an alarm, an ERROR log line at
once and then at most once a minute (``HealthBus.alarm``), and after ``give_up_after``
of them in a row (``_core/connect_failures.PermanentFailures``) the feed ends with
``PermanentConnectError``, naming the cause. A connection that opens, or a transient
failure, starts the count again.

Every time a slot has to connect again is counted by its cause
(:data:`RECONNECT_CAUSES`, :func:`reconnect_cause`): once per ended connection or
failed attempt (before the backoff's wait), and once per completed rotation, never
per frame. The feed's
``statistics()`` hands the counts out per slot (``reconnects``), and the Prometheus
collector (``_feed/metrics.py``) exposes them as ``tickactors_reconnects_total``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import attrs
import trio

from .._core.backoff import Backoff
from .._core.connect_failures import DEFAULT_GIVE_UP_AFTER, PermanentFailures
from .._core.overlap import RotationPolicy
from .._errors import AuthenticationError, CertificateError, ConnectError, PermanentConnectError
from .._net.transport import TransportClosed
from .._values import EventName
from .connector import Connector, describe
from .health_bus import HealthBus
from .market_delivery import SessionCounters
from .rotation import Rotator, Shifts
from .session import AuthRefused, StaleConnection, VenueClosed
from .token_refresher import TokenRefresher

__all__ = [
    "RECONNECT_CAUSES",
    "Supervisor",
    "connection_numbers",
    "describe",
    "reconnect_cause",
]

#: Why a slot connected again. ``stale``: nothing arrived for ``stale_after``; ``drop``: the
#: connection was lost without a close frame (a reset, a broken stream); ``kick``: the venue
#: ended it (a close frame, whatever its code, or its close notice, Tradovate ``c[...]``);
#: ``send_timeout``: a frame could not be sent in time; ``auth``: the venue refused the
#: token (one fresh token is tried); ``connect_failed``: an attempt to connect failed;
#: ``error``: any other ending (a setup call refused, no answer to ``authorize``, a frame
#: we refused and closed the connection for: 1002, 1007, 1009);
#: ``rotation``: replaced make-before-break for its age; ``shutdown``: replaced after the
#: venue's shutdown notice.
RECONNECT_CAUSES = (
    "stale",
    "drop",
    "kick",
    "send_timeout",
    "auth",
    "connect_failed",
    "error",
    "rotation",
    "shutdown",
)
#: A rotation's reason (``Rotator``) -> its cause.
_ROTATION_CAUSES = {"age": "rotation", "shutdown": "shutdown"}


def reconnect_cause(reason: BaseException) -> str:
    """The cause (one of :data:`RECONNECT_CAUSES`) of a reconnect after ``reason``, why the
    slot's last connection ended or its last attempt failed."""
    if isinstance(reason, StaleConnection):
        return "stale"
    if isinstance(reason, AuthRefused):
        return "auth"
    if isinstance(reason, VenueClosed):
        return "kick"
    if isinstance(reason, ConnectError):  # an OSError too: before the drops
        return "connect_failed"
    if isinstance(reason, TransportClosed):
        return "error" if reason.by_us else "drop" if reason.lost else "kick"
    if isinstance(reason, trio.TooSlowError):
        return "send_timeout"
    if isinstance(reason, OSError | trio.BrokenResourceError | trio.ClosedResourceError):
        return "drop"
    return "error"


class Supervisor:
    """Owns one connection slot's lifecycle."""

    def __init__(
        self,
        *,
        shifts: Shifts,
        connector: Connector,
        tokens: TokenRefresher,
        health: HealthBus,
        rotation: RotationPolicy,
        spare: trio.Lock | None,
        random: Callable[[], float],
        give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
    ) -> None:
        self._shifts = shifts
        self._permanent = PermanentFailures(give_up_after)
        self._connector = connector
        self._tokens = tokens
        self._health = health
        self.state = "starting"
        self.rotator = Rotator(
            shifts=shifts,
            connector=connector,
            policy=rotation,
            spare=spare,
            random=random,
            health=health,
        )
        self._token_proven = False  # the last attempt's token carried a session
        #: Reconnects by cause (rotations are the rotator's: ``statistics()`` adds them).
        self._reconnects = dict.fromkeys(RECONNECT_CAUSES, 0)

    @property
    def backoff(self) -> Backoff:
        return self._connector.backoff

    @property
    def counters(self) -> SessionCounters:
        return self._connector.counters

    @property
    def connection(self) -> int:
        """The number of the slot's current connection (the last one, between two)."""
        current = self.rotator.current
        if current is not None and not current.done.is_set():
            return current.number
        return self._connector.last_number

    async def run(self) -> None:
        refused_in_a_row = 0
        token_generation = 0
        backoff = self._connector.backoff
        await self._tokens.wait_token(0)
        while True:
            token = self._tokens.current()
            token_generation = self._tokens.generation
            reason = await self._serve()
            now = trio.current_time()
            if isinstance(reason, CertificateError):
                self.state = "failed"
                raise reason
            self._heal_or_give_up(reason)
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
            elif self._token_proven or backoff.attempts == 0:
                refused_in_a_row = 0  # that connection proved the token (or was healthy)
            self._reconnects[reconnect_cause(reason)] += 1
            delay = backoff.connection_failed(now)
            self.state = "backoff"
            self._health.emit(
                EventName.RECONNECTING,
                self.connection,
                f"next attempt in {delay:.3f} s",
                delay=round(delay, 6),
                attempt=backoff.attempts,
            )
            await trio.sleep(delay)

    def _heal_or_give_up(self, reason: BaseException) -> None:
        """A connect that failed for a cause that will not heal: an alarm, or the end of the
        feed after ``give_up_after`` in a row. Anything else starts the count again."""
        failures = self._permanent
        if not isinstance(reason, ConnectError):
            return  # a connection opened (``_serve`` started the count again) and ended
        give_up = failures.failed(reason.permanent)
        if not reason.permanent:
            return
        if give_up:
            self.state = "failed"
            raise PermanentConnectError(str(reason), cause=reason.cause, attempts=failures.in_a_row)
        until = "never gives up" if failures.after is None else f"gives up after {failures.after}"
        self._health.alarm(
            reason.cause,
            f"[conn {self.connection}] connect_failed: {reason}; this will not heal by "
            f"retrying ({reason.cause}): check the URL, the host name and the token; "
            f"{failures.in_a_row} in a row, the feed {until}",
        )

    async def _serve(self) -> BaseException:
        """Connect, then serve the slot's connection (and those that replace it by rotation)
        until one ends that no replacement took over from; return why it ended."""
        self.state = "connecting"
        self._token_proven = False
        async with trio.open_nursery() as nursery:
            opened = await nursery.start(self._connector.run, self._shifts.shift)
            if isinstance(opened, BaseException):
                return opened
            self._permanent.connected()
            self.state = "connected"
            link = await self.rotator.carry(opened)
            nursery.cancel_scope.cancel()
        self._token_proven = link.token_proven
        assert link.reason is not None
        return link.reason

    def reconnects(self) -> dict[str, int]:
        """Times the slot had to connect again, by cause (every one of
        :data:`RECONNECT_CAUSES`, zeros included)."""
        out = dict(self._reconnects)
        for why, count in self.rotator.rotations_by_reason.items():
            cause = _ROTATION_CAUSES.get(why, "rotation")
            out[cause] += count
        return out

    def statistics(self) -> dict[str, object]:
        connector = self._connector
        c = connector.counters
        current = self.rotator.current
        budget = None if current is None else attrs.asdict(current.budget.statistics())
        return {
            "budget": budget,
            "backoff": attrs.asdict(connector.backoff.statistics()),
            "state": self.state,
            "connection": self.connection,
            "connects": connector.connects,
            "disconnects": connector.disconnects,
            "backoff_attempts": connector.backoff.attempts,
            "permanent_failures": self._permanent.in_a_row,
            **self.rotator.statistics(),
            "reconnects": self.reconnects(),
            "frames_received": c.frames_received,
            "frames_sent": c.frames_sent,
            "ticks_delivered": c.ticks_delivered,
            "ghost_ticks": c.ghost_ticks,
            "decode_errors": c.decode_errors,
            "heartbeat_lateness": c.heartbeat_lateness.statistics(),
        }


def connection_numbers() -> Iterator[int]:
    """Connection numbers, unique for a feed's life across all its slots."""
    return itertools.count(1)
