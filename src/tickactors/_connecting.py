"""Opening a WebSocket's stream under one deadline, shared by every transport.

Both transports connect the same way: parse the URL, open TCP (TLS for
``wss://``, certificates verified by default), run their own handshake, all
within one ``trio.fail_after``; close the stream on any failure; turn every
failure into a :class:`~tickactors.ConnectError` whose message has the token
masked and never holds the URL (its query carries the token).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import attrs
import trio
import trio_websocket
from wsproto.utilities import ProtocolError

from ._errors import ConnectError
from ._secret import Secret, redact

T = TypeVar("T")
Stream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


@attrs.frozen
class Endpoint:
    """Where a ``ws://`` or ``wss://`` URL points."""

    host: str
    port: int
    secure: bool
    resource: str  # path and query: the query may hold the token, never print it

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname or "", parts.port or (443 if secure else 80), secure, resource)

    @property
    def host_header(self) -> str:
        return self.host if self.port in (80, 443) else f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"Endpoint({self.host!r}, {self.port}, secure={self.secure})"


async def open_stream(endpoint: Endpoint, ssl_context: ssl.SSLContext | None) -> Stream:
    """TCP, or TLS over TCP for a secure endpoint (default context: verify certificates)."""
    if endpoint.secure:
        return await trio.open_ssl_over_tcp_stream(
            endpoint.host,
            endpoint.port,
            ssl_context=ssl_context or ssl.create_default_context(),
            https_compatible=True,
        )
    return await trio.open_tcp_stream(endpoint.host, endpoint.port)


async def connect_within(
    url: str,
    token: Secret | None,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
    handshake: Callable[[Stream, Endpoint], Awaitable[T]],
) -> tuple[Stream, T]:
    """Open the stream and run ``handshake`` on it, all within ``connect_timeout``."""
    endpoint = Endpoint.from_url(url)
    stream: Stream | None = None
    try:
        with trio.fail_after(connect_timeout):
            stream = await open_stream(endpoint, ssl_context)
            result = await handshake(stream, endpoint)
    except BaseException as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        error = connect_error(exc, token, connect_timeout)
        if error is None:
            raise
        raise error from None
    return stream, result


def connect_error(
    exc: BaseException, token: Secret | None, connect_timeout: float
) -> ConnectError | None:
    """The :class:`ConnectError` for a failed connect, or None for anything else."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        return ConnectError(f"no WebSocket handshake within {connect_timeout:g} s")
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return ConnectError(f"handshake rejected with HTTP {exc.status_code}")
    if isinstance(exc, ProtocolError | trio_websocket.HandshakeError):
        return ConnectError(f"invalid handshake response: {redact(describe(exc), token)}")
    if isinstance(exc, OSError | ssl.SSLError | trio.BrokenResourceError):
        detail = describe(exc)
        cause = exc.__cause__  # trio wraps an ssl.SSLError in BrokenResourceError ...
        if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # ... and refused connects in a group
        if cause is not None:
            detail += f" ({describe(cause)})"
        return ConnectError(f"cannot connect: {redact(detail, token)}")
    return None


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
