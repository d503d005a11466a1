"""The client side of the WebSocket upgrade, for the batched transport.

One request, one response head, nothing more: wsproto sees the head only, and
whatever the server sent right behind its 101 goes back to the caller, so the
transport's frame scanner starts at a frame boundary.
"""

from __future__ import annotations

from typing import Final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, RejectConnection, Request

from .._core import connect_failures as causes
from .connecting import failed
from .frames import Deflate

RECEIVE_SIZE: Final = 65536
_MAX_RESPONSE_HEAD: Final = 65536


async def client_handshake(
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    deflate: bool = False,
    max_message_size: int = 1 << 20,
) -> tuple[Connection, bytes]:
    """Send the upgrade request, read until the answer; the open connection and what followed.

    wsproto only sees the response head (up to its blank line): the bytes after it
    are frames the server sent right behind its 101 response, and they go to the
    transport's scanner, so wsproto starts at a frame boundary. ``deflate``: offer
    permessage-deflate, inflating no message beyond ``max_message_size`` bytes
    (:class:`~tickactors._net.frames.Deflate`).
    """
    ws = WSConnection(ConnectionType.CLIENT)
    extensions = [Deflate(max_message_size=max_message_size)] if deflate else []
    await stream.send_all(ws.send(Request(host=host, target=resource, extensions=extensions)))
    received = b""
    while True:
        head_end = received.find(b"\r\n\r\n")
        if head_end < 0:
            if len(received) > _MAX_RESPONSE_HEAD:
                raise failed("the WebSocket handshake response is too long", causes.HANDSHAKE)
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise failed(
                    "the server closed the connection during the WebSocket handshake",
                    causes.HANDSHAKE,
                )
            received += data
            continue
        head, received = received[: head_end + 4], received[head_end + 4 :]
        ws.receive_data(head)
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                assert ws.connection is not None
                return ws.connection, received
            if isinstance(event, RejectConnection):
                status = event.status_code
                raise failed(f"handshake rejected with HTTP {status}", causes.http_cause(status))
