"""AllTick wire format, server side: parse and validate requests, encode answers and pushes.

Pure functions, no I/O and no clock; randomness comes in as a ``random.Random``.

Requests are JSON text ``{"cmd_id", "seq_id", "trace", "data"}``; answers are
``{"ret", "msg", "cmd_id", "seq_id", "trace", "data"}``; pushes carry only
``cmd_id`` and ``data``. Every frame is written by ``orjson`` from ints,
strings, lists and dicts only, so no JSON ``true``/``false``/``null`` ever
appears: AllTick's own Python example ``eval()``\\ s each frame.

Where ``docs/venues.md`` (AllTick) says UNSURE, the simulator picks:

- **cmd_id of an error answer**: the answer id (request ``cmd_id + 1``) when the
  request named one of 22000/22002/22004/22006; 0 when the ``cmd_id`` is
  unknown or could not be read (also for the 401 sent after the handshake).
- **over the symbol cap**: ``SimConfig.over_cap`` (default ``"ignore"``, as the
  documentation says: keeps the first ``max_symbols`` codes and answers 200;
  ``"reject"`` answers 603). The cap applies to each list (trades, depth)
  separately.
- **seq / tick_time types and units**: ``SimConfig.wire="strict"`` (default)
  always sends the documented example's shape (integer ``seq``, integer
  ``tick_time`` in seconds); ``"varied"`` picks, per frame, int or string
  ``seq``, int or string ``tick_time``, and seconds or milliseconds.
- **validation order**: shape (400) -> empty list (601) -> code syntax or
  ``invalid_codes`` (600) -> duplicate code (400) -> ``unauthorized_codes`` (604)
  -> cap (603). ``trace`` may be missing (echoed as ``""``). On 22004
  ``depth_level`` is ignored (the Go example sends it).
- **depth**: a 22002 entry without ``depth_level`` gets ``SimConfig.default_depth``
  levels (1, as documented); any int >= 1 is accepted and capped at
  ``MAX_DEPTH`` (50: what the simulated market has, so ``100`` means "as many as
  there are"); 0, a negative number or a non-int gets 400. Forex, metals and
  commodity codes (:func:`._market.top_of_book_only`: six uppercase letters,
  or ``GOLD``, ``Silver``, ``USOIL``, ...) get at most one level a side,
  without ``volume``, unless ``SimConfig.fx_depth="full"``.
- **data**: ``null``, missing or ``[]`` (what PHP's ``json_encode`` writes for an
  empty array, as the official PHP example's heartbeat does) reads as ``{}``;
  anything else that is not an object gets 400.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs
import orjson

from ._config import SimConfig
from ._market import Book, Trade

PATHS: Final = ("/quote-b-ws-api", "/quote-stock-b-ws-api")

HEARTBEAT: Final = 22000
SUB_DEPTH: Final = 22002
SUB_TRADES: Final = 22004
CANCEL: Final = 22006
PUSH_TRADE: Final = 22998
PUSH_DEPTH: Final = 22999
REQUESTS: Final = frozenset((HEARTBEAT, SUB_DEPTH, SUB_TRADES, CANCEL))

OK: Final = (200, "ok")
BAD_REQUEST: Final = 400
TOKEN_INVALID: Final = (401, "token invalid")
CODE_INVALID: Final = (600, "code invalid")
BODY_EMPTY: Final = (601, "body empty")
PLAN_TOO_SMALL: Final = (603, "plan too small, too many symbols")
CODE_UNAUTHORIZED: Final = (604, "code unauthorized")
TOO_MANY: Final = (605, "too many requests")
KICKED: Final = (606, "too many requests, connection will be closed")
TOO_MANY_CONNECTIONS: Final = (429, "too many connections")  # the sim's pick

_CODE = re.compile(r"^[A-Za-z0-9._\-]{1,40}$")
_UINT32_MAX: Final = 2**32 - 1
MAX_DEPTH: Final = 50  #: levels a side the simulated market has


def _is_uint32(value: object) -> bool:
    return type(value) is int and 0 <= value <= _UINT32_MAX


@attrs.frozen(slots=True)
class Request:
    """An inbound request as far as it could be read.

    ``error`` is ``(ret, msg, kind)`` when the envelope is unusable; ``kind`` is
    the violation counted. ``cmd_id``/``seq_id``/``trace`` hold what could be read.
    """

    cmd_id: int | None
    seq_id: int
    trace: str
    data: Any
    error: tuple[int, str, str] | None = None

    @property
    def answer_id(self) -> int:
        """The ``cmd_id`` an answer to this request carries (see the module docstring)."""
        return self.cmd_id + 1 if self.cmd_id in REQUESTS else 0


def parse_request(message: str | bytes) -> Request:
    """Read one inbound message. Never raises: problems land in ``Request.error``."""
    if isinstance(message, bytes):
        return Request(
            None, 0, "", None, (BAD_REQUEST, "binary frames are not accepted", "bad_request")
        )
    try:
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        return Request(None, 0, "", None, (BAD_REQUEST, "request is not JSON", "bad_request"))
    if not isinstance(obj, dict):
        return Request(None, 0, "", None, (BAD_REQUEST, "request is not an object", "bad_request"))
    raw_cmd, raw_seq, raw_trace = obj.get("cmd_id"), obj.get("seq_id"), obj.get("trace", "")
    cmd_id: int | None = raw_cmd if type(raw_cmd) is int and _is_uint32(raw_cmd) else None
    seq_id: int = raw_seq if type(raw_seq) is int and _is_uint32(raw_seq) else 0
    trace = raw_trace if isinstance(raw_trace, str) and len(raw_trace) <= 64 else ""
    data = obj.get("data")
    if data == []:  # PHP's json_encode of an empty array: the official PHP example's heartbeat
        data = {}
    problem = None
    if cmd_id is None:
        problem = "cmd_id missing or not a uint32"
    elif not _is_uint32(raw_seq):
        problem = "seq_id missing or not a uint32"
    elif not isinstance(raw_trace, str):
        problem = "trace is not a string"
    elif len(raw_trace) > 64:
        problem = "trace longer than 64 characters"
    elif data is not None and not isinstance(data, dict):
        problem = "data is not an object"
    elif cmd_id not in REQUESTS:
        problem = f"unknown cmd_id {cmd_id}"
    if problem is not None:
        return Request(cmd_id, seq_id, trace, data, (BAD_REQUEST, problem, "bad_request"))
    return Request(cmd_id, seq_id, trace, data if data is not None else {})


@attrs.frozen(slots=True)
class Rejection:
    """A request refused: answer ``ret``/``msg``; ``violation`` is counted if not None."""

    ret: int
    msg: str
    violation: str | None = None


@attrs.frozen(slots=True)
class Subscription:
    """An accepted 22002/22004 list, in the client's order, capped if ``over_cap="ignore"``."""

    codes: tuple[str, ...]
    depth_levels: Mapping[str, int]


def check_symbol_list(
    cmd_id: int, data: Mapping[str, Any], config: SimConfig
) -> Subscription | Rejection:
    """Validate ``data.symbol_list`` of a 22002 (depth) or 22004 (trades) request."""
    symbol_list = data.get("symbol_list")
    if symbol_list is None or (isinstance(symbol_list, list) and not symbol_list):
        return Rejection(*BODY_EMPTY, violation="empty_list")
    if not isinstance(symbol_list, list):
        return Rejection(BAD_REQUEST, "symbol_list is not a list", "bad_request")
    codes: list[str] = []
    levels: dict[str, int] = {}
    for entry in symbol_list:
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
            return Rejection(BAD_REQUEST, "symbol_list entry without a string code", "bad_request")
        level = entry.get("depth_level", config.default_depth)
        if cmd_id == SUB_DEPTH and not (type(level) is int and level >= 1):
            return Rejection(BAD_REQUEST, "depth_level must be an int >= 1", "bad_request")
        codes.append(entry["code"])
        levels[entry["code"]] = min(level, MAX_DEPTH) if cmd_id == SUB_DEPTH else 0
    for code in codes:
        if not _CODE.match(code) or code in config.invalid_codes:
            return Rejection(*CODE_INVALID)
    if len(set(codes)) != len(codes):
        return Rejection(BAD_REQUEST, "duplicate code in symbol_list", "duplicate_code")
    for code in codes:
        if code in config.unauthorized_codes:
            return Rejection(*CODE_UNAUTHORIZED)
    if len(codes) > config.max_symbols:
        if config.over_cap == "reject":
            return Rejection(*PLAN_TOO_SMALL)
        codes = codes[: config.max_symbols]
    return Subscription(tuple(codes), {c: levels[c] for c in codes})


def check_cancel(data: Mapping[str, Any]) -> int | Rejection:
    """``data.cancel_type`` of a 22006 request: 0 all, 1 depth, 2 trades."""
    cancel_type = data.get("cancel_type")
    if type(cancel_type) is not int or cancel_type not in (0, 1, 2):
        return Rejection(BAD_REQUEST, "cancel_type must be 0, 1 or 2", "bad_request")
    return cancel_type


def encode_answer(ret: int, msg: str, cmd_id: int, seq_id: int = 0, trace: str = "") -> bytes:
    """An answer frame; ``data`` is always ``{}``."""
    return orjson.dumps(
        {"ret": ret, "msg": msg, "cmd_id": cmd_id, "seq_id": seq_id, "trace": trace, "data": {}}
    )


@attrs.frozen(slots=True)
class Variant:
    """How one push writes ``seq`` and ``tick_time``."""

    seq_as_str: bool = False
    time_as_str: bool = False
    time_ms: bool = False


DOCUMENTED = Variant()


def choose_variant(rng: random.Random, mode: str) -> Variant:
    """A random :class:`Variant` in ``"varied"`` mode, the documented one otherwise."""
    if mode != "varied":
        return DOCUMENTED
    bits = rng.getrandbits(3)
    return Variant(bool(bits & 1), bool(bits & 2), bool(bits & 4))


def _stamp(seq: int, time: float, variant: Variant) -> tuple[int | str, int | str]:
    t = int(time * 1000) if variant.time_ms else int(time)
    return (str(seq) if variant.seq_as_str else seq, str(t) if variant.time_as_str else t)


def encode_trade(trade: Trade, variant: Variant = DOCUMENTED) -> bytes:
    """A 22998 push. Forex trades (no turnover) carry no ``turnover`` key."""
    seq, tick_time = _stamp(trade.seq, trade.time, variant)
    data: dict[str, object] = {
        "code": trade.code,
        "seq": seq,
        "tick_time": tick_time,
        "price": trade.price,
        "volume": trade.volume,
    }
    if trade.turnover is not None:
        data["turnover"] = trade.turnover
    data["trade_direction"] = trade.direction
    return orjson.dumps({"cmd_id": PUSH_TRADE, "data": data})


def encode_book(
    book: Book, levels: int, variant: Variant = DOCUMENTED, *, volumes: bool = True
) -> bytes:
    """A 22999 push holding the best ``levels`` levels of ``book``.

    Without ``volumes`` each level is ``{"price": ...}`` alone (forex and metals)."""
    seq, tick_time = _stamp(book.seq, book.time, variant)

    def side(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
        if volumes:
            return [{"price": p, "volume": v} for p, v in pairs[:levels]]
        return [{"price": p} for p, _ in pairs[:levels]]

    return orjson.dumps(
        {
            "cmd_id": PUSH_DEPTH,
            "data": {
                "code": book.code,
                "seq": seq,
                "tick_time": tick_time,
                "bids": side(book.bids),
                "asks": side(book.asks),
            },
        }
    )


MALFORMED_KINDS: Final = (
    "truncated_json",
    "not_json",
    "price_number",
    "price_list",
    "unknown_cmd_id",
    "binary_invalid_utf8",
    "empty",
    "huge_numbers",
    "negative_price",
)


def malformed_frame(kind: str, code: str) -> str | bytes:
    """One deliberately bad frame of ``kind`` (see ``MALFORMED_KINDS``) about ``code``.

    ``bytes`` go out as a binary frame, ``str`` as a text frame.
    """
    good = encode_trade(Trade(code, 1, 1_700_000_000.0, "651.12", "300", "12345.6", 1)).decode()
    frames: dict[str, str | bytes] = {
        "truncated_json": good[: len(good) // 2],
        "not_json": "<html><body>502 Bad Gateway</body></html>",
        "price_number": good.replace('"651.12"', "651.12"),
        "price_list": good.replace('"651.12"', '["651.12"]'),
        "unknown_cmd_id": '{"cmd_id":23456,"data":{"code":' + orjson.dumps(code).decode() + "}}",
        "binary_invalid_utf8": b'\xff\xfe\xfd\x80{"cmd_id":22998}',
        "empty": "",
        "huge_numbers": good.replace('"seq":1', '"seq":1' + "0" * 400).replace(
            '"300"', '"9' + "9" * 400 + '"'
        ),
        "negative_price": good.replace('"651.12"', '"-651.12"'),
    }
    return frames[kind]
