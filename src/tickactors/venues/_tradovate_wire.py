"""Tradovate frames, piece by piece: answers, notices, numbers and book levels.

Pure functions for :mod:`._tradovate` (the dialect keeps the state: the
contract map, the timestamp cache, the ``ignored`` counter). Each one raises
``ProtocolError`` for anything off the documented shape.

Responses ``{"i", "s", "d"}`` become :class:`Answer` values:

- ``d`` holding ``p-captcha: true`` -> ``CAPTCHA``; holding ``p-ticket`` /
  ``p-time`` -> ``PENALTY`` (``retry_after`` = ``p-time``, ``ticket`` = ``p-ticket``):
  the request was not applied, whatever ``s`` says (Tradovate sends them with 200);
- other 2xx -> ``OK`` with ``data`` = ``d`` (``contract/find`` and user requests want it);
- 401 -> ``AUTH``; 429 -> ``RATE_LIMITED`` (Tradovate names no wait);
- 400, 403, 404 -> ``REJECTED``: the venue read the request and refused what it
  asks (``Unknown symbol``, ``Not subscribed``, ``Not found``, no entitlement);
- other 4xx -> ``BAD_REQUEST`` (our request was malformed); 5xx and anything
  else -> ``REJECTED`` (nothing to fix on our side, and no retry loop).

An error's ``message`` is ``d`` as text: a double-encoded string
(``"\\"Access is denied\\""``) is decoded once, an object shows its
``errorText`` or its JSON. A response without an integer ``i`` is a protocol
error (the venue sends one only for a request it could not read).

Prices are JSON numbers in ``[MIN_PRICE, MAX_NUMBER)`` (Tradovate sends
numbers, never strings), sizes in ``[0, MAX_NUMBER)`` (bounds in ``_dialect``);
a float becomes the :class:`Decimal` of its shortest repr, so ``18405.12`` on
the wire is ``Decimal("18405.12")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import orjson

from .._errors import ProtocolError
from .._values import BookLevel
from ._dialect import (
    MAX_NUMBER,
    MAX_PENALTY_WAIT,
    MIN_PRICE,
    Answer,
    AnswerKind,
    Notice,
    NoticeKind,
)

#: Non-2xx statuses with a kind of their own (see the module docstring).
STATUS_KINDS: Final[dict[int, AnswerKind]] = {
    400: AnswerKind.REJECTED,
    401: AnswerKind.AUTH,
    403: AnswerKind.REJECTED,
    404: AnswerKind.REJECTED,
    429: AnswerKind.RATE_LIMITED,
}
MAX_ID: Final = 2**63
_PENALTY_KEYS: Final = ("p-ticket", "p-time", "p-captcha")
_MAX_LEVELS: Final = 200
_MIN_PRICE: Final = float(MIN_PRICE)
_MAX_FLOAT: Final = float(MAX_NUMBER)  # ints need no upper check: orjson reads none >= 2**64
_MAX_STAMP: Final = 64  # characters of a clock's ``t``


def wire_id(value: object) -> int:
    if type(value) is not int or not 0 < value < MAX_ID:
        raise ProtocolError("a contractId is a positive integer")
    return value


def price(value: object) -> Decimal:
    if type(value) is float:
        if _MIN_PRICE <= value < _MAX_FLOAT:  # NaN fails every comparison
            return Decimal(repr(value))
    elif type(value) is int:
        if value > 0:
            return Decimal(value)
    else:
        raise ProtocolError(f"a price is a JSON number, not {type(value).__name__}")
    raise ProtocolError("a price out of range")


def size(value: object) -> Decimal:
    if type(value) is int:
        if value >= 0:
            return Decimal(value)
    elif type(value) is float:
        if 0.0 <= value < _MAX_FLOAT:
            return Decimal(repr(value))
    else:
        raise ProtocolError(f"a size is a JSON number, not {type(value).__name__}")
    raise ProtocolError("a size out of range")


def levels(value: object, what: str) -> tuple[BookLevel, ...]:
    if value is None:
        return ()
    if type(value) is not list or len(value) > _MAX_LEVELS:
        raise ProtocolError(f"{what} is not a list of at most {_MAX_LEVELS} levels")
    levels = []
    for level in value:
        if type(level) is not dict:
            raise ProtocolError(f"a level of {what} is not an object")
        levels.append(BookLevel(price(level.get("price")), size(level.get("size"))))
    return tuple(levels)


def answer(item: dict[str, Any]) -> Answer:
    request_id, status, data = item.get("i"), item.get("s"), item.get("d")
    if type(request_id) is not int or request_id < 0:
        raise ProtocolError("a response without an integer i")
    if type(status) is not int:
        raise ProtocolError("a response without an integer s")
    if type(data) is dict and any(key in data for key in _PENALTY_KEYS):
        return _penalty(request_id, status, data)
    if 200 <= status < 300:
        return Answer(request_id, AnswerKind.OK, status, data=data)
    kind = STATUS_KINDS.get(status)
    if kind is None:
        kind = AnswerKind.BAD_REQUEST if 400 <= status < 500 else AnswerKind.REJECTED
    return Answer(request_id, kind, status, _error_text(data, status), data=data)


def _penalty(request_id: int, status: int, data: dict[str, Any]) -> Answer:
    captcha, ticket, p_time = data.get("p-captcha", False), data.get("p-ticket"), data.get("p-time")
    if type(captcha) is not bool or (ticket is not None and type(ticket) is not str):
        raise ProtocolError("a penalty whose p-captcha or p-ticket has the wrong type")
    wait: float | None = None
    if p_time is not None or not captcha:
        if type(p_time) is not int and type(p_time) is not float:
            raise ProtocolError("a penalty without a numeric p-time")
        wait = float(p_time)
        if not 0.0 <= wait <= MAX_PENALTY_WAIT:
            raise ProtocolError(
                f"a penalty whose p-time is negative, not finite or over {MAX_PENALTY_WAIT:g} s"
            )
    if captcha:
        message = "captcha: a person must act before anything is resent"
        return Answer(request_id, AnswerKind.CAPTCHA, status, message, wait, ticket, data)
    message = f"penalty ticket: resend after {wait:g} s"
    return Answer(request_id, AnswerKind.PENALTY, status, message, wait, ticket, data)


def _error_text(data: object, status: int) -> str:
    if type(data) is str:
        text = data
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            try:
                inner = orjson.loads(text)
            except orjson.JSONDecodeError:
                inner = None
            if type(inner) is str:
                text = inner  # double-encoded
    elif type(data) is dict and type(data.get("errorText")) is str:
        text = data["errorText"]
    elif data is None:
        text = ""
    else:
        try:
            text = orjson.dumps(data).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (254)
            text = ""
    return text[:200] or f"status {status}"


def closing(rest: str) -> Notice:
    try:
        body = orjson.loads(rest)
    except orjson.JSONDecodeError:
        raise ProtocolError("a c-frame that is not JSON") from None
    if type(body) is not list or not 1 <= len(body) <= 2 or type(body[0]) is not int:
        raise ProtocolError('a c-frame is c[code,"reason"]')
    reason = body[1] if len(body) == 2 else ""
    if type(reason) is not str:
        raise ProtocolError("a c-frame whose reason is not a string")
    return Notice(NoticeKind.CLOSING, body[0], reason)


def event_notice(event: object, data: object) -> Notice | None:
    """The notice of a non-``md`` event, or None for one the feed has no use for."""
    if event == "clock":
        if type(data) is str:  # documented: ``d`` is a JSON string
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise ProtocolError("a clock event whose d is not JSON") from None
        if type(data) is not dict:
            raise ProtocolError("a clock event without a JSON object")
        stamp, speed = data.get("t"), data.get("s")
        if stamp is not None and (type(stamp) is not str or len(stamp) > _MAX_STAMP):
            # ``t`` goes back to the venue as the replay's start after a reconnect
            raise ProtocolError("a clock event whose t is not a timestamp")
        if speed is not None and type(speed) is not int and type(speed) is not float:
            raise ProtocolError("a clock event whose s is not a number")  # s goes to the log
        return Notice(NoticeKind.CLOCK, data=data)
    if event == "props" or event == "shutdown":
        if type(data) is not dict:
            raise ProtocolError(f"a {event} event without a d object")
        if event == "props":
            return Notice(NoticeKind.PROPS, data=data)
        reason = data.get("reasonCode", "")
        if type(reason) is not str:
            raise ProtocolError("a shutdown event whose reasonCode is not a string")
        return Notice(NoticeKind.SHUTDOWN, text=reason, data=data)
    if type(event) is not str:
        raise ProtocolError("an event name is a string")
    return None


def me_user_id(data: object) -> int | None:
    """The ``userId`` of an ``auth/me`` answer (a positive integer), or None."""
    if type(data) is not dict:
        return None
    value = data.get("userId")
    if type(value) is not int or not 0 < value < MAX_ID:
        return None
    return value


def sync_lists(data: object) -> dict[str, tuple[Mapping[str, Any], ...]] | None:
    """The entity lists of a ``user/syncrequest`` answer by name (``users``, ``accounts``,
    ``orders``, ...): every value that is a list of objects; None when ``data`` is no
    object. Other values (a list holding something else, a scalar) are left out."""
    if type(data) is not dict:
        return None
    lists: dict[str, tuple[Mapping[str, Any], ...]] = {}
    for name, items in data.items():
        if type(items) is list and all(type(item) is dict for item in items):
            lists[name] = tuple(items)
    return lists


def entity_parts(data: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]] | None:
    """``(entityType, eventType, entity)`` of a ``props`` event's ``d``, or None when one
    is missing or of the wrong type (a string, a string, an object)."""
    entity_type, event_type, entity = (
        data.get("entityType"),
        data.get("eventType"),
        data.get("entity"),
    )
    if type(entity_type) is not str or type(event_type) is not str or type(entity) is not dict:
        return None
    return entity_type, event_type, entity
