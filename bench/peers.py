"""Fair peers: picows and asyncio ``websockets`` doing our feed's work, as fast as we can.

Used by ``bench/throughput.py`` (``picows_decode``, ``websockets_decode``),
``bench/latency.py`` and ``tests/test_bench_peers.py``. Each peer reads the same frames
from the same replay server as our feed, and delivers to user code what the feed
delivers: for every AllTick 22998 push of a wanted symbol, the same
:class:`~tickactors.Tick` (symbol, exact ``Decimal`` price, volume and turnover, seconds,
``seq``, ``fields``), under the same rules (a frame the feed counts as bad, the peer
counts as bad and skips; a trade of a symbol not wanted is dropped). Only
``received_at`` is each stack's own clock.

The decode (:func:`trade_of`) is the fastest per-frame decode we could write, and the
same method as the feed's fast path: ``msgspec``'s typed decode into small structs that
check the types, the code's length and ``trade_direction`` in C, then exact ``Decimal``
conversions that check the ranges as they go, the digit strings, the ``Tick``. Anything
it is not sure of goes to the very general path the feed uses
(``AllTickDialect.decode_general``: ``orjson`` and dicts), so the rare frames (a price
sent as a JSON number, an answer, a broken frame) are judged as the feed judges them.
``tests/test_bench_peers.py`` checks, on a fixed ring with hostile frames in it, that
both peers deliver exactly the feed's ticks.

picows (``picows_decode``)
    A ``WSListener`` whose ``on_ws_frame`` takes the payload as ``bytes`` (no ``str``:
    msgspec reads bytes; a text frame's UTF-8 is checked first, ``bytes.isascii()`` in
    the usual case, and a broken one ends the connection, as RFC 6455's 1007 does in the
    feed), decodes it, filters the symbol and hands the tick to user code in the same
    call: picows hands over one frame per call, so one tick per call is its natural
    shape, and the quickest (no queue, no task switch). ``received_at`` is read once
    per socket read (``frame.last_in_buffer``), as the feed reads it once per batch.
websockets (``websockets_decode``)
    ``websockets.asyncio.client.connect`` with its defaults, ``await ws.recv()`` (a
    ``str``, UTF-8 checked by websockets), the same decode and filter, user code right
    after.

Why picows's peer decodes frame by frame when picows could let it gather a read's frames
(``frame.last_in_buffer``) as the feed's reader does: a run decoded column by column is no
cheaper per frame in CPython than the row-by-row loop, and one msgspec call over joined
frames is not safe (``docs/performance.md``, "Measured and not kept").

Not done here: the feed's staleness clocks, heartbeats, reconnects, request tracking
and ghost reports. The peers do less than the feed, never more.
"""

from __future__ import annotations

import asyncio
import decimal
import time
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, cast

import msgspec

from _common import subscribe_request
from tickactors._errors import ProtocolError
from tickactors._values import Tick
from tickactors.venues import AllTick
from tickactors.venues._dialect import MAX_NUMBER, MIN_PRICE, MarketBatch

_DIALECT = AllTick(url="ws://127.0.0.1:9/quote-b-ws-api", token="t").dialect
_U64: Final = 2**64
_SECONDS_LIMIT: Final = 10**11
_MAX_TEXT: Final = 64
# Exact conversions that raise for anything inexact or out of range (1e30 and beyond; a
# price below 1e-30): the feed's method, see ``tickactors.venues._alltick_trades``.
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
_PRICE: Final = decimal.Context(
    prec=_MAX_TEXT, Emax=MAX_NUMBER.adjusted() - 1, Emin=MIN_PRICE.adjusted(), traps=_TRAPS
).create_decimal
_SIZE: Final = decimal.Context(
    prec=_MAX_TEXT, Emax=MAX_NUMBER.adjusted() - 1, Emin=decimal.MIN_EMIN, traps=_TRAPS
).create_decimal
_Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Unsigned = Annotated[int, msgspec.Meta(ge=0)]
_Text = Annotated[str, msgspec.Meta(max_length=64)]


class _Data(msgspec.Struct, gc=False):
    code: _Code
    price: _Text
    volume: _Text | None = None
    tick_time: _Unsigned | str | None = None
    seq: _Unsigned | str | None = None
    turnover: _Text | None = None
    trade_direction: Literal[0, 1, 2] | None = None


class _Push(msgspec.Struct, gc=False):
    cmd_id: Literal[22998]
    data: _Data


_decode: Final = msgspec.json.Decoder(_Push).decode
_NOT_SURE: Final = (msgspec.MsgspecError, RecursionError, ValueError)


def _general(payload: str | bytes, received_at: float) -> Tick | None:
    """The feed's general path: the trade of ``payload``, None for any other valid frame;
    ``ProtocolError`` for a bad one."""
    batch = MarketBatch()
    _DIALECT.decode_general(payload, received_at, batch)
    return batch.trades[0] if batch.trades else None


def _maybe_deep(payload: str | bytes) -> bool:
    """Whether the frame might nest deeper than orjson reads (the feed's rule, see
    ``take_trades``)."""
    if isinstance(payload, bytes):
        return payload.count(b"[") + payload.count(b"{") > 1024
    return payload.count("[") + payload.count("{") > 1024


def trade_of(payload: str | bytes, received_at: float) -> Tick | None:
    """The ``Tick`` of one frame (valid UTF-8), None if it is valid but not a trade (an
    answer, a book); raises ``ProtocolError`` for a frame the feed counts as bad."""
    if len(payload) > 1024 and _maybe_deep(payload):
        return _general(payload, received_at)  # maybe deeper than orjson reads, as the feed
    try:
        data = _decode(payload).data
        price: Any = _PRICE(data.price)
        volume: Any = data.volume
        if volume is not None:
            volume = _SIZE(volume)
            if volume.is_signed() or not volume.is_finite():
                return _general(payload, received_at)
        turnover: Any = data.turnover
        if turnover is not None:
            turnover = _SIZE(turnover)
            if turnover.is_signed() or not turnover.is_finite():
                return _general(payload, received_at)
    except _NOT_SURE:
        return _general(payload, received_at)
    except decimal.DecimalException:
        return _general(payload, received_at)
    if price.is_signed() or not price.is_normal():
        return _general(payload, received_at)
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
                return _general(payload, received_at)
            stamp = int(stamp)
        if stamp >= _U64:
            return _general(payload, received_at)
        stamp = float(stamp) if stamp < _SECONDS_LIMIT else stamp / 1000.0
    seq: Any = data.seq
    if seq is not None:
        if seq.__class__ is str:
            if not seq.isdigit() or not seq.isascii() or len(seq) > 20:
                return _general(payload, received_at)
            seq = int(seq)
        if seq >= _U64:
            return _general(payload, received_at)
    return Tick(data.code, price, volume, stamp, seq, received_at, fields)


class PeerStats:
    """What a peer counted besides the ticks it delivered."""

    def __init__(self) -> None:
        self.frames = 0
        self.bad_frames = 0
        self.ghosts = 0
        self.closed: str | None = None


# -- picows ------------------------------------------------------------------------------

OnTick = Callable[[Tick], bool]  # user code: True once it wants no more


async def picows_peer(
    url: str, symbols: list[str], on_tick: OnTick, *, stats: PeerStats | None = None
) -> PeerStats:
    """Read ``url`` with picows until ``on_tick`` returns True or the connection ends."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    text = WSMsgType.TEXT
    wanted = frozenset(symbols)
    counted = stats if stats is not None else PeerStats()
    loop_time = asyncio.get_running_loop().time

    class Listener(WSListener):
        def __init__(self) -> None:
            self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.now: float | None = None

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            now = self.now
            if now is None:
                now = self.now = loop_time()
            if frame.last_in_buffer:
                self.now = None
            counted.frames += 1
            if frame.msg_type is not text or not frame.fin:
                self._other(transport, frame)
                return
            payload = frame.get_payload_as_bytes()
            if not payload.isascii():
                try:
                    payload.decode()
                except UnicodeDecodeError:
                    self._end(transport, "1007 invalid UTF-8 in a text frame")
                    return
            try:
                tick = trade_of(payload, now)
            except ProtocolError:
                counted.bad_frames += 1
                return
            if tick is None:
                return
            if tick.symbol not in wanted:
                counted.ghosts += 1
                return
            if on_tick(tick):
                self._end(transport, None)

        def _other(self, transport: WSTransport, frame: WSFrame) -> None:
            kind = frame.msg_type
            if kind is WSMsgType.CLOSE:
                self._end(transport, f"closed by the server ({frame.get_close_code()})")
            elif kind is WSMsgType.BINARY and frame.fin:
                # As the feed: a binary message goes the general way (orjson checks UTF-8).
                try:
                    tick = _general(frame.get_payload_as_bytes(), loop_time())
                except ProtocolError:
                    counted.bad_frames += 1
                    return
                if tick is not None and tick.symbol in wanted and on_tick(tick):
                    self._end(transport, None)
            elif kind in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                self._end(transport, "fragmented messages: not sent by the replay server")

        def _end(self, transport: WSTransport, why: str | None) -> None:
            counted.closed = why
            if not self.done.done():
                self.done.set_result(None)
            transport.disconnect()

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if not self.done.done():
                counted.closed = counted.closed or "disconnected"
                self.done.set_result(None)

    transport, opened = await ws_connect(Listener, url)
    listener = cast(Listener, opened)
    transport.send(WSMsgType.TEXT, subscribe_request(symbols).encode())
    try:
        await listener.done
    finally:
        transport.disconnect()
        await transport.wait_disconnected()
    return counted


# -- websockets --------------------------------------------------------------------------


async def websockets_peer(
    url: str, symbols: list[str], on_tick: OnTick, *, stats: PeerStats | None = None
) -> PeerStats:
    """Read ``url`` with asyncio websockets until ``on_tick`` returns True or it ends."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    wanted = frozenset(symbols)
    counted = stats if stats is not None else PeerStats()
    clock = time.monotonic
    async with connect(url) as ws:
        await ws.send(subscribe_request(symbols))
        recv = ws.recv
        while True:
            try:
                message = await recv()
            except ConnectionClosed as exc:
                counted.closed = f"closed ({exc})"
                break
            counted.frames += 1
            try:
                # A binary message (bytes) goes the general way, as in the feed.
                tick = (
                    trade_of(message, clock())
                    if message.__class__ is str
                    else _general(message, clock())
                )
            except ProtocolError:
                counted.bad_frames += 1
                continue
            if tick is None:
                continue
            if tick.symbol not in wanted:
                counted.ghosts += 1
                continue
            if on_tick(tick):
                break
    return counted


PEERS: Final[dict[str, Callable[..., Any]]] = {
    "picows_decode": picows_peer,
    "websockets_decode": websockets_peer,
}
