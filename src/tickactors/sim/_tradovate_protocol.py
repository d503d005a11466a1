"""Tradovate wire format, server side: parse requests, encode frames, answers and events.

Pure functions, no I/O and no clock; randomness comes in as a ``random.Random``.

Server frames start with one letter: ``o`` (open), ``h`` (heartbeat), ``a``
followed by a JSON array of answers and events, ``c`` followed by
``[code, "reason"]``. A client message is either the heartbeat ``[]`` or a
request of four lines joined by ``\\n``: endpoint, request id, query, body.

Reading requests (what Tradovate's own example clients send):

- endpoints match case-insensitively (``md/subscribeQuote`` = ``md/subscribequote``);
- a missing query or body line counts as empty, and so does the literal text
  ``undefined`` (what ``${JSON.stringify(undefined)}`` gives in JavaScript);
  a trailing ``\\r`` on a line is ignored; the body is everything after the
  third newline;
- the query is ``a=1&b=2``; a JSON-object body's keys are merged over it, so
  ``contract/find`` works with ``name=ESZ6`` or ``{"name":"ESZ6"}``.

Picks where ``docs/venues.md`` (Tradovate) is silent or says UNSURE:

- an unreadable request (fewer than two lines, an id that is not a
  non-negative integer, a binary frame) gets ``{"s":400,"d":"..."}`` with no
  ``"i"`` (there is none to echo) and counts as a ``bad_request`` violation;
- error answers are ``{"i":ID,"s":CODE,"d":TEXT}``; ``SimConfig.error_text``
  chooses plain text, double-encoded text (``"\\"Access is denied\\""``) or a
  seeded mix;
- the ``authorize`` answer carries no ``"d"`` (``{"i":0,"s":200}``, as the
  venue's own pages show it); the answers to ``md/unsubscribe...`` and
  ``md/cancelChart``, which have no payload either, carry ``"d": {}``: the
  JavaScript tutorial's subscription listeners read ``item.d.quotes`` (or
  ``doms``, ``charts``, ...) of every item that arrives, answers included.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

import attrs
import orjson

OPEN: Final = b"o"
HEARTBEAT: Final = b"h"
CLIENT_HEARTBEAT: Final = "[]"
UNDEFINED: Final = "undefined"

ACCESS_DENIED: Final = "Access is denied"
EXPIRED_TOKEN: Final = "Expired Access Token"
TOO_MANY: Final = "Too many requests"


@attrs.frozen(slots=True)
class Request:
    """One client request as far as it could be read.

    ``key`` is the lowercased endpoint; ``params`` the query merged with a
    JSON-object body; ``body_json`` the parsed body (``None`` when empty or not
    JSON); ``error`` says why the request is unreadable (then ``id`` may be None).
    """

    endpoint: str
    id: int | None
    query: str
    body: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    body_json: Any = None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.endpoint.lower()


def is_client_heartbeat(message: str | bytes) -> bool:
    return isinstance(message, str) and message.strip() == CLIENT_HEARTBEAT


def _line(lines: list[str], index: int) -> str:
    text = lines[index].rstrip("\r") if index < len(lines) else ""
    return "" if text == UNDEFINED else text


def parse_request(message: str | bytes) -> Request:
    """Read one request (not the ``[]`` heartbeat). Never raises."""
    if isinstance(message, bytes):
        return Request("", None, "", "", error="binary frames are not accepted")
    lines = message.split("\n")
    endpoint = _line(lines, 0).strip()
    id_text = _line(lines, 1).strip()
    query = _line(lines, 2)
    body = "\n".join(lines[3:]).rstrip("\r") if len(lines) > 3 else ""
    body = "" if body.strip() == UNDEFINED else body
    request_id = int(id_text) if id_text.isascii() and id_text.isdigit() else None
    if not endpoint or len(lines) < 2:
        return Request(
            endpoint, request_id, query, body, error="expected the lines endpoint, id, query, body"
        )
    if request_id is None:
        return Request(endpoint, None, query, body, error="request id is not an integer")
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    body_json: Any = None
    if body.strip():
        try:
            body_json = orjson.loads(body)
        except orjson.JSONDecodeError:
            body_json = None
        if isinstance(body_json, dict):
            params.update(body_json)
    return Request(endpoint, request_id, query, body, params, body_json)


def token_from_body(body: str) -> str:
    """The token of an ``authorize`` body: raw, JSON-quoted, or ``{"token": ...}``."""
    text = body.strip()
    if text[:1] in ('"', "{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("token"), str):
            return str(value["token"])
    return text


# ---- frames -----------------------------------------------------------------


def array_frame(items: Iterable[Mapping[str, Any]]) -> bytes:
    """``a[...]`` holding ``items``."""
    return b"a" + orjson.dumps(list(items))


def close_frame(code: int, reason: str) -> bytes:
    """``c[code,"reason"]``."""
    return b"c" + orjson.dumps([code, reason])


def ok(request_id: int, data: Any = None) -> dict[str, Any]:
    """A 200 answer; ``data`` None leaves out ``"d"``."""
    answer: dict[str, Any] = {"i": request_id, "s": 200}
    if data is not None:
        answer["d"] = data
    return answer


def error_text(text: str, mode: str, rng: random.Random) -> str:
    """``text`` as ``d`` carries it: plain, double-encoded, or a seeded pick of the two."""
    double = mode == "double" or (mode == "mixed" and rng.random() < 0.5)
    return orjson.dumps(text).decode() if double else text


def error(request_id: int | None, status: int, text: str) -> dict[str, Any]:
    """An error answer; ``request_id`` None leaves out ``"i"`` (unreadable request)."""
    answer: dict[str, Any] = {"s": status, "d": text}
    if request_id is not None:
        answer = {"i": request_id, **answer}
    return answer


def penalty(request_id: int | None, ticket: str, p_time: float, captcha: bool) -> dict[str, Any]:
    """A 200 answer holding a penalty ticket (the request was NOT applied)."""
    data = {"p-ticket": ticket, "p-time": number(p_time), "p-captcha": captcha}
    answer: dict[str, Any] = {"s": 200, "d": data}
    return answer if request_id is None else {"i": request_id, **answer}


def number(value: float) -> int | float:
    """An integral float as an int (``60`` rather than ``60.0`` on the wire)."""
    return int(value) if float(value).is_integer() else value


# ---- events -----------------------------------------------------------------


def iso(wall: float) -> str:
    """``2021-04-13T04:59:06.588Z`` for wall-clock seconds ``wall``."""
    millis = round(wall * 1000)
    stamp = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def parse_iso(text: object) -> float | None:
    """Wall-clock seconds of an ISO-8601 timestamp (``Z`` or an offset); None if unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def quote_event(quote: Mapping[str, Any], timestamp: str) -> dict[str, Any]:
    """``{"e":"md","d":{"quotes":[...]}}``; ``quote`` holds ``id``, ``contractId``, ``entries``."""
    return {"e": "md", "d": {"quotes": [{"timestamp": timestamp, **quote}]}}


def dom_event(dom: Mapping[str, Any], timestamp: str) -> dict[str, Any]:
    """``{"e":"md","d":{"doms":[...]}}``; ``dom`` holds ``contractId``, ``bids``, ``offers``."""
    return {"e": "md", "d": {"doms": [{"timestamp": timestamp, **dom}]}}


def clock_event(replay_wall: float, speed: int | float) -> dict[str, Any]:
    """``{"e":"clock","d":"{\\"t\\":...,\\"s\\":...}"}``: ``d`` is a JSON *string*."""
    inner = orjson.dumps({"t": iso(replay_wall), "s": number(speed)}).decode()
    return {"e": "clock", "d": inner}


def shutdown_event(reason_code: str, reason: str) -> dict[str, Any]:
    return {"e": "shutdown", "d": {"reasonCode": reason_code, "reason": reason}}


def chart_event(chart_id: int, bars: list[dict[str, Any]], trade_date: int) -> dict[str, Any]:
    """The historical part of a chart, then its end-of-history marker."""
    charts = [{"id": chart_id, "td": trade_date, "bars": bars}, {"id": chart_id, "eoh": True}]
    return {"e": "chart", "d": {"charts": charts}}


# ---- malformed frames -------------------------------------------------------

MALFORMED_KINDS: Final = (
    "truncated_array",
    "unknown_letter",
    "binary_garbage",
    "array_not_json",
    "a_not_array",
    "empty",
    "price_string",
    "entries_null",
)


def malformed_frame(kind: str, contract_id: int) -> str | bytes:
    """One deliberately bad frame of ``kind`` (see ``MALFORMED_KINDS``) about ``contract_id``.

    ``bytes`` go out as a binary frame, ``str`` as a text frame.
    """
    quote = {"id": contract_id, "contractId": contract_id, "entries": {"Bid": {"price": 100.25}}}
    good = array_frame([quote_event(quote, "2021-04-13T04:59:06.588Z")]).decode()
    frames: dict[str, str | bytes] = {
        "truncated_array": good[: len(good) // 2],
        "unknown_letter": "x" + good[1:],
        "binary_garbage": b"\xff\xfe\x00a[{\x80",
        "array_not_json": "a[{e:md, d:<html>502 Bad Gateway</html>}]",
        "a_not_array": "a" + orjson.dumps(quote_event(quote, "2021-04-13T04:59:06.588Z")).decode(),
        "empty": "",
        "price_string": good.replace("100.25", '"100.25"'),
        "entries_null": good.replace('{"Bid":{"price":100.25}}', "null"),
    }
    return frames[kind]
