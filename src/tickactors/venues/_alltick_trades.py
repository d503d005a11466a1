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

from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal

import msgspec

from .._values import Tick
from ._dialect import MAX_NUMBER, MIN_PRICE

_ZERO: Final = Decimal(0)
_U64: Final = 2**64
_SECONDS_LIMIT: Final = 10**11  # below it, tick_time is in seconds; above, milliseconds
MAX_TEXT: Final = 64  # characters of a decimal string: longer is a broken frame

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
    """
    n = len(frames)
    append = trades.append
    for i in range(start, n):
        frame = frames[i]
        if frame.__class__ is not str:
            # Text frames arrive as str, already checked UTF-8. In bytes, msgspec would let
            # broken UTF-8 pass in a key it skips; the general path (orjson) refuses it.
            return i
        try:
            data = _decode_push(frame).data
        except _NOT_SURE:
            return i
        price: Any = data.price
        volume: Any = data.volume
        turnover: Any = data.turnover
        direction = data.trade_direction
        try:
            price = Decimal(price)
            if not MIN_PRICE <= price < MAX_NUMBER:
                return i
            if volume is not None:
                volume = Decimal(volume)
                if not _ZERO <= volume < MAX_NUMBER:
                    return i
            if turnover is None:
                fields: dict[str, Any] = {} if direction is None else {"trade_direction": direction}
            else:
                turnover = Decimal(turnover)
                if not _ZERO <= turnover < MAX_NUMBER:
                    return i
                fields = (
                    {"turnover": turnover}
                    if direction is None
                    else {"turnover": turnover, "trade_direction": direction}
                )
        except InvalidOperation:  # not a number at all, or NaN compared
            return i
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
