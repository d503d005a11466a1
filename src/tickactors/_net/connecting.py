"""Opening a WebSocket's stream under one deadline, shared by every transport.

Both transports connect the same way: parse the URL, open TCP (TLS for
``wss://``, certificates verified by default), run their own handshake, all
within one ``trio.fail_after``; close the stream on any failure; turn every
failure into a :class:`~tickactors.ConnectError` whose message has the token
masked and never holds the URL (its query carries the token).

The TLS handshake runs here, before the WebSocket upgrade, so that both
transports see a failed certificate the same way (trio-websocket would
otherwise meet it in its background reader and only time out). A
certificate that cannot be verified becomes a
:class:`~tickactors.CertificateError`: the supervisor ends the feed on it,
because retrying cannot fix a CA nobody told us to trust.

Every :class:`~tickactors.ConnectError` also says what failed (``cause``: ``http_404``,
``dns_not_found``, ``refused``, ``timeout``, ...) and whether that looks permanent
(``permanent``): :func:`connect_error` finds the fact (the HTTP status, the resolver's
error code behind trio's wrapping), ``_core/connect_failures.py`` decides what it means.
A host name that does not resolve is ``socket.gaierror`` from ``getaddrinfo``:
``EAI_NONAME`` (NXDOMAIN) is permanent, ``EAI_AGAIN`` (no answer) is not.

The error is raised outside the ``except`` block that caught the original,
so neither ``__cause__`` nor ``__context__`` leads to an exception (or a
frame) that may hold the URL, and ``traceback.format_exception`` prints our
message alone.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import attrs
import trio
import trio_websocket
from wsproto.utilities import ProtocolError

from .._core import connect_failures as causes
from .._errors import CertificateError, ConnectError
from .._secret import Secret, redact

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
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
    """TCP, or TLS over TCP for a secure endpoint (default context: verify certificates).

    The TLS handshake is done before returning, so a certificate problem shows here.
    """
    if endpoint.secure:
        stream = await trio.open_ssl_over_tcp_stream(
            endpoint.host,
            endpoint.port,
            ssl_context=ssl_context or ssl.create_default_context(),
            https_compatible=True,
        )
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream
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
    error: ConnectError | None = None
    try:
        with trio.fail_after(connect_timeout):
            stream = await open_stream(endpoint, ssl_context)
            result = await handshake(stream, endpoint)
    except BaseException as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        error = connect_error(exc, token, connect_timeout, endpoint)
        if error is None:
            raise
    if error is not None:  # raised out here: no __context__ leads to the URL
        raise error
    assert stream is not None
    return stream, result


def connect_error(
    exc: BaseException,
    token: Secret | None,
    connect_timeout: float,
    endpoint: Endpoint | None = None,
) -> ConnectError | None:
    """The :class:`ConnectError` for a failed connect, or None for anything else.

    Its ``cause`` and ``permanent`` say what failed and whether retrying may heal it
    (:func:`failure_cause`; the decision is ``_core/connect_failures.py``'s).
    """
    if isinstance(exc, ConnectError):
        return exc
    failure = certificate_failure(exc)
    if failure is not None:
        where = "the venue" if endpoint is None else f"{endpoint.host}:{endpoint.port}"
        return certificate_error(where, failure, token)
    if isinstance(exc, trio.TooSlowError):
        return failed(f"no WebSocket handshake within {connect_timeout:g} s", causes.TIMEOUT)
    if isinstance(exc, trio_websocket.ConnectionRejected):
        status = exc.status_code
        return failed(f"handshake rejected with HTTP {status}", causes.http_cause(status))
    if isinstance(exc, ProtocolError | trio_websocket.HandshakeError):
        return failed(
            f"invalid handshake response: {redact(describe(exc), token)}", causes.HANDSHAKE
        )
    if isinstance(exc, OSError | ssl.SSLError | trio.BrokenResourceError):
        detail = describe(exc)
        cause = exc.__cause__  # trio wraps an ssl.SSLError in BrokenResourceError ...
        if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # ... and refused connects in a group
        if cause is not None:
            detail += f" ({describe(cause)})"
        return failed(f"cannot connect: {redact(detail, token)}", failure_cause(exc))
    return None


def failed(message: str, cause: causes.Cause) -> ConnectError:
    """A :class:`ConnectError` with ``message``, saying what ``cause`` says."""
    return ConnectError(message, cause=cause.name, permanent=cause.permanent)


def failure_cause(exc: BaseException) -> causes.Cause:
    """The cause of a socket-level connect failure: what the resolver, the TCP connect or
    TLS said, found behind ``exc`` (trio chains and groups them)."""
    dns = _behind(exc, socket.gaierror)
    if dns is not None:
        return causes.DNS_NOT_FOUND if dns.errno in _NAME_NOT_FOUND else causes.DNS_FAILED
    if _behind(exc, ConnectionRefusedError) is not None:
        return causes.REFUSED
    if _behind(exc, ssl.SSLError) is not None:
        return causes.TLS
    return causes.NETWORK


#: ``getaddrinfo`` errors that mean "no such name" (NXDOMAIN), not "no answer" (EAI_AGAIN)
_NAME_NOT_FOUND = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)

def _behind(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of ``kind`` among ``exc``, its causes, contexts and groups."""
    pending: list[BaseException] = [exc]
    seen = 0
    while pending and seen < 20:
        seen += 1
        current = pending.pop(0)
        if isinstance(current, kind):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if one is.

    trio wraps it in ``BrokenResourceError`` (``__cause__``); httpx in two
    ``ConnectError`` layers; refused connects come in groups. A short walk finds it.
    """
    return _behind(exc, ssl.SSLCertVerificationError)


def certificate_error(
    where: str,
    failure: ssl.SSLCertVerificationError,
    *secrets: Secret | None,
    option: str = "open_feed(ssl_context=...)",
) -> CertificateError:
    """A :class:`CertificateError` that says what failed and how to fix it.

    ``option`` names the library's way to pass a context where this connection is made.
    """
    reason = (failure.verify_message or failure.reason or "verification failed").rstrip(".")
    return CertificateError(
        redact(
            f"cannot verify the TLS certificate of {where}: {reason}; if it comes from a "
            f"private CA, trust that CA (runner: --ca-file PATH; library: {option} with "
            "ssl.create_default_context(cafile=PATH)); not retrying",
            *secrets,
        )
    )
