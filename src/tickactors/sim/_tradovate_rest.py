"""Tradovate REST on the simulator's port: plain HTTP/1.1 on h11, JSON in and out.

Theory of operation
-------------------
``_tradovate_server`` hands over a TCP connection whose first request head
is not a WebSocket upgrade, with the ``h11.Connection`` that parsed it.
:func:`serve_rest` answers it and every further request on that connection
(keep-alive; an idle connection is closed after :data:`KEEP_ALIVE` seconds).
A later request on the same connection that asks for a WebSocket upgrade ends
the REST run: :func:`serve_rest` returns it, and the server upgrades the
connection (Tradovate's JS tutorial opens its socket on the keep-alive
connection its REST calls used).

Paths are matched case-insensitively under ``/v1`` (``/v1/auth/accessTokenRequest``
= ``/v1/auth/accesstokenrequest``); every call is counted in
``stats.rest_calls["METHOD /v1/path"]`` (path lowercased). Routes:

- ``POST auth/accesstokenrequest`` with ``{"name","password","appId",
  "appVersion","cid","sec"}``: the token pair (see ``_tradovate_accounts``),
  or HTTP 200 with ``{"errorText": ...}`` for wrong credentials, as Tradovate
  does. A penalty ticket armed by ``faults.p_ticket`` is answered here as
  HTTP 200 ``{"p-ticket","p-time","p-captcha"}``; the resend carries
  ``"p-ticket"`` in its JSON body.
- ``GET|POST auth/renewaccesstoken``, ``GET auth/me``, ``GET account/list``,
  ``GET contract/find?name=``, ``GET contract/suggest?t=&l=``,
  ``GET contract/item?id=``: need ``Authorization: Bearer TOKEN``; a missing,
  unknown or revoked token gets HTTP 401 ``{"errorText":"Access is denied"}``,
  an expired one ``{"errorText":"Expired Access Token"}``. Unknown contracts
  get HTTP 404 ``{"errorText":"Not found: ..."}``.
- ``POST order/placeorder``, ``order/cancelorder``, ``order/liquidateposition``,
  ``orderStrategy/startOrderStrategy`` (JSON body), ``GET product/find?name=``,
  ``product/list`` and the ``<entity>/list`` endpoints (``fillPair/list``,
  ``order/list``, ``position/list``, ...): as over the socket
  (``TradovateVenue.trading_call``), with the bearer token; an error is
  ``{"errorText": ...}``. The props events an order causes go to the user's
  synced sockets after the answer.
- anything else: 404; a bad JSON body: 400.

Browsers (CORS): Tradovate's JavaScript tutorial calls this API with
``fetch`` from a page of another origin, with ``Content-Type:
application/json`` and ``Authorization`` headers, so the browser first sends
a preflight ``OPTIONS``. Any ``OPTIONS`` is answered 204 with
``Access-Control-Allow-Origin: *``, ``Access-Control-Allow-Methods`` and
``Access-Control-Allow-Headers`` (the requested headers, echoed), and every
answer carries ``Access-Control-Allow-Origin: *`` (the sim's pick: the
venue's exact CORS headers are not documented, and this is the most lenient
that lets the tutorial run; no cookies are involved).

Faults: ``rate_limit_429`` answers the next calls with HTTP 429; during a
stall answers wait for its end; ``p_ticket`` applies to POSTs with a JSON
object body only (a GET has no body to carry the ticket back). The other
faults concern sockets and leave REST alone.
"""

from __future__ import annotations

from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, urlsplit

import h11
import orjson
import trio

from . import _tradovate_protocol as proto
from ._faults import Faults
from ._tradovate_accounts import BAD_CREDENTIALS, User
from ._tradovate_penalty import Issued
from ._tradovate_state import LISTS, TRADING, TradovateVenue

KEEP_ALIVE: Final = 30.0
MAX_BODY: Final = 1 << 20
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

_Answer = tuple[int, Any]


class Receiver(Protocol):
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray: ...


async def next_event(stream: Receiver, conn: h11.Connection) -> Any:
    """The next h11 event, reading as needed; ``h11.ConnectionClosed`` when the peer left."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive_some(65536)
        except _GONE:
            data = b""
        conn.receive_data(bytes(data))


def is_upgrade(request: h11.Request) -> bool:
    """Whether ``request`` asks for a WebSocket upgrade."""
    upgrade = connection = ""
    for key, value in request.headers:
        name = key.lower()
        if name == b"upgrade":
            upgrade = bytes(value).decode("latin-1").lower()
        elif name == b"connection":
            connection = bytes(value).decode("latin-1").lower()
    return "websocket" in upgrade and "upgrade" in connection


def request_bytes(request: h11.Request, conn: h11.Connection) -> bytes:
    """``request``'s head as sent (header names in their own case), then what followed it."""
    lines = [b"%s %s HTTP/1.1" % (bytes(request.method), bytes(request.target))]
    lines += [bytes(k) + b": " + bytes(v) for k, v in request.headers.raw_items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + bytes(conn.trailing_data[0])


async def serve_rest(
    venue: TradovateVenue,
    faults: Faults,
    stream: trio.abc.Stream,
    conn: h11.Connection,
    request: h11.Request,
) -> h11.Request | None:
    """Answer ``request`` and every later request on ``conn`` (see the module docstring).

    Returns a later request that asks for a WebSocket upgrade (unanswered, its
    bytes still in ``conn``: :func:`request_bytes`), or None when the connection ends.
    """
    try:
        while True:
            body = bytearray()
            while True:
                event = await next_event(stream, conn)
                if isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        return None
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return None
            if bytes(request.method).upper() == b"OPTIONS":
                venue.hub.stats.rest_calls[f"OPTIONS {_path(request)}"] += 1
                out = conn.send(h11.Response(status_code=204, headers=preflight(request)))
                out += conn.send(h11.EndOfMessage())
            else:
                status, payload = route(venue, faults, request, bytes(body))
                venue.flush_props()
                if faults.stalled():
                    await faults.wait_unstalled()
                data = orjson.dumps(payload)
                headers = [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(data))),
                    ("Access-Control-Allow-Origin", "*"),
                ]
                out = conn.send(h11.Response(status_code=status, headers=headers))
                out += conn.send(h11.Data(data=data)) + conn.send(h11.EndOfMessage())
            await stream.send_all(out)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return None
            conn.start_next_cycle()
            with trio.move_on_after(KEEP_ALIVE):
                event = await next_event(stream, conn)
            if not isinstance(event, h11.Request):
                return None
            if is_upgrade(event):
                return event
            request = event
    except (h11.ProtocolError, *_GONE):
        return None


def _header(request: h11.Request, name: bytes) -> str:
    for key, value in request.headers:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def preflight(request: h11.Request) -> list[tuple[str, str]]:
    """The headers of the answer to a CORS preflight ``OPTIONS`` (see the module docstring)."""
    asked = _header(request, b"access-control-request-headers").strip()
    return [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        ("Access-Control-Allow-Headers", asked or "Authorization, Content-Type, Accept"),
        ("Access-Control-Max-Age", "600"),
    ]


def _path(request: h11.Request) -> str:
    return urlsplit(bytes(request.target).decode("latin-1")).path.lower().rstrip("/")


def _bearer(venue: TradovateVenue, request: h11.Request) -> User | _Answer:
    scheme, _, token = _header(request, b"authorization").strip().partition(" ")
    owner = venue.accounts.check(token.strip() if scheme.lower() == "bearer" else "")
    if isinstance(owner, str):
        return 401, {"errorText": owner}
    return owner


def route(venue: TradovateVenue, faults: Faults, request: h11.Request, body: bytes) -> _Answer:
    """Status and JSON payload for one REST call."""
    method = bytes(request.method).decode("ascii", "replace").upper()
    parts = urlsplit(bytes(request.target).decode("latin-1"))
    path = _path(request)
    venue.hub.stats.rest_calls[f"{method} {path}"] += 1
    if faults.take_429():
        return 429, {"errorText": proto.TOO_MANY}
    if not path.startswith("/v1/"):
        return 404, {"errorText": f"Not found: {parts.path}"}
    endpoint = path[len("/v1/") :]
    params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    parsed: Any = None
    if body.strip():
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, {"errorText": "Request body is not JSON"}
    if method == "POST" and isinstance(parsed, dict):
        verdict = venue.penalties.gate(f"POST /v1/{endpoint}", parts.query, parsed)
        if isinstance(verdict, Issued):
            return 200, proto.penalty(None, verdict.ticket, verdict.p_time, verdict.captcha)["d"]
        if isinstance(verdict, str):
            return 400, {"errorText": verdict}
    if endpoint == "auth/accesstokenrequest" and method == "POST":
        fields = parsed if isinstance(parsed, dict) else {}
        if not venue.accounts.credentials_ok(fields.get("name"), fields.get("password")):
            return 200, {"errorText": BAD_CREDENTIALS}
        pair = venue.accounts.issue(str(fields["name"]))
        return 200, venue.accounts.token_json(pair)
    handler = _AUTHED.get(endpoint)
    if method not in ("GET", "POST") or (
        handler is None
        and endpoint not in TRADING
        and endpoint not in LISTS
        and endpoint not in ("product/find", "product/list")
    ):
        return 404, {"errorText": f"Not found: {parts.path}"}
    owner = _bearer(venue, request)
    if not isinstance(owner, User):
        return owner
    if handler is None:
        if isinstance(parsed, dict):
            params.update(parsed)
        if endpoint in TRADING and method != "POST":
            return 404, {"errorText": f"Not found: {parts.path}"}
        outcome = venue.trading_call(owner, endpoint, params)
        assert outcome is not None
        status, payload = outcome
        return (status, payload) if status == 200 else (status, {"errorText": str(payload)})
    if endpoint == "auth/renewaccesstoken":
        _, _, token = _header(request, b"authorization").strip().partition(" ")
        renewed = venue.accounts.renew(token.strip())
        if isinstance(renewed, str):
            return 401, {"errorText": renewed}
        return 200, venue.accounts.token_json(renewed)
    if isinstance(parsed, dict):
        params.update(parsed)
    return handler(venue, owner, params)


def _me(venue: TradovateVenue, user: User, params: dict[str, Any]) -> _Answer:
    return 200, venue.accounts.me_json(user)


def _accounts(venue: TradovateVenue, user: User, params: dict[str, Any]) -> _Answer:
    return 200, venue.accounts.accounts_json(user)


def _find(venue: TradovateVenue, user: User, params: dict[str, Any]) -> _Answer:
    contract = venue.contracts.find(params.get("name"))
    if contract is None:
        return 404, {"errorText": f"Not found: {params.get('name')}"}
    return 200, contract.to_json()


def _item(venue: TradovateVenue, user: User, params: dict[str, Any]) -> _Answer:
    contract = venue.contracts.item(params.get("id"))
    if contract is None:
        return 404, {"errorText": f"Not found: {params.get('id')}"}
    return 200, contract.to_json()


def _suggest(venue: TradovateVenue, user: User, params: dict[str, Any]) -> _Answer:
    found = venue.contracts.suggest(params.get("t"), params.get("l", 10))
    return 200, [c.to_json() for c in found]


def _renew(venue: TradovateVenue, user: User, params: dict[str, Any]) -> _Answer:
    raise AssertionError("handled in route()")  # pragma: no cover


_AUTHED = {
    "auth/renewaccesstoken": _renew,
    "auth/me": _me,
    "account/list": _accounts,
    "contract/find": _find,
    "contract/item": _item,
    "contract/suggest": _suggest,
}
