"""The listener and :func:`open_simulator`: one simulated venue on a loopback port.

Theory of operation
-------------------
``open_simulator`` binds a TCP listener on a loopback address only, then runs
in one nursery: the accept loop (one task per TCP connection), the streamer,
and, if ``SimConfig.random_faults`` is set, the random fault schedule. Each
TCP connection is either hung (``hang_upgrade``: its bytes are read and
ignored, no HTTP answer ever comes) or handed to the venue's handler after
the upgrade request arrives (10 s deadline, else the socket is closed).
The Tradovate venue serves REST and WebSocket on the same port: its TCP
connections go to ``_tradovate_server.serve_tradovate`` instead, and its
streamer is the :class:`._tradovate_stream.TradovateStreamer`.

With a server ``ssl_context`` every TCP connection is wrapped in TLS before
the venue's handler sees it (``trio.SSLStream``; the handshake runs at the
handler's first read, under its 10 s deadline, and a client that rejects the
certificate simply leaves), so the URLs become ``wss://`` and ``https://``.
Nothing else changes: REST and WebSocket share the port as before.

Leaving the ``async with`` cancels everything and closes every socket
without close frames (the simulator does not say goodbye). An exception
raised in the body comes out as itself, never wrapped in an
``ExceptionGroup``. All timing uses trio's clock, so a test can run the
simulator and its client under ``MockClock(autojump_threshold=0)``.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from ._alltick_server import serve_alltick
from ._alltick_stream import AllTickStreamer
from ._alltick_tokens import TokenRules
from ._config import SimConfig
from ._faults import Faults, run_random_faults
from ._hub import Hub
from ._stats import SimStats
from ._tradovate_market import TradovateMarket
from ._tradovate_server import REPLAY_PATH, REST_PATH, WS_PATH, serve_tradovate
from ._tradovate_state import TradovateVenue
from ._tradovate_stream import TradovateStreamer
from ._wsio import ServerWebSocket

HANDSHAKE_TIMEOUT = 10.0
VENUES = ("alltick", "tradovate")
DEFAULT_PATH = "/quote-b-ws-api"
_DEFAULT_PATHS = {"alltick": DEFAULT_PATH, "tradovate": WS_PATH}


class Simulator:
    """A running simulated venue; get one from :func:`open_simulator`."""

    def __init__(
        self,
        venue: str,
        host: str,
        port: int,
        hub: Hub,
        faults: Faults,
        streamer: AllTickStreamer | TradovateStreamer,
        tradovate: TradovateVenue | None = None,
        *,
        tls: bool = False,
    ) -> None:
        self.venue = venue
        self.tls = tls  # served over TLS: wss:// and https://
        self.host = host
        self.port = port
        self.faults = faults
        self.tradovate = tradovate  # contracts, accounts, penalty tickets (Tradovate only)
        self._hub = hub
        self._streamer = streamer

    def __repr__(self) -> str:
        return f"<Simulator {self.venue} {self.url} live={self.stats.connections_live}>"

    @property
    def config(self) -> SimConfig:
        return self._hub.config

    @property
    def seed(self) -> int:
        return self._hub.seed

    @property
    def stats(self) -> SimStats:
        return self._hub.stats

    @property
    def connections(self) -> list[Any]:
        """The live connections, oldest first (a fresh list on every access).

        :class:`AllTickConnection` or ``TradovateConnection`` objects, by venue.
        """
        return list(self._streamer.connections)

    @property
    def url(self) -> str:
        """The default endpoint: AllTick without a token (add ``?token=...``); Tradovate's
        ``/v1/websocket``."""
        return self.url_for(_DEFAULT_PATHS[self.venue])

    @property
    def replay_url(self) -> str:
        """Tradovate's market-replay socket."""
        return self.url_for(REPLAY_PATH)

    @property
    def rest_url(self) -> str:
        """Tradovate's REST base, ``http://HOST:PORT/v1`` (``https://`` over TLS)."""
        return "http" + self.url_for(REST_PATH)[2:]

    async def run_random_faults(self, mean: float) -> None:
        """Inject random faults (``SimConfig.random_faults`` style) until cancelled.

        For a caller that scripts faults first and turns random mode on later;
        the schedule is drawn from its own seed-derived stream.
        """
        await run_random_faults(self.faults, self._hub, mean, purpose="faults:manual")

    def url_for(self, path: str = DEFAULT_PATH) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{host}:{self.port}{path}"


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the simulator binds loopback addresses only, not {host!r}")


async def _over_tls(
    context: ssl.SSLContext,
    handler: Callable[[trio.abc.Stream], Awaitable[None]],
    stream: trio.SocketStream,
) -> None:
    """Serve one TCP connection through TLS (the handshake runs at the handler's first read)."""
    await handler(trio.SSLStream(stream, context, server_side=True, https_compatible=True))


async def _handle_tcp(hub: Hub, faults: Faults, rules: TokenRules, stream: trio.abc.Stream) -> None:
    hub.stats.tcp_accepted += 1
    ws = ServerWebSocket(stream, max_message_size=hub.config.max_message_size)
    try:
        if faults.take_hang_upgrade():
            hub.stats.closes["hang_upgrade"] += 1
            await ws.discard_until_closed()
            return
        request = None
        with trio.move_on_after(HANDSHAKE_TIMEOUT):
            request = await ws.receive_request()
        if request is None:
            return
        await serve_alltick(hub, faults, rules, ws, request.target)
    finally:
        await ws.aclose()


@asynccontextmanager
async def open_simulator(
    venue: str = "alltick",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: SimConfig | None = None,
    seed: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Simulator]:
    """Run a simulated ``venue`` on ``host:port`` (0 = any free port) for the ``async with``.

    ``seed`` makes every random choice (prices, jitter, wire variants, random
    faults) repeatable. ``ssl_context``: a server-side context with the certificate
    loaded (``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)`` then
    ``load_cert_chain``) serves everything over TLS, ``wss://`` and ``https://``.
    Raises ``ValueError`` for an unknown venue or a non-loopback host.
    """
    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r}; the simulator speaks {', '.join(VENUES)}")
    _check_loopback(host)
    config = config if config is not None else SimConfig()
    epoch = config.epoch if config.epoch is not None else time.time() - trio.current_time()
    hub = Hub(config, seed, epoch, venue)
    faults = Faults(hub)
    streamer: AllTickStreamer | TradovateStreamer
    tradovate: TradovateVenue | None = None
    if venue == "tradovate":
        tradovate = TradovateVenue(hub, faults)
        market = TradovateMarket(hub, tradovate.ticks)
        streamer = TradovateStreamer(hub, faults, tradovate.contracts, market)
        handler: Any = partial(serve_tradovate, hub, faults, tradovate, market)
    else:
        streamer = AllTickStreamer(hub, faults)
        handler = partial(_handle_tcp, hub, faults, TokenRules(hub))
    if ssl_context is not None:
        handler = partial(_over_tls, ssl_context, handler)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    sim = Simulator(
        venue, host, bound_port, hub, faults, streamer, tradovate, tls=ssl_context is not None
    )
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(streamer.run)
            if tradovate is not None:
                nursery.start_soon(tradovate.desk.run)
            if config.random_faults > 0:
                nursery.start_soon(run_random_faults, faults, hub, config.random_faults)
            await nursery.start(trio.serve_listeners, handler, listeners)
            try:
                yield sim
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if body_error is not None:
            _, rest = group.split(lambda e: e is body_error)
            if rest is None:
                raise body_error from None
        raise
