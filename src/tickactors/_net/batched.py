"""A batched transport: WebSocket straight on a Trio stream and wsproto, no reader task.

trio-websocket runs a reader task that puts every message into a memory
channel, and each ``send`` on that channel yields to the scheduler, so the
connection's reader wakes for every message or two (docs/performance.md: 1.5
messages per wake-up). Here the connection's reader *is* the socket reader:
:meth:`BatchedTransport.receive_many` reads one chunk of up to 64 KiB, feeds it
to wsproto and turns every event in it into messages, so one wake-up carries
every frame that arrived together, often hundreds.

Theory of operation
-------------------
The transport holds a list of complete messages, a list of the parts of a
message still being assembled, a buffer of control frames to send (pongs,
close replies) and, once the connection has ended, the code and reason it
ended with (``_ended``). Receiving:

* buffered messages are returned first (after a checkpoint), up to the
  caller's maximum;
* otherwise one chunk is read, and *all* its frames are handled before
  anything is returned (:meth:`BatchedTransport._receive`), see below. On a
  plain TCP stream the read waits until the socket is readable and then reads
  once (in :meth:`BatchedTransport.receive_many` itself): Trio's ``receive_some`` tries first,
  catches ``BlockingIOError`` when nothing is there yet (the usual case below
  full speed) and goes through the scheduler twice; a TLS stream is read by its
  own ``receive_some``;
* the control frames produced go out under the send lock before returning;
* once ended, every buffered message is still delivered; then each receive
  raises :class:`TransportClosed` with the code and reason. End of stream
  without a close frame is code 1006.

The receive side has a fast path and wsproto, split at frame boundaries. A
small scanner of our own (``_net/frames.py``) walks the chunk frame by frame. While
no fragmented message is open, every *plain* frame (FIN, RSV clear, text or
binary, unmasked, wholly in the buffer, within the size limit, and for text
valid UTF-8: ``bytes.decode`` is the validation) becomes a message right there,
in one loop. Every other frame -- control frames, fragments, compressed
frames, masked or reserved ones, invalid UTF-8, over the limit -- is handed
to wsproto *whole*, and its events are handled at once, in order with the
fast path's messages. Why this cannot drift from the protocol: wsproto keeps
state across frames only inside a message (the fragment's opcode and UTF-8
decoder, the deflate flag) and across compressed messages (the inflate
window); a plain frame outside a message is a whole uncompressed message, so
removing it from wsproto's input leaves wsproto's state exactly as it would
have been. wsproto always sees a sequence of whole frames, from a frame
boundary, so it parses them as it would the full stream. The fast path
decides no error: anything it does not take, wsproto judges. Two exceptions
keep the bytes in step: the start of a frame not yet complete stays in our
``_leftover`` until it is (frames up to 64 KiB and the size limit); a larger
frame streams into wsproto as it arrives, its remaining bytes (``_owed``) go to
wsproto before anything else is scanned. The handshake feeds wsproto the
101 response's head only, so frames right behind it reach the scanner too.
A property test (``tests/test_transport_batched.py``) feeds random frame
sequences, cut anywhere, through both paths and compares what comes out.

wsproto handles what the fast path leaves: text and binary messages are
assembled from their pieces, pings get a pong, pongs are ignored, a close
frame is answered and ends the connection, a message over ``max_message_size``
sends close 1009 and ends it. With ``deflate=True`` the client offers
permessage-deflate; compressed messages take wsproto's path (with
:class:`~tickactors._net.frames.Deflate`, which fixes wsproto's handling of a ping
between compressed fragments and inflates under a bound: a compressed message that
would inflate beyond ``max_message_size`` bytes is refused with 1009 as soon as its
output reaches the limit, never inflated whole).

wsproto's quirk: a frame it cannot parse (bad framing: 1002, invalid UTF-8 in
a text message: 1007) is *not* raised; it comes out as a ``CloseConnection``
event with the local error's code, and the connection state stays OPEN. A
genuine close from the peer moves the state to REMOTE_CLOSING (or CLOSED when
we closed first) before the event is yielded, so the state tells the two apart:
a "close" seen while still OPEN is our own verdict, and we send that close.

Sending builds the frame and writes it under one ``StrictFIFOLock`` (shared
with the control frames above) within ``send_timeout``. A write cut short may
leave half a frame on the wire, so after one the transport refuses to send
again. Closing sends close 1000 and waits up to ``close_timeout`` for the
peer's (if polite), then always drops the stream.

Connecting (:func:`connect_batched`) follows :func:`connect_websocket`'s
contract: one deadline over TCP (TLS for ``wss://``, the TLS handshake
included) and the upgrade, the stream closed on any failure, every failure a
:class:`~tickactors.ConnectError` with the token masked (or a
:class:`~tickactors.CertificateError` for a certificate that cannot be
verified); the URL never appears in a message, since its query may carry the
token. The TCP and TLS part is :func:`~tickactors._net.connecting.connect_within`,
shared with the trio-websocket transport; the upgrade is
:func:`~tickactors._net.handshake.client_handshake`, which hands wsproto the
101 response's head only and returns the bytes behind it, so that the first
frames reach the scanner at a frame boundary (``initial``).
"""

from __future__ import annotations

import os
import ssl
from typing import Final, cast

import trio
from trio.lowlevel import wait_readable
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import ProtocolError, RemoteProtocolError

from .._secret import Secret
from .connecting import Endpoint, Stream, connect_within
from .frames import frame_end, take_plain
from .handshake import client_handshake
from .transport import Transport, TransportClosed, discard_unsent

RECEIVE_SIZE: Final = 65536
MAX_MESSAGE_SIZE: Final = 1 << 20

_OPEN: Final = ConnectionState.OPEN
_REMOTE_CLOSING: Final = ConnectionState.REMOTE_CLOSING
_CLOSED: Final = ConnectionState.CLOSED
_STREAM_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError)


class BatchedTransport:
    """:class:`Transport` over a Trio stream, framed by a wsproto connection already open.

    ``max_message_size`` bounds an assembled message: bytes for binary messages,
    characters for text (wsproto decodes as the pieces arrive), as trio-websocket does.
    ``send_timeout`` bounds each send (and each flush of control frames),
    ``close_timeout`` the wait for the peer's close frame. ``initial``: bytes the
    server sent right behind its 101 response, handled before anything is read.
    ``fast_path=False`` hands every frame to wsproto (the property test compares
    the two; there is no other reason to turn it off).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        connection: Connection,
        *,
        send_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_message_size: int = MAX_MESSAGE_SIZE,
        initial: bytes = b"",
        fast_path: bool = True,
    ) -> None:
        self._stream = stream
        self._conn = connection
        self._send_timeout = send_timeout
        self._close_timeout = close_timeout
        self._max_size = max_message_size
        self._lock = trio.StrictFIFOLock()
        self._messages: list[str | bytes] = []
        self._parts: list[str | bytes] = []  # pieces of the message being assembled
        self._parts_size = 0
        self._outgoing = bytearray()  # control frames waiting for the lock
        self._ended: tuple[int | None, str | None, bool] | None = None  # code, reason, by us
        self._send_broken = False
        # The receive side (see the module docstring): wsproto sees whole frames only ...
        self._fast = fast_path
        self._leftover = b""  # the start of a frame not yet complete (ours, not wsproto's)
        self._owed = 0  # ... except a large frame still arriving: its bytes still due
        self._in_message = False  # wsproto holds the start of a fragmented message
        #: Plain TCP is read in :meth:`receive_many` itself; any other stream (TLS) by its
        #: ``receive_some``.
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None
        # The server may have sent frames right behind its 101 response.
        if initial:
            self._receive(initial)

    # -- receiving ---------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """The next message; :class:`TransportClosed` once the connection has ended."""
        return (await self.receive_many(1))[0]

    async def receive_many(self, max_messages: int) -> list[str | bytes]:
        """At least one message, at most ``max_messages``: those already assembled, else
        every message of the next chunk read (see the module docstring).

        Messages beyond ``max_messages`` stay for the next call, which returns them after
        a checkpoint without reading. Control frames produced meanwhile (pongs, the answer
        to a close) are sent before returning. Once the connection has ended, buffered
        messages are still returned; then :class:`TransportClosed` with the code and
        reason (1006 for a stream that ended without a close frame).
        """
        messages = self._messages
        if messages:
            if self._outgoing:
                await self._flush()
            else:
                await trio.lowlevel.checkpoint()
        else:
            sock = self._socket
            while not messages:
                if self._outgoing:
                    await self._flush()
                if self._ended is not None:
                    raise self._ended_error()
                try:
                    if sock is None:
                        data = await self._stream.receive_some(RECEIVE_SIZE)
                    else:
                        # Plain TCP, read here rather than in a method of its own: one
                        # coroutine less to resume and suspend on every wake-up
                        # (docs/performance.md, "Below full speed"). Wait until readable,
                        # then read once: Trio's ``SocketStream.receive_some`` tries to read
                        # first, and when nothing is there yet (the usual case below full
                        # speed) catches ``BlockingIOError``, waits, reads again and yields
                        # once more. The same errors come out: ``ClosedResourceError`` once
                        # the socket is closed (also while waiting), ``BrokenResourceError``
                        # for any other socket error.
                        await wait_readable(sock)
                        fd = sock.fileno()
                        if fd < 0:
                            raise trio.ClosedResourceError("the socket was closed")
                        try:
                            data = os.read(fd, RECEIVE_SIZE)
                        except BlockingIOError:
                            continue  # readable was a false alarm: wait again
                        except OSError as exc:
                            raise trio.BrokenResourceError(f"socket error: {exc}") from None
                except _STREAM_ERRORS as exc:
                    self._end(1006, f"connection lost: {type(exc).__name__}")
                    continue
                if not data:
                    self._end(1006, "connection lost without a close frame")
                    continue
                self._receive(cast(bytes, data))  # a SocketStream gives bytes
            if self._outgoing:
                await self._flush()
        if len(messages) <= max_messages:
            self._messages = []
            return messages
        batch = messages[:max_messages]
        del messages[:max_messages]
        return batch

    def _receive(self, data: bytes) -> None:
        """Turn received bytes into messages: plain frames here, every other frame by wsproto.

        wsproto is fed whole frames, so between frames its buffer is empty; the one
        exception is a frame larger than a read, whose remaining bytes (``_owed``) go
        to wsproto first when they arrive. A plain frame is only taken outside a
        fragmented message, so skipping it leaves wsproto's state as it was.
        """
        conn = self._conn
        owed = self._owed
        if owed:
            if len(data) <= owed:
                self._owed = owed - len(data)
                conn.receive_data(data)
                self._process()
                return
            self._owed = 0
            conn.receive_data(data[:owed])
            self._process()
            if self._ended is not None:
                return
            data = data[owed:]
        if self._leftover:
            data = self._leftover + data
            self._leftover = b""
        if not self._fast:
            conn.receive_data(data)
            self._process()
            return
        append = self._messages.append
        limit = self._max_size
        keep = min(RECEIVE_SIZE, limit)  # a frame larger than this streams through wsproto
        i = 0
        n = len(data)
        while i < n and self._ended is None:
            if not self._in_message:
                i = take_plain(data, i, append, limit)
                if i == n:
                    break
            end = frame_end(data, i)
            if end is None or (end > n and end - i <= keep):
                self._leftover = data[i:]  # wait for the rest of the frame
                break
            first = data[i]
            opcode = first & 0x0F
            if opcode == 1 or opcode == 2:  # text, binary: a message starts
                self._in_message = not first & 0x80
            elif opcode == 0 and first & 0x80:  # the last fragment
                self._in_message = False
            if end > n:
                self._owed = end - n
                end = n
            conn.receive_data(data[i:end])
            self._process()
            i = end

    def _process(self) -> None:
        """Handle every event wsproto has; stop at the first that ends the connection."""
        append = self._messages.append
        parts = self._parts
        limit = self._max_size
        try:
            for event in self._conn.events():
                if isinstance(event, Message):  # TextMessage or BytesMessage
                    data = event.data
                    if event.message_finished and not parts:
                        if len(data) > limit:
                            self._too_big(len(data))
                            return
                        append(data)
                    elif not self._piece(data, event.message_finished):
                        return
                elif isinstance(event, Ping):
                    if self._conn.state is _OPEN:
                        self._outgoing += self._conn.send(event.response())
                elif isinstance(event, CloseConnection):
                    self._close_frame(event)
                    return
                # a Pong needs nothing
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            code = hint.code if isinstance(hint, CloseConnection) else 1002
            self._fail(int(code), str(exc))

    def _piece(self, data: str | bytes, finished: bool) -> bool:
        """Add a piece to the message being assembled; False if that ended the connection."""
        parts = self._parts
        parts.append(data)
        self._parts_size += len(data)
        if self._parts_size > self._max_size:
            self._too_big(self._parts_size)
            return False
        if finished:
            if isinstance(data, str):
                self._messages.append("".join(cast(list[str], parts)))
            else:
                self._messages.append(b"".join(cast(list[bytes], parts)))
            parts.clear()
            self._parts_size = 0
        return True

    def _close_frame(self, event: CloseConnection) -> None:
        """A close event: the peer's close, or wsproto's verdict on a frame it could not
        parse (see "wsproto's quirk" in the module docstring); either ends the connection.

        The peer's close moved the state to REMOTE_CLOSING: answer it (the state becomes
        CLOSED). wsproto's verdict left the state OPEN: :meth:`_fail` sends that close.
        """
        state = self._conn.state
        if state is _REMOTE_CLOSING:
            self._outgoing += self._conn.send(event.response())
            self._end(int(event.code), event.reason)
            return
        reason = event.reason
        if state is _OPEN and event.code == 1009:  # only our Deflate says so: a bomb
            reason = f"a compressed message inflates beyond the limit of {self._max_size} bytes"
        self._fail(int(event.code), reason)

    def _too_big(self, size: int) -> None:
        """A message over ``max_message_size``: forget its parts, close with 1009."""
        self._parts.clear()
        self._parts_size = 0
        self._fail(1009, f"message of {size} or more exceeds the limit of {self._max_size}")

    def _fail(self, code: int, reason: str | None) -> None:
        """We end the connection: send close ``code`` if we still may, remember why."""
        if self._conn.state is _OPEN:
            self._outgoing += self._conn.send(CloseConnection(code=code, reason=reason))
        self._end(code, reason, by_us=True)

    def _end(self, code: int | None, reason: str | None, *, by_us: bool = False) -> None:
        """Remember why the connection ended, and whether we ended it; the first stays."""
        if self._ended is None:
            self._ended = (code, reason, by_us)

    def _ended_error(self) -> TransportClosed:
        """The error that says how the connection ended (it has)."""
        assert self._ended is not None
        code, reason, by_us = self._ended
        return TransportClosed(code, reason, by_us=by_us)

    async def _flush(self) -> None:
        """Send the buffered control frames; a stream that broke meanwhile ends the connection."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        try:
            with trio.fail_after(self._send_timeout):
                async with self._lock:
                    if not self._send_broken:
                        await self._send_all(data)
        except (*_STREAM_ERRORS, trio.TooSlowError) as exc:
            self._end(1006, f"connection lost: {type(exc).__name__}")

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: str) -> None:
        """Send one text message within ``send_timeout`` (``trio.TooSlowError`` beyond).

        Raises :class:`TransportClosed` once the connection has ended, when the stream
        breaks, and after an earlier send was interrupted (it may have left half a frame
        on the wire, so nothing more may follow it).
        """
        try:
            with trio.fail_after(self._send_timeout):
                async with self._lock:
                    if self._ended is not None or self._send_broken:
                        raise self._closed()
                    await self._send_all(self._conn.send(TextMessage(data=message)))
        except _STREAM_ERRORS as exc:
            self._end(1006, f"connection lost: {type(exc).__name__}")
            raise self._closed() from None

    async def _send_all(self, data: bytes) -> None:
        """Write ``data`` whole (the caller holds the lock).

        Anything that interrupts the write (a deadline, a broken stream) may leave half a
        frame on the wire: the flag stays set and nothing is sent on this stream again.
        """
        self._send_broken = True
        await self._stream.send_all(data)
        self._send_broken = False

    def _closed(self) -> TransportClosed:
        """The error a send raises once it may not send: why the connection ended."""
        if self._ended is not None:
            return self._ended_error()
        return TransportClosed(1006, "an earlier send was interrupted")

    # -- closing -----------------------------------------------------------------------

    async def aclose(self, *, polite: bool = True) -> None:
        """Close within ``close_timeout``, shielded from cancellation; never raises.

        ``polite`` (and the connection still open, no send interrupted): send close 1000
        and read until the peer's close frame, dropping any messages that come first.
        Either way the stream is then closed forcefully, so no socket outlives the call;
        impolitely, with a reset (``discard_unsent``): nothing still in the kernel's send
        queue reaches the peer later. Buffered messages are discarded: a closed transport
        delivers nothing more.
        """
        conn = self._conn
        polite = polite and self._ended is None and not self._send_broken
        self._end(1000, "closed locally", by_us=True)
        self._messages = []
        with trio.move_on_after(self._close_timeout if polite else 0) as scope:
            scope.shield = True
            if polite:
                try:
                    async with self._lock:
                        await self._send_all(conn.send(CloseConnection(code=1000)))
                    if self._leftover:  # the start of a frame: wsproto is at a boundary
                        conn.receive_data(self._leftover)
                        self._leftover = b""
                    while conn.state is not _CLOSED:  # wait for the peer's close frame
                        data = await self._stream.receive_some(RECEIVE_SIZE)
                        if not data:
                            break
                        conn.receive_data(cast(bytes, data))
                        for _ in conn.events():
                            pass  # messages after our close are dropped
                except (*_STREAM_ERRORS, trio.BusyResourceError, OSError, ProtocolError):
                    pass
        if not polite:
            discard_unsent(self._stream)
        await trio.aclose_forcefully(self._stream)


async def connect_batched(
    nursery: trio.Nursery,
    url: str,
    token: Secret | None,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
    *,
    deflate: bool = False,
) -> Transport:
    """Open a :class:`BatchedTransport` to ``url`` within ``connect_timeout`` seconds.

    Same contract as :func:`connect_websocket`; it starts no background task, so
    ``nursery`` is unused. Every failure closes the stream and becomes a
    :class:`ConnectError` with the token masked.

    ``deflate``: offer permessage-deflate (RFC 7692) in the handshake; if the server
    accepts, compressed messages are inflated. Off by default: it saves bandwidth on
    slow links but costs CPU per message, and compressed messages take wsproto's path,
    not the fast one. ``functools.partial(connect_batched, deflate=True)`` is a
    transport factory that offers it.
    """
    del nursery

    async def handshake(stream: Stream, endpoint: Endpoint) -> tuple[Connection, bytes]:
        return await client_handshake(
            stream,
            endpoint.host_header,
            endpoint.resource,
            deflate=deflate,
            max_message_size=MAX_MESSAGE_SIZE,
        )

    stream, (connection, initial) = await connect_within(
        url, token, ssl_context, connect_timeout, handshake
    )
    return BatchedTransport(stream, connection, initial=initial)
