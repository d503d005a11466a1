"""AllTick's trade push (22998) on the hot path: msgspec's typed decode, then our checks.

``msgspec`` parses the frame straight into small structs that already know each
field's type and the code's length (about 0.4 us a frame, against 0.75 us for
``orjson.loads`` building dicts), so what is left in Python is what the types cannot say:
the decimal values and their ranges, digit strings turned into integers, the
``Tick`` itself. ``bench/decode.py`` measured the alternatives; ``docs/performance.md``
has the table.

It accepts what the general path in ``_alltick`` accepts and builds the same ``Tick``.
Anything it is not sure of (a frame of another kind, a field of an unexpected type,
broken JSON or UTF-8, JSON nested too deep, a value out of range) it leaves alone, and
the general path decides, with its own error message. Prices, volumes and turnovers are
taken as text only (``Decimal(text)``, as the general path does); one sent as a JSON
number goes the general way, where ``orjson`` reads it as the general path always has.
One difference: a number too large for a double in a field the trade does not use
(``"x": 1e400``) is skipped here, where ``orjson`` refuses the whole frame; the frame is
valid JSON and the trade in it whole, so it is delivered.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

from .._values import Tick
from ._dialect import MAX_NUMBER, MIN_PRICE

_U64: Final = 2**64
_SECONDS_LIMIT: Final = 10**11  # below it, tick_time is in seconds; above, milliseconds
MAX_TEXT: Final = 64  # characters of a decimal string: longer is a broken frame
_DEEP: Final = 1024  # orjson's nesting limit: a frame that might pass it goes the general way

#: Every signal a conversion can raise is trapped, so ``create_decimal`` either returns the
#: very ``Decimal(text)`` (no rounding can happen: at most ``MAX_TEXT`` digits) or raises.
#: ``Emax=29`` makes a value of 1e30 or more raise (``Overflow``): the upper bound of
#: ``_dialect.MAX_NUMBER``, checked by the conversion itself. Prices also get ``Emin=-30``,
#: so a positive value below ``MIN_PRICE`` (1e-30) raises (``Subnormal``). What no signal
#: catches (a sign, zero, NaN, infinity) the caller checks with a method call each.
_TRAPS: Final = [
    decimal.InvalidOperation,
    decimal.Overflow,
    decimal.Underflow,
    decimal.Subnormal,
    decimal.Inexact,
    decimal.Rounded,
    decimal.Clamped,
    decimal.DivisionByZero,
    decimal.FloatOperation,
]
if not all(b.normalize().as_tuple().digits == (1,) for b in (MIN_PRICE, MAX_NUMBER)):
    raise AssertionError("the fast path checks bounds that are powers of ten only")
_EMAX: Final = MAX_NUMBER.adjusted() - 1  # 29: 1e30 and beyond overflow
_PRICE: Final = decimal.Context(
    prec=MAX_TEXT, Emax=_EMAX, Emin=MIN_PRICE.adjusted(), traps=_TRAPS
).create_decimal
_SIZE: Final = decimal.Context(
    prec=MAX_TEXT, Emax=_EMAX, Emin=decimal.MIN_EMIN, traps=_TRAPS
).create_decimal

_Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Unsigned = Annotated[int, msgspec.Meta(ge=0)]  # and below 2**64: checked in Python
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class _TradeData(msgspec.Struct, gc=False):
    code: _Code
    price: _Text
    volume: _Text | None = None
    tick_time: _Unsigned | str | None = None
    seq: _Unsigned | str | None = None
    turnover: _Text | None = None
    trade_direction: Literal[0, 1, 2] | None = None


class _TradePush(msgspec.Struct, gc=False):
    cmd_id: Literal[22998]  # a field, not a struct tag: a tag may be left out
    data: _TradeData


_decode_push: Final[Callable[[str], _TradePush]] = msgspec.json.Decoder(_TradePush).decode
#: What makes the fast path step aside for the general one.
_NOT_SURE: Final = (msgspec.MsgspecError, RecursionError, ValueError)  # ValueError: surrogates


def take_trades(
    frames: Sequence[str | bytes], start: int, received_at: float, trades: list[Tick]
) -> int:
    """Append the ``Tick`` of each frame from ``frames[start]`` on; the index of the first not
    taken (``len(frames)`` when all were).

    A frame is taken when it is a plain, valid 22998 push. The first one that is not
    (another kind of frame, a value that breaks the rules, a price sent as a JSON number)
    stops the run: the caller hands it to the general path, which decodes it or raises
    ``ProtocolError`` with its own message (so a bad frame reads the same whichever path
    saw it first), and calls again from the next index. Ticks stay in frame order.
    Never raises.

    The decimals: ``_PRICE`` and ``_SIZE`` (above) convert the text exactly or raise, and
    check the upper bound (and the price's lower one) on the way; then a negative sign
    (``-0`` included), a zero price, NaN and infinities step aside. The few values the
    fast path refuses this way and the general path accepts (a volume of ``-0`` or
    ``0E+100``, a text with spaces or underscores, which ``create_decimal`` does not
    take) are still delivered, by the general path, as the same ``Tick``.
    """
    n = len(frames)
    append = trades.append
    price_of, size_of = _PRICE, _SIZE
    for i in range(start, n):
        frame = frames[i]
        if frame.__class__ is not str:
            # Text frames arrive as str, already checked UTF-8. In bytes, msgspec would let
            # broken UTF-8 pass in a key it skips; the general path (orjson) refuses it.
            return i
        if len(frame) > _DEEP and frame.count("[") + frame.count("{") > _DEEP:
            # Possibly nested deeper than orjson reads (1024). msgspec refuses that only
            # while Python's recursion limit is low: a process that raised it (mypy's API
            # does) would have the fast path deliver what the general path refuses.
            return i
        try:
            data = _decode_push(frame).data
            price: Any = price_of(data.price)
            volume: Any = data.volume
            if volume is not None:
                volume = size_of(volume)
                if volume.is_signed() or not volume.is_finite():
                    return i
            turnover: Any = data.turnover
            if turnover is not None:
                turnover = size_of(turnover)
                if turnover.is_signed() or not turnover.is_finite():
                    return i
        except _NOT_SURE:
            return i
        except decimal.DecimalException:  # not a number, out of range, or not exact
            return i
        if price.is_signed() or not price.is_normal():  # NaN, infinite, zero or negative
            return i
        direction = data.trade_direction
        if turnover is None:
            fields: dict[str, Any] = {} if direction is None else {"trade_direction": direction}
        elif direction is None:
            fields = {"turnover": turnover}
        else:
            fields = {"turnover": turnover, "trade_direction": direction}
        stamp: Any = data.tick_time
        if stamp is not None:
            if stamp.__class__ is str:
                if not stamp.isdigit() or not stamp.isascii() or len(stamp) > 20:
                    return i
                stamp = int(stamp)
            if stamp >= _U64:
                return i
            stamp = float(stamp) if stamp < _SECONDS_LIMIT else stamp / 1000.0
        seq: Any = data.seq
        if seq is not None:
            if seq.__class__ is str:
                if not seq.isdigit() or not seq.isascii() or len(seq) > 20:
                    return i
                seq = int(seq)
            if seq >= _U64:
                return i
        append(Tick(data.code, price, volume, stamp, seq, received_at, fields))
    return n


def fast_trade(frame: str | bytes, received_at: float) -> Tick | None:
    """The frame's ``Tick`` when :func:`take_trades` takes it, else None."""
    out: list[Tick] = []
    return out[0] if take_trades((frame,), 0, received_at, out) else None
