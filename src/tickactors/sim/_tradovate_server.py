"""The Tradovate venue's TCP handler: REST or WebSocket on one port, then the socket's life.

Theory of operation
-------------------
:func:`serve_tradovate` reads the first HTTP request head with h11 (10 s
deadline, else the socket is closed). Not a WebSocket upgrade -> REST
(``_tradovate_rest``) on that connection, until the connection ends or a
later request on it asks for an upgrade (keep-alive, as Tradovate's JS
tutorial does). An upgrade, first or later -> the bytes of its head and
whatever followed are handed to a :class:`._wsio.ServerWebSocket`, which
parses the head again with wsproto:

- an armed ``hang_upgrade`` takes it first (never answered; only upgrades
  count, REST calls never hang);
- paths (case-insensitive, trailing ``/`` and query ignored):
  ``/v1/websocket`` is the live/demo/market-data socket, ``/replay/v1/websocket``
  the replay socket; anything else gets HTTP 404;
- the handshake completes; an armed ``accept_then_close`` sends ``o``, then
  ``c[1000,"accept then close"]`` and close frame 1000 (the sim's pick: the
  clean-looking close that tempts a client to reset its backoff);
- otherwise a :class:`._tradovate_connection.TradovateConnection` runs until
  either side ends it. The token arrives later, in ``authorize``.
"""

from __future__ import annotations

from typing import Final

import h11
import trio

from . import _tradovate_protocol as proto
from ._connection import CLOSE_TIMEOUT
from ._faults import Faults
from ._hub import Hub
from ._tradovate_connection import TradovateConnection
from ._tradovate_market import TradovateMarket
from ._tradovate_rest import is_upgrade, next_event, request_bytes, serve_rest
from ._tradovate_state import TradovateVenue
from ._wsio import OP_TEXT, ServerWebSocket

HANDSHAKE_TIMEOUT: Final = 10.0
WS_PATH: Final = "/v1/websocket"
REPLAY_PATH: Final = "/replay/v1/websocket"
REST_PATH: Final = "/v1"
_ROLES: Final = {WS_PATH: False, REPLAY_PATH: True}


async def _sniff(stream: trio.abc.Stream, conn: h11.Connection, raw: bytearray) -> h11.Request:
    """Read until one request head is parsed; ``raw`` collects every byte read."""

    class _Recorder:
        async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
            data = await stream.receive_some(max_bytes)
            raw.extend(data)
            return data

    event = await next_event(_Recorder(), conn)
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("no request")
    return event


async def serve_tradovate(
    hub: Hub,
    faults: Faults,
    venue: TradovateVenue,
    market: TradovateMarket,
    stream: trio.abc.Stream,
) -> None:
    """Handle one TCP connection to its end (see the module docstring)."""
    hub.stats.tcp_accepted += 1
    try:
        conn = h11.Connection(h11.SERVER)
        raw = bytearray()
        request: h11.Request | None = None
        with trio.move_on_after(HANDSHAKE_TIMEOUT):
            try:
                request = await _sniff(stream, conn, raw)
            except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
        if request is None:
            return
        initial = bytes(raw)
        if not is_upgrade(request):
            request = await serve_rest(venue, faults, stream, conn, request)
            if request is None:
                return
            initial = request_bytes(request, conn)
        limit = hub.config.max_message_size
        ws = ServerWebSocket(stream, max_message_size=limit, initial=initial)
        if faults.take_hang_upgrade():
            hub.stats.closes["hang_upgrade"] += 1
            await ws.discard_until_closed()
            return
        upgrade = await ws.receive_request()
        if upgrade is None:
            return
        await _serve_socket(hub, faults, venue, market, ws, upgrade.target)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_socket(
    hub: Hub,
    faults: Faults,
    venue: TradovateVenue,
    market: TradovateMarket,
    ws: ServerWebSocket,
    target: str,
) -> None:
    path = target.partition("?")[0].rstrip("/").lower()
    if path not in _ROLES:
        await ws.reject(404)
        return
    if not await ws.accept():
        return
    hub.stats.connections_opened += 1
    if faults.take_accept_then_close():
        frames = [proto.OPEN, proto.close_frame(1000, "accept then close")]
        hub.stats.frames_sent += await ws.send_frames((OP_TEXT, f) for f in frames)
        await ws.send_close(1000, "accept then close")
        hub.stats.closes["accept_then_close"] += 1
        with trio.move_on_after(CLOSE_TIMEOUT):
            while await ws.receive_message() is not None:
                pass
        return
    await TradovateConnection(hub, faults, venue, market, ws, path, _ROLES[path]).run()
