"""The exceptions a tickactors user may see.

A small, flat family under :class:`FeedError`, so ``except tickactors.FeedError``
catches everything the library raises on purpose. Each also subclasses the
builtin that fits it (``ValueError``, ``TimeoutError``, ``ConnectionError``), so
generic handlers keep working, as attrs does with ``FrozenError(AttributeError)``.

Who is at fault decides the name, as in h11: ``InvalidSymbolError`` and
``FeedClosedError`` are the caller's doing; ``VenueRejectedError``,
``AuthenticationError`` and ``ProtocolError`` are the venue's; ``CertificateError`` is
the configuration's (a CA the feed was not told to trust), and so, most likely, is
``PermanentConnectError`` (a URL, host name or token the venue keeps refusing).
"""

from __future__ import annotations


class FeedError(Exception):
    """Base class of every exception tickactors raises on purpose."""


class InvalidSymbolError(FeedError, ValueError):
    """A symbol from the caller is empty, too long, malformed or not allowed by the venue.

    Raised at once by ``feed.subscribe`` / ``feed.unsubscribe``; nothing reaches the wire.
    """

    def __init__(self, symbol: object, reason: str) -> None:
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"invalid symbol {symbol!r}: {reason}")


class CapacityError(FeedError, ValueError):
    """The desired symbols do not fit the venue's caps: symbols per connection and connections.

    ``symbols`` names every subscription that did not fit (``"SYMBOL (kind)"``); nothing
    of the change that raised it was applied.
    """

    def __init__(self, symbols: list[str], *, per_connection: int, connections: int) -> None:
        self.symbols = tuple(symbols)
        self.per_connection = per_connection
        self.connections = connections
        shown = ", ".join(self.symbols[:20]) + (", ..." if len(self.symbols) > 20 else "")
        super().__init__(
            f"{len(self.symbols)} subscription(s) do not fit {connections} connection(s) of "
            f"{per_connection} symbols per kind: {shown}"
        )


class FeedClosedError(FeedError, RuntimeError):
    """The feed was used after it closed."""


class RequestTimeoutError(FeedError, TimeoutError):
    """A request got no answer before its deadline."""


class ConnectionLostError(FeedError, ConnectionError):
    """The connection carrying a request was lost before the answer came."""


class VenueRejectedError(FeedError):
    """The venue answered a request with an error code.

    ``code`` is the venue's own code (AllTick ``ret``, Tradovate ``s``); ``reason`` its text.
    """

    def __init__(self, code: int, reason: str, *, request: str = "") -> None:
        self.code = code
        self.reason = reason
        self.request = request
        where = f" to {request}" if request else ""
        super().__init__(f"venue rejected the request{where}: {code} {reason}")


class AuthenticationError(FeedError):
    """The venue refused the token (AllTick ``ret`` 401, Tradovate authorize 401)."""


class ProtocolError(FeedError):
    """The venue sent something that cannot be understood.

    The feed counts and logs these and keeps the connection; they reach a user
    only from the low-level decoding API.
    """


class ConnectError(FeedError, ConnectionError):
    """A connection could not be opened (refused, unreachable, handshake timed out).

    ``cause`` names the kind of failure (``"http_404"``, ``"dns_not_found"``,
    ``"refused"``, ``"timeout"``, ...; ``"other"`` when nobody said) and ``permanent``
    says whether it looks like one that retrying will not heal (an HTTP 4xx answer to
    the upgrade other than 408 and 429, a host name that does not exist, a certificate
    that cannot be verified). The feed reports both in its ``connect_failed`` event.
    """

    cause: str = "other"
    permanent: bool = False

    def __init__(self, message: str, *, cause: str = "other", permanent: bool = False) -> None:
        super().__init__(message)
        self.cause = cause
        self.permanent = permanent


class CertificateError(ConnectError):
    """The venue's TLS certificate could not be verified; the feed stops, it does not retry.

    An unknown issuer, an expired certificate or a host name that does not match is a
    matter of configuration, not of luck: reconnecting would fail the same way for ever.
    The message names the host and the verifier's reason, and how to trust a private CA
    (``open_feed(ssl_context=...)``, runner ``--ca-file``). It never holds a token.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, cause="certificate", permanent=True)


class PermanentConnectError(ConnectError):
    """The feed gave up: its connects failed ``attempts`` times in a row for causes that
    will not heal (``open_feed(give_up_after=N)``, runner ``--give-up-after N``).

    ``cause`` and the message are the last failure's (``"http_404"``, ``"dns_not_found"``):
    a URL whose path the venue does not serve, a token it refuses at the door, a host name
    that does not exist. A success or a transient failure (refused, timed out, HTTP 5xx)
    in between starts the count again.
    """

    def __init__(self, last: str, *, cause: str, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(
            f"gave up after {attempts} connect attempt(s) in a row failed for a cause that "
            f"will not heal ({cause}); the last: {last}",
            cause=cause,
            permanent=True,
        )


class VenueShutdownError(FeedError):
    """The venue shut the connection down for a reason that reconnecting cannot fix.

    Tradovate's ``ConnectionQuotaReached`` and ``IPQuotaReached``: a new connection would
    only push out another one. ``reason`` is the venue's reason code.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the venue shut the connection down: {reason}; not reconnecting")


class CaptchaRequiredError(FeedError):
    """The venue wants a person to solve a captcha before it takes more requests.

    Tradovate's penalty ticket with ``p-captcha: true``: retrying would only make it
    worse, so the feed stops and says so. ``request`` names what was refused.
    """

    def __init__(self, request: str) -> None:
        self.request = request
        super().__init__(
            f"the venue requires a captcha before more requests ({request}): a person must "
            "log in to the venue's web platform; the feed stopped instead of retrying"
        )
