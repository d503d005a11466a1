"""Hostile frames for both venues' decoders: Hypothesis strategies and a seeded generator.

Theory of operation
-------------------
Random bytes rarely get past a decoder's first check, so most frames here start
VALID: a builder makes one frame of one kind (AllTick trade, depth, answer,
heartbeat answer, error; Tradovate ``o``, ``h``, ``c[...]`` and ``a[...]`` with
quotes, DOMs, charts, clock, props, shutdown, OK / error / penalty / captcha
answers) as a Python value, so that the decoder walks all the way down. Then one
corruption, picked at random:

- ``valid``: none (the oracle checks what comes out);
- ``field``: one to three fields anywhere in the tree replaced by a hostile value
  (:data:`HOSTILE`: wrong types, 0, negatives, 2**64 - 1, ``1e400``, ``10**400``,
  ``NaN``/``Infinity`` as JSON tokens and as strings, look-alike digits, control
  characters, lone surrogates, nesting 300, 1010 and 100,000 deep; rarely a megabyte
  string, :data:`BIG`), deleted, or joined by an unknown key;
- ``text``: the serialized frame truncated, doubled, wrapped, re-prefixed, given
  invalid UTF-8 (sent as bytes), or emptied;
- ``garbage``: random bytes, random text, random JSON, odd one-liners.

Every choice goes through a :class:`Source`: :class:`RandomSource` wraps a seeded
``random.Random`` (the million-frame run, ``bench/fuzz_decoders.py``), and
:func:`frames` turns the same builders into a Hypothesis strategy that shrinks.
The oracle is in :mod:`tests.fuzz_oracle`.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import orjson
from hypothesis import strategies as st

T = TypeVar("T")
Wire = str | bytes
VENUES = ("alltick", "tradovate")


class Source(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...
    def choice(self, options: Sequence[T]) -> T: ...


class RandomSource:
    """Choices from a seeded ``random.Random``: fast, repeatable, no shrinking."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


class DrawSource:
    """Choices drawn by Hypothesis (inside ``st.composite``): shrinkable."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        index: int = self.draw(st.integers(0, len(options) - 1))
        return options[index]


def _raw(text: str) -> orjson.Fragment:
    return orjson.Fragment(text.encode("utf-8", "surrogatepass"))


#: Values that fit no field, or fit one badly (containers are copied before use).
HOSTILE: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, -0.0, 0.0, 1.5, -1.5, 0.1, 2**53 + 1, 2**63, 2**63 - 1,
    2**64 - 1, -(2**63), 1e308, -1e308, 5e-324, 1e-300,
    _raw("1e400"), _raw("-1e400"), _raw("1" + "0" * 400), _raw("NaN"), _raw("Infinity"),
    _raw("-Infinity"), _raw("1.0e-400"),
    "", " ", "x", "0", "-0", "-1", "0.0", "1e400", "-1e400", "1e99999999", "1e-99999999",
    "NaN", "nan", "Infinity", "-inf", "sNaN", "\u00b2", "\uff11\uff12", "\u0663", " 1 ", "1_0",
    "0x1F", "1,5", "1.2.3", "+1", "\x00", "\n", "\t", "\x1b[31m", "A\u0410PL", "\u200b",
    "\ufeff1", "9" * 80, _raw('"\\ud800"'), _raw('"\\udfff x"'),
    [], {}, [1], [None], {"a": 1}, {"price": "1", "size": 1}, [[[]]],
    _raw("[" * 300 + "]" * 300), _raw('{"a":' * 300 + "1" + "}" * 300),
    _raw("[" * 1010 + "]" * 1010),
    _raw("[" * 100_000 + "]" * 100_000),
)  # fmt: skip
MEGA = 1_000_000
#: The expensive ones, drawn rarely: a megabyte of text, of digits, of a list.
BIG: tuple[Any, ...] = (
    "A" * MEGA,
    "9" * MEGA,
    "1." + "0" * MEGA,
    _raw("[" + ",".join(["1"] * (MEGA // 2)) + "]"),
)
UNKNOWN_KEYS = ("zz", "", "price ", "Price", "\x00", "__proto__", "e", "i", "d", "s", "data")


def hostile_value(src: Source) -> Any:
    value = src.choice(BIG) if src.integer(0, 199) == 0 else src.choice(HOSTILE)
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


# ---- valid frames -------------------------------------------------------------------

CODES = ("BTCUSDT", "ETHUSDT", "EURUSD", "XAUUSD", "700.HK", "1288.HK", "AAPL.US", "NOPE")
CONTRACTS = (123456, 2_345_678, 1, 2**63 - 1, 987)
STAMPS = ("2021-04-13T04:59:06.588Z", "2024-01-02T14:30:00.000+00:00", "2024-01-02T14:30:00")


def _decimal_text(src: Source, zero: bool = False) -> str:
    whole = src.integer(0 if zero else 1, 10 ** src.integer(1, 7))
    return src.choice((str(whole), f"{whole}.{src.integer(0, 9999):04d}", f"0.{whole:08d}"))


def _number(src: Source, zero: bool = False) -> float | int:
    low = 0 if zero else 1
    return src.choice((src.integer(low, 10**6), src.integer(low, 10**7) / 100))


def _maybe_text(src: Source, value: int) -> int | str:
    return src.choice((value, str(value)))


def alltick_trade(src: Source) -> dict[str, Any]:
    seconds = src.integer(1_500_000_000, 1_800_000_000)
    data: dict[str, Any] = {
        "code": src.choice(CODES),
        "seq": _maybe_text(src, src.integer(0, 2**62)),
        "tick_time": _maybe_text(src, src.choice((seconds, seconds * 1000))),
        "price": src.choice((_decimal_text(src), _number(src))),
        "volume": _decimal_text(src, zero=True),
    }
    if src.integer(0, 1):
        data["turnover"] = _decimal_text(src, zero=True)
    if src.integer(0, 1):
        data["trade_direction"] = src.integer(0, 2)
    return {"cmd_id": 22998, "data": data}


def alltick_depth(src: Source) -> dict[str, Any]:
    def side() -> list[dict[str, Any]]:
        return [
            {"price": _decimal_text(src), "volume": _decimal_text(src, zero=True)}
            for _ in range(src.integer(0, 5))
        ]

    data = {"code": src.choice(CODES), "seq": src.integer(0, 2**40), "bids": side()}
    data.update(tick_time=src.integer(1_500_000_000, 1_800_000_000), asks=side())
    return {"cmd_id": 22999, "data": data}


def alltick_answer(src: Source) -> dict[str, Any]:
    ret = src.choice((200, 200, 201, 400, 401, 402, 429, 600, 601, 603, 604, 605, 606, 999))
    seq = src.integer(0, 2**32)
    heartbeat = src.integer(0, 3) == 0
    cmd = 22001 if heartbeat else src.choice((22003, 22005, 22007, 0))
    data = src.choice(({}, {"symbol_list": None})) if heartbeat else {}
    msg = src.choice(("ok", "", "code invalid", "rate limit"))
    answer = {"ret": ret, "msg": msg, "cmd_id": cmd, "seq_id": seq, "trace": f"ta-{seq}"}
    return answer | {"data": data}


def _entries(src: Source) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for name in ("Bid", "Offer", "Trade", "TotalTradeVolume", "HighPrice", "OpenInterest"):
        if src.integer(0, 3):
            entry: dict[str, Any] = {}
            if name not in ("TotalTradeVolume", "OpenInterest") and src.integer(0, 4):
                entry["price"] = _number(src)
            if src.integer(0, 4):
                entry["size"] = _number(src, zero=True)
            entries[name] = entry
    return entries


def tradovate_md(src: Source, dom: bool | None = None) -> dict[str, Any]:
    if dom is None:
        dom = src.integer(0, 2) == 0
    if not dom:
        quotes = [
            {"timestamp": src.choice(STAMPS), "contractId": src.choice(CONTRACTS),
             "entries": _entries(src)}
            for _ in range(src.integer(1, 3))
        ]  # fmt: skip
        return {"e": "md", "d": {"quotes": quotes}}

    def side() -> list[dict[str, Any]]:
        return [
            {"price": _number(src), "size": _number(src, zero=True)}
            for _ in range(src.integer(0, 5))
        ]

    dom = {"contractId": src.choice(CONTRACTS), "timestamp": src.choice(STAMPS)}
    dom.update(bids=side(), offers=side())
    return {"e": "md", "d": {"doms": [dom]}}


def tradovate_answer(src: Source, kind: int | None = None) -> dict[str, Any]:
    i = src.integer(0, 2**40)
    kind = src.integer(0, 4) if kind is None else kind
    if kind == 0:
        d: Any = src.choice(({"id": src.choice(CONTRACTS), "name": "ESZ6"}, "ok", [], None))
        return {"i": i, "s": 200, "d": d}
    if kind == 1:
        text = src.choice(("Unknown", '"Access is denied"', '"a"b"', {"errorText": "Not found"}, 7))
        return {"i": i, "s": src.choice((400, 401, 403, 404, 418, 429, 500, 503)), "d": text}
    penalty: dict[str, Any] = {"p-ticket": f"ticket-{i}", "p-time": src.integer(0, 3600)}
    if kind == 4:
        penalty["p-captcha"] = True
    elif src.integer(0, 1):
        penalty["p-captcha"] = False
    return {"i": i, "s": 200, "d": penalty}


def tradovate_event(src: Source, kind: int | None = None) -> dict[str, Any]:
    kind = src.integer(0, 4) if kind is None else kind
    if kind == 0:
        clock = {"t": src.choice(STAMPS), "s": src.integer(0, 400)}
        return {"e": "clock", "d": src.choice((orjson.dumps(clock).decode(), clock))}
    if kind == 1:
        entity = {"id": src.integer(1, 10**9), "accountId": 7, "netPos": src.integer(-5, 5)}
        return {"e": "props", "d": {"entityType": "position", "eventType": "Updated",
                                    "entity": entity}}  # fmt: skip
    if kind == 2:
        reason = src.choice(("Maintenance", "ConnectionQuotaReached", "IPQuotaReached", "Other"))
        return {"e": "shutdown", "d": {"reasonCode": reason, "reason": "bye"}}
    if kind == 3:
        bar = {"timestamp": src.choice(STAMPS), "open": 1.5, "high": 2.0, "low": 1.0, "close": 1.75}
        return {"e": "chart", "d": {"charts": [{"id": 9, "td": 20240102, "bars": [bar]}]}}
    return {"e": "md", "d": {"histograms": [{"contractId": 1}]}}


def tradovate_items(src: Source) -> list[Any]:
    makers = (tradovate_md, tradovate_md, tradovate_answer, tradovate_event)
    return [src.choice(makers)(src) for _ in range(src.integer(1, 3))]


def valid_samples(seed: int = 0) -> list[tuple[str, str, Any]]:
    """(venue, prefix, value): one valid frame of every builder and variant, for the sweep."""
    src = RandomSource(random.Random(seed))
    out: list[tuple[str, str, Any]] = [
        ("alltick", "", maker(src)) for maker in (alltick_trade, alltick_depth, alltick_answer)
    ]
    out += [("tradovate", "a", [tradovate_md(src, dom)]) for dom in (False, True)]
    out += [("tradovate", "a", [tradovate_answer(src, kind)]) for kind in range(5)]
    out += [("tradovate", "a", [tradovate_event(src, kind)]) for kind in range(5)]
    return [*out, ("tradovate", "c", [3000, "Go away!"])]


# ---- corruptions --------------------------------------------------------------------


def _slots(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in ``value``: the places a field can be corrupted."""
    if isinstance(value, dict):
        for key, inner in value.items():
            out.append((value, key))
            _slots(inner, out)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out.append((value, index))
            _slots(inner, out)
    return out


def corrupt_fields(src: Source, value: Any) -> Any:
    """``value`` with one to three fields replaced, deleted or added (in place)."""
    holder = [value]
    for _ in range(src.integer(1, 3)):
        slots = _slots(holder, [])
        container, key = src.choice(slots)
        action = src.integer(0, 9)
        if action <= 6 or container is holder:
            container[key] = hostile_value(src)
        elif action == 7:
            del container[key]
        elif isinstance(container, dict):
            container[src.choice(UNKNOWN_KEYS)] = hostile_value(src)
        else:
            container[key] = [container[key]]  # one level deeper than expected
    return holder[0]


def every_corruption(value: Any) -> Iterator[Any]:
    """``value`` with one field replaced by each of :data:`HOSTILE` in turn, or deleted.

    The deterministic sweep: every place of a valid frame meets every hostile value.
    """
    count = len(_slots([value], []))
    for index in range(count):
        for replacement in (*HOSTILE, _DELETE):
            holder = [copy.deepcopy(value)]
            container, key = _slots(holder, [])[index]
            if replacement is _DELETE:
                if container is holder:
                    continue
                del container[key]
            elif isinstance(replacement, list | dict):
                container[key] = copy.deepcopy(replacement)
            else:
                container[key] = replacement
            yield holder[0]


_DELETE = object()
INVALID_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xc3")


def corrupt_text(src: Source, wire: str) -> Wire:
    """The serialized frame, broken as text or as bytes."""
    action = src.integer(0, 9)
    cut = src.integer(0, max(len(wire) - 1, 0))
    if action <= 2:
        return wire[:cut]  # truncated: never the whole frame
    if action == 3:
        raw = wire.encode()
        at = src.integer(0, len(raw))
        return raw[:at] + src.choice(INVALID_UTF8) + raw[at:]
    if action == 4:
        return src.choice(("", b"", " ", "\n", "\x00"))
    if action == 5:
        return wire + src.choice((wire, ",", "]", "}", " x", "\x00"))
    if action == 6:
        return src.choice(("[", '{"data":', "a[", "a", "c", "o", "h", "x")) + wire
    if action == 7:
        return wire[:cut] + chr(src.integer(0, 0x7F)) + wire[cut + 1 :]
    if action == 8:
        return wire[1:] if wire[:1] in ("a", "c") else wire.replace('"', "'", 1)
    return wire.encode("utf-16")  # valid text, wrong encoding


def garbage(src: Source) -> Wire:
    action = src.integer(0, 4)
    if action == 0:
        return bytes(src.integer(0, 255) for _ in range(src.integer(0, 64)))
    if action == 1:
        return "".join(chr(src.integer(1, 0x2FFF)) for _ in range(src.integer(0, 64)))
    if action == 2:
        return orjson.dumps(corrupt_fields(src, [0])).decode()
    odd = ("null", "true", "[]", "{}", "0", '""', "a", "a null", "a{}", "c", "c[]", "oo", "h ",
           "hh", "a[[]]", "a[null]", '{"cmd_id":22998}', '{"ret":200}', "o\n", "\ufeff{}",
           '{"cmd_id":22998,"data":[]}', "[" * 2000, "a" + "[" * 5000 + "]" * 5000)  # fmt: skip
    return src.choice(odd)


# ---- the frames ---------------------------------------------------------------------


def valid_frame(src: Source, venue: str) -> tuple[str, Wire]:
    """(kind, wire) of one valid frame of ``venue``."""
    if venue == "alltick":
        kind = src.choice(("trade", "trade", "depth", "answer"))
        makers = {"trade": alltick_trade, "depth": alltick_depth, "answer": alltick_answer}
        return kind, orjson.dumps(makers[kind](src)).decode()
    kind = src.choice(("a", "a", "a", "o", "h", "c"))
    if kind == "a":
        return kind, "a" + orjson.dumps(tradovate_items(src)).decode()
    if kind == "c":
        return kind, "c" + orjson.dumps([src.choice((1000, 3000, 1008)), "Go away!"]).decode()
    return kind, kind


def hostile_frame(src: Source, venue: str) -> tuple[str, Wire]:
    """(label, wire): a frame for ``venue``'s decoder; the label says how it was made."""
    how = src.choice(("valid", "field", "field", "field", "text", "text", "garbage"))
    if how == "garbage":
        return "garbage", garbage(src)
    kind, wire = valid_frame(src, venue)
    if how == "valid":
        return f"{kind}/valid", wire
    if how == "text":
        return f"{kind}/text", corrupt_text(src, str(wire))
    if venue == "alltick":
        value = orjson.loads(wire)
        return f"{kind}/field", orjson.dumps(corrupt_fields(src, value)).decode()
    if kind == "a":
        return "a/field", "a" + orjson.dumps(corrupt_fields(src, orjson.loads(wire[1:]))).decode()
    if kind == "c":
        return "c/field", "c" + orjson.dumps(corrupt_fields(src, orjson.loads(wire[1:]))).decode()
    return f"{kind}/text", corrupt_text(src, str(wire))


@st.composite
def _frames(draw: Callable[[st.SearchStrategy[Any]], Any], venue: str) -> tuple[str, Wire]:
    return hostile_frame(DrawSource(draw), venue)


def frames(venue: str) -> st.SearchStrategy[tuple[str, Wire]]:
    """Hypothesis: (label, wire) hostile frames for ``venue`` (``alltick`` or ``tradovate``)."""
    if venue not in VENUES:
        raise ValueError(venue)
    return _frames(venue)
