"""Tradovate access tokens over REST: a :class:`~tickactors.TokenSource` on httpx.

Theory of operation
-------------------
The token refresher actor calls :meth:`TradovateTokenSource.fetch` once at
start and again ahead of each expiry. The first call (or any call while no
session is held) posts the credentials to ``{rest_url}/auth/accesstokenrequest``;
the answer holds ``accessToken``, ``mdAccessToken`` and ``expirationTime``
(ISO-8601, UTC). ``which`` picks the token handed out: ``"md"`` for the market
data socket, ``"access"`` for the trading sockets (``Tradovate`` refuses an ``"md"``
source on ``DEMO_URL`` and ``LIVE_URL``, and a feed refuses to sync with one). The
lifetime returned is ``expirationTime - wall_clock()`` taken when the answer arrives, so
the refresher can put the expiry on trio's clock.

Later calls renew the session instead: ``GET {rest_url}/auth/renewaccesstoken``
with ``Authorization: Bearer <accessToken>``. The answer's expiry is used, and
its tokens when it carries them (the simulator issues a new pair). A renewal
that fails in any way (network error, timeout, 401, ``errorText``, an answer
without ``expirationTime``) falls back, in the same call, to a fresh token
request; the old session is kept until a new one replaces it.

Token-request answers, in Tradovate's manner:

- ``errorText`` with HTTP 200, or HTTP 401/403: :class:`AuthenticationError`,
  which ends the feed (retrying wrong credentials would only earn penalties).
- a penalty ticket ``{"p-ticket", "p-time", "p-captcha": false}``: sleep
  exactly ``p-time`` seconds, then resend the identical body with
  ``"p-ticket"`` added; at most :data:`MAX_PENALTIES` times, then a plain
  :class:`VenueRejectedError`. With ``"p-captcha": true`` a person must act:
  :class:`AuthenticationError` at once.
- HTTP 429 or another status: :class:`VenueRejectedError`; network errors:
  :class:`ConnectError`; no answer within ``request_timeout``:
  :class:`RequestTimeoutError`. The refresher retries these with backoff.
- a TLS certificate that cannot be verified: :class:`CertificateError`,
  which ends the feed (the same CA would be distrusted on every retry).
  ``ssl_context`` says whom to trust, as ``open_feed(ssl_context=...)`` does
  for the socket (default: httpx's, which verifies certificates).

Every HTTP call runs under ``trio.fail_after(request_timeout)`` and httpx's own
timeout. The password, ``sec`` and the tokens are :class:`Secret` values,
revealed only into the request body or header; every error message is
redacted, no exception chains to an httpx error (whose ``request`` holds the
body or the bearer header), and this module logs no secret. ``cid`` goes out as a JSON number when
it is all digits (Tradovate's examples send ``"cid": 8``).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs
import orjson
import trio

from .._errors import (
    AuthenticationError,
    ConnectError,
    FeedError,
    ProtocolError,
    RequestTimeoutError,
    VenueRejectedError,
)
from .._net.connecting import certificate_error, certificate_failure
from .._net.token_source import IssuedToken
from .._secret import Secret, redact
from ._dialect import MAX_PENALTY_WAIT

if TYPE_CHECKING:
    # Imported where it is used: ``import tickactors`` does not pay for httpx (about 50 ms)
    # unless a feed fetches Tradovate tokens.
    import httpx

__all__ = ["MAX_PENALTIES", "TradovateCredentials", "TradovateTokenSource"]

log = logging.getLogger(__name__)

MAX_PENALTIES: Final = 3
REQUEST_PATH: Final = "/auth/accesstokenrequest"
RENEW_PATH: Final = "/auth/renewaccesstoken"

_ENV: Final = {
    "name": "TRADOVATE_USERNAME",
    "password": "TRADOVATE_PASSWORD",
    "app_id": "TRADOVATE_APP_ID",
    "app_version": "TRADOVATE_APP_VERSION",
    "cid": "TRADOVATE_CID",
    "sec": "TRADOVATE_SEC",
}
_ENV_DEVICE_ID: Final = "TRADOVATE_DEVICE_ID"
#: The variables :meth:`TradovateCredentials.from_env` requires.
CREDENTIAL_VARIABLES: Final = tuple(_ENV.values())


def _secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


@attrs.frozen
class TradovateCredentials:
    """What ``auth/accesstokenrequest`` needs. ``password`` and ``sec`` are masked in ``repr``."""

    name: str
    password: Secret = attrs.field(converter=_secret)
    app_id: str
    app_version: str
    cid: str
    sec: Secret = attrs.field(converter=_secret)
    device_id: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TradovateCredentials:
        """Read ``TRADOVATE_USERNAME``, ``_PASSWORD``, ``_APP_ID``, ``_APP_VERSION``, ``_CID``,
        ``_SEC`` (and optionally ``_DEVICE_ID``). Missing or empty ones raise ``ValueError``
        naming them (never a value)."""
        missing = [var for var in _ENV.values() if not environ.get(var)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        values = {field: environ[var] for field, var in _ENV.items()}
        return cls(
            name=values["name"],
            password=Secret(values["password"]),
            app_id=values["app_id"],
            app_version=values["app_version"],
            cid=values["cid"],
            sec=Secret(values["sec"]),
            device_id=environ.get(_ENV_DEVICE_ID) or None,
        )

    def body(self) -> dict[str, Any]:
        """The JSON body of ``auth/accesstokenrequest`` (holds the secrets: wire use only)."""
        cid: int | str = int(self.cid) if self.cid.isdigit() else self.cid
        body: dict[str, Any] = {
            "name": self.name,
            "password": self.password.reveal(),
            "appId": self.app_id,
            "appVersion": self.app_version,
            "cid": cid,
            "sec": self.sec.reveal(),
        }
        if self.device_id:
            body["deviceId"] = self.device_id
        return body


def parse_expiration(text: object) -> float:
    """Wall-clock seconds of ``expirationTime`` (ISO-8601; no offset means UTC)."""
    if not isinstance(text, str) or not text.strip():
        raise ProtocolError("Tradovate token answer without a valid expirationTime")
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError("Tradovate token answer with an unreadable expirationTime") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


@attrs.frozen(slots=True)
class _Session:
    access: Secret
    md: Secret
    expires_at: float  # wall clock


class _RenewFailed(Exception):
    """Internal: the renewal did not work; fall back to a token request."""


class TradovateTokenSource:
    """Tradovate tokens from the REST API; implements :class:`tickactors.TokenSource`.

    ``rest_url`` is the API root (``https://demo.tradovateapi.com/v1``, or the
    simulator's ``sim.rest_url``). ``wall_clock`` reads the wall-clock seconds the
    venue's ``expirationTime`` is compared with; ``ssl_context`` whom to trust over
    ``https`` (default: verify against httpx's CA bundle); ``transport`` is handed to
    httpx (tests). Call :meth:`aclose` (or use ``async with``) when done.
    """

    def __init__(
        self,
        rest_url: str,
        credentials: TradovateCredentials,
        *,
        which: Literal["md", "access"] = "md",
        request_timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if which not in ("md", "access"):
            raise ValueError(f"which must be 'md' or 'access', not {which!r}")
        if not request_timeout > 0:
            raise ValueError("request_timeout must be positive")
        self._base = rest_url.rstrip("/")
        self._credentials = credentials
        self._which = which
        self._timeout = request_timeout
        self._wall_clock = wall_clock
        self._ssl_context = ssl_context
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._session: _Session | None = None
        self._lock = trio.Lock()

    @property
    def which(self) -> Literal["md", "access"]:
        """The token handed out: ``"md"`` (``mdAccessToken``, the market-data socket) or
        ``"access"`` (``accessToken``, the trading sockets)."""
        return self._which

    def __repr__(self) -> str:
        return (
            f"TradovateTokenSource(rest_url={self._base!r}, name={self._credentials.name!r}, "
            f"which={self._which!r})"
        )

    async def __aenter__(self) -> TradovateTokenSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections; a later :meth:`fetch` opens new ones."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def fetch(self) -> IssuedToken:
        """A renewed token if a session is held and renewal works, else a newly requested one."""
        async with self._lock:
            session = None
            if self._session is not None:
                try:
                    session = await self._renew(self._session)
                except _RenewFailed as exc:
                    log.info("Tradovate token renewal failed (%s); requesting a new token", exc)
            if session is None:
                session = await self._request()
            self._session = session
            lifetime = session.expires_at - self._wall_clock()
            log.debug("Tradovate token ready, lifetime %.3f s", lifetime)
            return IssuedToken(session.md if self._which == "md" else session.access, lifetime)

    # ---- the two calls -----------------------------------------------------------

    async def _request(self) -> _Session:
        body = self._credentials.body()
        for tickets in range(MAX_PENALTIES + 1):
            status, answer = await self._call("POST", REQUEST_PATH, json=body)
            if status in (401, 403):
                text = f"HTTP {status} {_error_text(answer)}".strip()
                raise AuthenticationError(self._clean(f"Tradovate refused the credentials: {text}"))
            if status != 200:
                raise VenueRejectedError(
                    status, self._clean(_error_text(answer)), request=f"POST {REQUEST_PATH}"
                )
            if not isinstance(answer, dict):
                raise ProtocolError("Tradovate token answer is not a JSON object")
            if "p-ticket" in answer:
                if answer.get("p-captcha") is True:
                    raise AuthenticationError(
                        "Tradovate answered the token request with a captcha penalty ticket: "
                        "a person must act (log in on Tradovate's site) before retrying"
                    )
                p_time = answer.get("p-time")
                if (
                    not isinstance(p_time, int | float)
                    or isinstance(p_time, bool)
                    or not 0 <= p_time <= MAX_PENALTY_WAIT
                ):
                    raise ProtocolError("Tradovate penalty ticket without a valid p-time")
                if tickets == MAX_PENALTIES:
                    break
                log.info("Tradovate penalty ticket: resending the token request in %s s", p_time)
                await trio.sleep(p_time)
                body = {**self._credentials.body(), "p-ticket": answer["p-ticket"]}
                continue
            if "errorText" in answer:
                raise AuthenticationError(
                    self._clean(f"Tradovate refused the credentials: {_error_text(answer)}")
                )
            return self._session_from(answer, None)
        raise VenueRejectedError(
            200,
            f"a penalty ticket again after {MAX_PENALTIES} resends",
            request=f"POST {REQUEST_PATH}",
        )

    async def _renew(self, session: _Session) -> _Session:
        headers = {"Authorization": f"Bearer {session.access.reveal()}"}
        try:
            status, answer = await self._call("GET", RENEW_PATH, headers=headers)
        except (ConnectError, RequestTimeoutError, ProtocolError) as exc:
            raise _RenewFailed(str(exc)) from None
        if status != 200 or not isinstance(answer, dict):
            raise _RenewFailed(self._clean(f"HTTP {status} {_error_text(answer)}"))
        if "errorText" in answer or "p-ticket" in answer:
            raise _RenewFailed(self._clean(_error_text(answer) or "penalty ticket"))
        try:
            return self._session_from(answer, session)
        except ProtocolError as exc:
            raise _RenewFailed(str(exc)) from None

    def _session_from(self, answer: dict[str, Any], previous: _Session | None) -> _Session:
        expires_at = parse_expiration(answer.get("expirationTime"))
        access, md = answer.get("accessToken"), answer.get("mdAccessToken")
        if previous is None and not (isinstance(access, str) and access):
            raise ProtocolError("Tradovate token answer without accessToken")
        new_access = Secret(access) if isinstance(access, str) and access else None
        new_md = Secret(md) if isinstance(md, str) and md else None
        if previous is not None:
            new_access = new_access or previous.access
            new_md = new_md or previous.md
        assert new_access is not None
        if new_md is None:
            if self._which == "md":
                raise ProtocolError("Tradovate token answer without mdAccessToken")
            new_md = new_access
        return _Session(new_access, new_md, expires_at)

    # ---- HTTP --------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Status and parsed JSON answer (None if the body is empty or not JSON)."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                follow_redirects=False,
                verify=True if self._ssl_context is None else self._ssl_context,
            )
        content = None if json is None else orjson.dumps(json)
        send_headers = {"Accept": "application/json", **(headers or {})}
        if content is not None:
            send_headers["Content-Type"] = "application/json"
        where = f"{method} {path}"
        failure: FeedError | None = None
        try:
            with trio.fail_after(self._timeout):
                response = await self._client.request(
                    method, self._base + path, content=content, headers=send_headers
                )
        except trio.TooSlowError:
            failure = RequestTimeoutError(f"Tradovate {where}: no answer within {self._timeout} s")
        except httpx.TimeoutException as exc:
            text = f"Tradovate {where}: {type(exc).__name__}: {exc}"
            failure = RequestTimeoutError(self._clean(text))
        except httpx.HTTPError as exc:
            certificate = certificate_failure(exc)
            if certificate is not None:
                failure = certificate_error(
                    f"Tradovate's REST API ({where})",
                    certificate,
                    option="TradovateTokenSource(ssl_context=...)",
                )
            else:
                failure = ConnectError(
                    self._clean(f"Tradovate {where} failed: {type(exc).__name__}: {exc}")
                )
        if failure is not None:  # raised out here: no __context__ leads to httpx's request
            raise failure
        try:
            answer = orjson.loads(response.content) if response.content.strip() else None
        except orjson.JSONDecodeError:
            answer = None
        return response.status_code, answer

    def _clean(self, text: str) -> str:
        session = self._session
        return redact(
            text,
            self._credentials.password,
            self._credentials.sec,
            None if session is None else session.access,
            None if session is None else session.md,
        )


def _error_text(answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("errorText"), str):
        return str(answer["errorText"])
    return ""
