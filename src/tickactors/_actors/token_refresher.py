"""The token refresher: fetches a token before it expires and hands it to every new connection.

The decisions (when to refresh, how long to wait after a failure) are the
sans-I/O ``TokenSchedule``'s; this actor only calls the venue's
``TokenSource`` under a deadline. A connection whose token was refused asks
for one forced refresh through :meth:`TokenRefresher.request_refresh`.
"""

from __future__ import annotations

import math
import random

import trio

from .._core.token_schedule import TokenSchedule
from .._errors import AuthenticationError, CertificateError
from .._net.token_source import TokenSource
from .._secret import Secret, redact
from .._values import EventName
from .health_bus import HealthBus


class TokenRefresher:
    """The actor. ``current()`` is the token a new connection should use."""

    #: ``fetch_timeout`` is the outer bound on one ``fetch()``: generous, because a source
    #: bounds each of its own calls and may have to sit out a penalty ticket (Tradovate's
    #: ``p-time``, 60 s and more) or renew and then fall back to a fresh request.

    def __init__(
        self,
        source: TokenSource | None,
        health: HealthBus,
        *,
        fetch_timeout: float = 180.0,
        rng: random.Random | None = None,
    ) -> None:
        self._source = source
        self._health = health
        self._fetch_timeout = fetch_timeout
        self.schedule = TokenSchedule(random=(rng or random.Random()).random)
        self._wanted, self._requests = trio.open_memory_channel[None](math.inf)
        self._changed = trio.Event()
        self.generation = 0

    def current(self) -> Secret | None:
        return self.schedule.current()

    def request_refresh(self) -> None:
        """Ask for a fresh token now (after the venue refused the current one)."""
        self._wanted.send_nowait(None)

    async def wait_token(self, newer_than: int = 0) -> Secret | None:
        """The current token once its generation is above ``newer_than``."""
        while self._source is not None and self.generation <= newer_than:
            await self._changed.wait()
        return self.current()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._source is None:
            task_status.started()
            await trio.sleep_forever()
        await self._fetch_until_done()
        task_status.started()
        while True:
            deadline = self.schedule.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._requests.receive()
                while True:  # several requests at once make one refresh
                    try:
                        self._requests.receive_nowait()
                    except trio.WouldBlock:
                        break
            await self._fetch_until_done()

    async def _fetch_until_done(self) -> None:
        assert self._source is not None
        while True:
            try:
                with trio.fail_after(self._fetch_timeout):
                    issued = await self._source.fetch()
            except AuthenticationError:
                raise
            except CertificateError as exc:  # a CA nobody trusts: retrying cannot help
                self._health.emit(EventName.CERTIFICATE_FAILED, 0, str(exc))
                raise
            except Exception as exc:
                now = trio.current_time()
                delay = self.schedule.refresh_failed(now)
                message = redact(f"{type(exc).__name__}: {exc}", self.current())
                self._health.emit(EventName.TOKEN_FAILED, 0, message, retry_in=round(delay, 3))
                await trio.sleep(delay)
                continue
            now = trio.current_time()
            expires = None if issued.lifetime is None else now + issued.lifetime
            self.schedule.token_received(issued.token, expires, now)
            self.generation += 1
            self._changed.set()
            self._changed = trio.Event()
            self._health.emit(
                EventName.TOKEN_REFRESHED,
                0,
                lifetime=issued.lifetime,
                generation=self.generation,
            )
            return
