"""The server end of one WebSocket, on wsproto over a trio socket stream.

The simulator needs things a polite WebSocket library will not do: answer
an upgrade never, drop a connection without a close frame, write malformed
frames, push thousands of frames with one ``send_all``. So it drives wsproto
itself:

- **Inbound**: wsproto parses the HTTP upgrade and every client frame; pings
  are answered, fragments joined, a client close is answered and ends the
  reading. Oversized messages close with 1009.
- **Outbound data frames** are framed here (server frames are unmasked and
  need no state: FIN bit, opcode, length, payload), so a batch of frames is
  one ``send_all``. Close frames go through wsproto so its state stays right.
  One lock orders all writes.
- **abort()** sets ``SO_LINGER`` to zero and closes the socket: the peer sees a
  TCP reset, never a close frame (the sim's "TCP abort").

The stream is TCP, or TLS over TCP (``abort`` resets the TCP underneath).
A listener that sniffed the request head itself (the Tradovate venue serves
REST and WebSocket on one port) passes the bytes it read as ``initial``.

Transport errors never escape: sends return ``False`` and reads return
``None`` once the connection is gone.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections import deque
from collections.abc import Iterable
from typing import cast

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

OP_TEXT = 0x1
OP_BINARY = 0x2
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final WebSocket frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


class ServerWebSocket:
    """One accepted TCP stream speaking the server side of RFC 6455."""

    def __init__(
        self, stream: trio.abc.Stream, *, max_message_size: int = 1 << 20, initial: bytes = b""
    ) -> None:
        self._stream = stream
        self._initial = initial  # bytes already read off the stream (a sniffed request head)
        self._ws = WSConnection(ConnectionType.SERVER)
        self._lock = trio.Lock()
        self._events: deque[Event] = deque()
        self._parts: list[str | bytes] = []
        self._size = 0
        self._max = max_message_size
        self.gone = False
        self.peer_close_code: int | None = None
        self.closed = trio.Event()  # the peer closed (close frame or EOF) or we aborted

    @property
    def is_open(self) -> bool:
        return not self.gone and self._ws.state is ConnectionState.OPEN

    async def _fill(self) -> bool:
        """Read once into wsproto; False when the stream ended."""
        if self.gone:
            return False
        data: bytes | bytearray
        if self._initial:
            data, self._initial = self._initial, b""
        else:
            try:
                data = await self._stream.receive_some(65536)
            except _GONE:
                data = b""
        try:
            self._ws.receive_data(cast(bytes, data) or None)  # a bytearray over TLS: fine
        except RemoteProtocolError as exc:
            if exc.event_hint is not None:
                with contextlib.suppress(LocalProtocolError):
                    await self._write(self._ws.send(exc.event_hint))
            self._mark_gone()
            return False
        except LocalProtocolError:  # data after the connection closed
            self._mark_gone()
            return False
        self._events.extend(self._ws.events())
        if not data:
            self._mark_gone()
            return bool(self._events)
        return True

    def _mark_gone(self) -> None:
        self.gone = True
        self.closed.set()

    async def _write(self, data: bytes) -> bool:
        if self.gone:
            return False
        try:
            await self._stream.send_all(data)
        except _GONE:
            self._mark_gone()
            return False
        return True

    async def receive_request(self) -> Request | None:
        """Wait for the HTTP upgrade request; None if the peer left first."""
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Request):
                    return event
            if not await self._fill():
                return None

    async def discard_until_closed(self) -> None:
        """Read and ignore everything until the peer leaves (a hung upgrade)."""
        while not self.gone:
            try:
                data = await self._stream.receive_some(65536)
            except _GONE:
                data = b""
            if not data:
                self._mark_gone()

    async def accept(self) -> bool:
        async with self._lock:
            return await self._write(self._ws.send(AcceptConnection()))

    async def reject(self, status: int) -> None:
        async with self._lock:
            await self._write(self._ws.send(RejectConnection(status_code=status)))

    async def receive_message(self) -> str | bytes | None:
        """The next complete text (``str``) or binary (``bytes``) message; None once closed."""
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, (TextMessage, BytesMessage)):
                    self._parts.append(
                        event.data if isinstance(event.data, str) else bytes(event.data)
                    )
                    self._size += len(event.data)
                    if self._size > self._max:
                        await self.send_close(1009, "message too big")
                        self._mark_gone()
                        return None
                    if event.message_finished:
                        parts, self._parts, self._size = self._parts, [], 0
                        if isinstance(event, TextMessage):
                            return "".join(p for p in parts if isinstance(p, str))
                        return b"".join(p for p in parts if isinstance(p, bytes))
                elif isinstance(event, Ping):
                    async with self._lock:
                        if self.is_open:
                            await self._write(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.peer_close_code = event.code
                    async with self._lock:
                        if not self.gone and self._ws.state is ConnectionState.REMOTE_CLOSING:
                            await self._write(self._ws.send(event.response()))
                    self.closed.set()
                    return None
            if not await self._fill():
                return None

    async def send_frames(self, frames: Iterable[tuple[int, bytes]]) -> int:
        """Write data frames in one go; returns how many went out (0 if closed)."""
        async with self._lock:
            if not self.is_open:
                return 0
            chunks = [encode_frame(op, payload) for op, payload in frames]
            if not chunks or not await self._write(b"".join(chunks)):
                return 0
            return len(chunks)

    async def send_close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (the peer's answer arrives via ``receive_message``)."""
        async with self._lock:
            if self.is_open:
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))

    def abort(self) -> None:
        """Reset the TCP connection now: no close frame, no FIN handshake (nor TLS close)."""
        stream = self._stream
        while isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        if isinstance(stream, trio.SocketStream):
            sock = stream.socket
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        self._mark_gone()

    async def aclose(self) -> None:
        """Close the TCP stream (FIN) without waiting."""
        self._mark_gone()
        await trio.aclose_forcefully(self._stream)
