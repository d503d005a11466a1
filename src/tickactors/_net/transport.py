"""The transport: a small interface between the connection actor and a WebSocket library.

The connection actor needs four things of a WebSocket: open it under a
deadline, receive a message, send a message under a deadline, close it. This
module names that interface (:class:`Transport`) and gives the default
implementation on trio-websocket. A faster transport (issue: batched
transport) or a fake one in tests plugs in behind the same
:data:`TransportFactory`.

Nothing here waits forever. trio-websocket's own connect timeout does not fire
when a server accepts TCP and never answers the upgrade, so connecting runs
under our own ``trio.fail_after``; sends run under one too (a false-alive
socket can fill the kernel buffer and block a send for ever); closing gives
the peer ``close_timeout`` to answer the close frame and then drops the
stream. Receiving has no deadline of its own: the staleness detector cancels
a connection whose messages stop.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio
import trio_websocket

from .._errors import ConnectError
from .._secret import Secret
from .connecting import Endpoint, Stream, connect_error, connect_within


class TransportClosed(Exception):
    """The WebSocket closed: by the peer (with its code and reason), by a broken stream
    (code 1006, or None), or by us (``by_us``: we refused what the peer sent, 1002, 1007
    or 1009, or we closed it). The batched transport (the default) sets ``by_us``; the
    trio-websocket one cannot tell and leaves it False."""

    def __init__(self, code: int | None, reason: str | None, *, by_us: bool = False) -> None:
        self.code = code
        self.reason = reason
        self.by_us = by_us
        who = " by us" if by_us else ""
        super().__init__(f"connection closed{who} (code {code}, reason {reason!r})")

    @property
    def lost(self) -> bool:
        """Whether the connection was lost without a close frame (code 1006, or none)."""
        return self.code is None or self.code == 1006


class Transport(Protocol):
    """One open WebSocket connection."""

    async def receive(self) -> str | bytes:
        """The next message; raises :class:`TransportClosed` when the connection ends."""

    async def receive_many(self, max_messages: int) -> list[str | bytes]:
        """At least one message, and every further one already buffered (up to ``max_messages``).

        This is how ticks move in batches: one wake-up of the reader per run of frames.
        """

    async def send(self, message: str) -> None:
        """Send one text message; raises :class:`TransportClosed` or ``trio.TooSlowError``."""

    async def aclose(self, *, polite: bool = True) -> None:
        """Close, bounded in time; never raises.

        ``polite``: send a close frame and give the peer a moment to answer; otherwise
        drop the stream at once (a stale peer will not answer anyway) with a reset
        (:func:`discard_unsent`): what the kernel still held to send is thrown away.
        """


def discard_unsent(stream: Any) -> None:
    """Make the socket under ``stream`` (a ``SocketStream``, or a stream over one, such as
    an ``SSLStream``) reset on close (``SO_LINGER`` 0) instead of closing gracefully.

    A graceful close of a socket whose peer went silent leaves what was written to it in
    the kernel, retransmitted until the socket times out (minutes): if the path heals
    meanwhile, it reaches the venue after all. An order the feed already failed with
    ``ConnectionLostError`` would then be placed, seconds later, on a connection nobody
    reads (``tests/test_netem.py`` saw it land 0.1 s after the path healed). Reset, the
    kernel forgets it. What the venue had already received before the silence is beyond
    anyone's reach: such a request's outcome stays unknown.
    """
    while stream is not None:
        raw = getattr(stream, "socket", None)
        if raw is not None:
            with contextlib.suppress(OSError, AttributeError):
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        stream = getattr(stream, "transport_stream", None)


TransportFactory = Callable[
    [trio.Nursery, str, Secret | None, ssl.SSLContext | None, float], Awaitable[Transport]
]
"""``open_feed(transport_factory=...)``: ``await factory(nursery, url, token, ssl_context,
connect_timeout)`` opens a :class:`Transport` (``connect_batched``, ``connect_websocket``)
whose background tasks live in ``nursery``; ``token`` is only for masking error messages."""


class WebSocketTransport:
    """:class:`Transport` over a trio-websocket connection."""

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        stream: trio.abc.AsyncResource | None = None,
        *,
        send_timeout: float = 10.0,
        close_timeout: float = 2.0,
    ) -> None:
        self._ws = ws
        self._stream = stream
        self._send_timeout = send_timeout
        self._close_timeout = close_timeout
        # Private to trio-websocket (checked with 0.12): its queue of received messages.
        queued = getattr(ws, "_recv_channel", None)
        self._queued = queued if isinstance(queued, trio.MemoryReceiveChannel) else None

    async def receive(self) -> str | bytes:
        try:
            message: str | bytes = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None
        return message

    async def receive_many(self, max_messages: int) -> list[str | bytes]:
        messages = [await self.receive()]
        # trio-websocket's reader task queues messages in a memory channel; take what is
        # already there without another trip through the scheduler.
        queued = self._queued
        if queued is not None:
            try:
                while len(messages) < max_messages:
                    messages.append(queued.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                pass
        return messages

    async def send(self, message: str) -> None:
        try:
            with trio.fail_after(self._send_timeout):
                await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def aclose(self, *, polite: bool = True) -> None:
        if not polite:
            discard_unsent(self._stream)
        # trio-websocket closes the socket in a ``finally`` even when cancelled, so a
        # zero deadline still releases it.
        with trio.move_on_after(self._close_timeout if polite else 0) as scope:
            scope.shield = True
            await self._ws.aclose()
        # When the peer closed first, trio-websocket leaves the socket to its reader
        # task, which the caller is about to cancel: close it here, always.
        if self._stream is not None:
            await trio.aclose_forcefully(self._stream)


def _closed(exc: trio_websocket.ConnectionClosed) -> TransportClosed:
    reason = exc.reason
    if reason is None:
        return TransportClosed(None, None)
    return TransportClosed(reason.code, reason.reason)


async def connect_websocket(
    nursery: trio.Nursery,
    url: str,
    token: Secret | None,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
) -> Transport:
    """Open a trio-websocket connection to ``url`` within ``connect_timeout`` seconds.

    We open the TCP (and TLS) stream ourselves and hand it to trio-websocket, so that
    a connect that fails or times out half-way always closes its socket, and so that
    trio-websocket never logs the URL (whose query holds the token). Every failure
    becomes a :class:`ConnectError` whose message has the token masked.

    trio-websocket reports an HTTP rejection of the upgrade by raising
    ``ConnectionRejected`` in its reader task, not to the caller. So the reader runs in
    a nursery of ours (hosted by a task in ``nursery``), and what it raises before the
    handshake completes becomes a :class:`ConnectError` like every other failure.
    """
    transport: Transport = await nursery.start(
        _host_websocket, url, token, ssl_context, connect_timeout
    )
    return transport


async def _host_websocket(
    url: str,
    token: Secret | None,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
    *,
    task_status: trio.TaskStatus[Transport] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Connect, hand the transport over, then host trio-websocket's tasks until it ends."""
    started = False
    error: ConnectError | None = None
    try:
        async with trio.open_nursery() as tasks:

            async def handshake(
                stream: Stream, endpoint: Endpoint
            ) -> trio_websocket.WebSocketConnection:
                return await trio_websocket.wrap_client_stream(
                    tasks,
                    stream,
                    endpoint.host_header,
                    endpoint.resource,
                    message_queue_size=256,
                    receive_buffer_size=65536,
                )

            stream, ws = await connect_within(url, token, ssl_context, connect_timeout, handshake)
            task_status.started(WebSocketTransport(ws, stream))
            started = True
    except BaseExceptionGroup as group:
        if started:
            raise
        error = _connect_failure(group, token, connect_timeout)
        if error is None:
            raise
    if error is not None:  # raised out here: no __context__ leads to trio-websocket's errors
        raise error


def _connect_failure(
    group: BaseExceptionGroup[BaseException], token: Secret | None, connect_timeout: float
) -> ConnectError | None:
    """The ConnectError among a failed connect's exceptions; None if anything else is there."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    errors = [connect_error(leaf, token, connect_timeout) for leaf in leaves]
    if not errors or any(error is None for error in errors):
        return None
    return errors[0]
