"""AllTick upgrade handling: path, token, then one :class:`AllTickConnection`.

:func:`serve_alltick` takes an upgrade request for ``/quote-b-ws-api`` or
``/quote-stock-b-ws-api`` (anything else: HTTP 404). The token comes from
the query string only. The handshake always completes; then a missing,
unknown or expired token gets ``{"ret":401,"msg":"token invalid","cmd_id":0,
...}`` and close frame 1008. Next, a token already holding
``max_connections_per_token`` live connections gets ``{"ret":429,"msg":"too
many connections","cmd_id":0,...}`` and close frame 1008 "too many
connections" (see :mod:`._alltick_tokens`). Next, an armed ``accept_then_close`` fault
closes at once with close frame 1000 "accept then close" (the sim's pick: a
clean close, the kind that tempts a client to reset its backoff). Otherwise
the connection runs until either side ends it. Tokens are never logged.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import trio

from . import _alltick_protocol as proto
from ._alltick_connection import AllTickConnection
from ._alltick_tokens import TokenRules
from ._connection import CLOSE_TIMEOUT
from ._faults import Faults
from ._hub import Hub
from ._wsio import OP_TEXT, ServerWebSocket


async def serve_alltick(
    hub: Hub, faults: Faults, rules: TokenRules, ws: ServerWebSocket, target: str
) -> None:
    """Handle one upgrade request for ``target`` (path and query) to its end."""
    path, _, query = target.partition("?")
    if path not in proto.PATHS:
        await ws.reject(404)
        return
    token = parse_qs(query).get("token", [""])[0]
    if not await ws.accept():
        return
    hub.stats.connections_opened += 1
    if not hub.token_accepted(token):
        await _refuse(hub, ws, proto.TOKEN_INVALID, "token_rejected")
        return
    # No checkpoint from here to the connection's registration in the hub (the first
    # lines of ``run``), so two handshakes cannot both take the last slot.
    if not rules.admits_connection(token):
        await _refuse(hub, ws, proto.TOO_MANY_CONNECTIONS, "connection_limit")
        return
    if faults.take_accept_then_close():
        await _send_and_close(hub, ws, [], 1000, "accept then close", "accept_then_close")
        return
    await AllTickConnection(hub, faults, ws, token, path, rules).run()


async def _refuse(hub: Hub, ws: ServerWebSocket, answer: tuple[int, str], why: str) -> None:
    """Send ``answer`` (``cmd_id`` 0), then close frame 1008 with its text as the reason."""
    await _send_and_close(hub, ws, [proto.encode_answer(*answer, 0)], 1008, answer[1], why)


async def _send_and_close(
    hub: Hub, ws: ServerWebSocket, frames: list[bytes], code: int, reason: str, why: str
) -> None:
    hub.stats.frames_sent += await ws.send_frames((OP_TEXT, f) for f in frames)
    await ws.send_close(code, reason)
    hub.stats.closes[why] += 1
    with trio.move_on_after(CLOSE_TIMEOUT):
        while await ws.receive_message() is not None:
            pass
