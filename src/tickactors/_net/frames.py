"""The batched transport's frame scanner: where frames begin and end, and the fast path.

Two functions, both pure (bytes in, indexes out), used by
:class:`~tickactors._net.batched.BatchedTransport`, and its permessage-deflate extension
(:class:`Deflate`, which inflates under a bound):

:func:`take_plain` is the fast path. From an index at a frame boundary it
consumes every frame that is *plainly* a whole message: FIN set, RSV bits
clear, opcode text (``0x81``) or binary (``0x82``), unmasked, payload wholly in
the buffer, no larger than the size limit, its length in the fewest bytes (as RFC 6455
requires) and, for text, valid UTF-8 (the ``bytes.decode`` that makes the ``str`` is the
validation). The usual frame of a market feed (text, 126 to 65,535 bytes) is read with
one ``struct`` call for its four header bytes. It stops at the first
frame that is anything else and returns that frame's index. It never decides
an error: a frame it does not take goes to wsproto, which sees exactly the
bytes it would have seen without the fast path and gives its own verdict
(1002, 1007, ...), or the transport's size check gives 1009.

:func:`frame_end` reads any frame's header (masked or not, any opcode) and
says where the frame ends, so the transport can hand wsproto whole frames and
know when wsproto is back at a frame boundary.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Final

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

TEXT_FIN: Final = 0x81  # FIN, RSV clear, opcode 1
BINARY_FIN: Final = 0x82  # FIN, RSV clear, opcode 2
_TEXT_16: Final = TEXT_FIN << 8 | 126  # ... unmasked, its length in the next two bytes
#: A frame's first two bytes and the 16-bit length behind them, in one call.
_HEADER: Final = struct.Struct(">HH").unpack_from


def take_plain(data: bytes, i: int, append: Callable[[str | bytes], None], limit: int) -> int:
    """Append the message of every plain frame from ``data[i:]`` on; the index of the first other.

    The caller guarantees that ``i`` is a frame boundary outside any fragmented
    message: a plain frame is then a whole message by itself.
    """
    n = len(data)
    header = _HEADER
    while True:
        start = i + 4
        if start <= n:
            first, size = header(data, i)
            if first == _TEXT_16:
                # The common case, read with one call: a text frame of 126 to 65,535 bytes.
                end = start + size
                if end > n or size > limit or size < 126:  # < 126: not minimal (wsproto: 1002)
                    return i
                try:
                    append(data[start:end].decode())
                except UnicodeDecodeError:
                    return i  # wsproto will say 1007
                i = end
                continue
        if n - i < 2:
            return i
        b0 = data[i]
        if b0 != TEXT_FIN and b0 != BINARY_FIN:
            return i
        size = data[i + 1]  # the mask bit is 0x80: any value >= 128 is a masked frame
        if size < 126:
            start = i + 2
        elif size == 126:
            start = i + 4
            if start > n:
                return i
            size = data[i + 2] << 8 | data[i + 3]
            if size < 126:
                return i
        elif size == 127:
            start = i + 10
            if start > n:
                return i
            size = int.from_bytes(data[i + 2 : start], "big")
            if size < 65536:
                return i
        else:
            return i
        end = start + size
        if end > n or size > limit:
            return i
        if b0 == TEXT_FIN:
            try:
                append(data[start:end].decode())
            except UnicodeDecodeError:
                return i
        else:
            append(data[start:end])
        i = end


def frame_end(data: bytes, i: int) -> int | None:
    """Where the frame at ``data[i]`` ends (maybe past the buffer); None if its header is cut."""
    n = len(data)
    if n - i < 2:
        return None
    second = data[i + 1]
    size = second & 0x7F
    start = i + 2
    if size == 126:
        start += 2
        if start > n:
            return None
        size = int.from_bytes(data[i + 2 : start], "big")
    elif size == 127:
        start += 8
        if start > n:
            return None
        size = int.from_bytes(data[i + 2 : start], "big")
    if second & 0x80:
        start += 4  # the masking key (servers must not mask: wsproto says 1002)
    return start + size


class Deflate(PerMessageDeflate):
    """wsproto's permessage-deflate, with control frames kept out of the message's state
    and every message inflated under a bound.

    Control frames: wsproto 1.3 runs a control frame through the same hooks as data
    frames, and the ping's completion resets the "this message is compressed" flag: a ping
    (or pong) between the fragments of a compressed message makes the next fragment pass
    uncompressed, and the message fail with 1007 (wsproto PR #205, open). Here the hooks
    ignore control frames, which RFC 7692 never compresses (RSV1 on one is still refused).

    The bound: deflate packs up to about 1,000 bytes into one, and wsproto inflates each
    piece of payload whole (``decompress(data)``), so a compressed message of 1 MiB (a
    "compression bomb") would become a gigabyte in memory before anyone could check its
    size. Here every inflate runs with ``max_length``: the room left under
    ``max_message_size`` for this message, plus one byte. Output that reaches it means
    the message is too big: the hook answers 1009 (``MESSAGE_TOO_BIG``), wsproto turns
    that into its close event and the transport sends close 1009, and the rest of the
    input is never inflated. A message therefore costs at most ``max_message_size`` of
    inflated bytes, whatever its compression ratio, counted over its fragments.
    """

    _control = False

    def __init__(self, *, max_message_size: int = 1 << 20) -> None:
        super().__init__()
        self.max_message_size = max_message_size
        self._inflated = 0  # bytes inflated so far of the message being received

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        self._control = opcode.iscontrol()
        if self._control:
            return CloseReason.PROTOCOL_ERROR if rsv.rsv1 else RsvBits(False, False, False)
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self._control or not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(bytes(data))

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if self._control or not fin:
            return None
        compressed = self._inbound_compressed and self._inbound_is_compressible
        self._inbound_compressed = None
        if not compressed:
            self._inflated = 0
            return None
        # The end of a compressed message: the empty block RFC 7692 strips. What it
        # inflates is all there is (an inflate that stayed under its bound consumed its
        # input whole), so wsproto's ``flush()`` after it is not needed.
        data = self._inflate(b"\x00\x00\xff\xff")
        self._inflated = 0
        if isinstance(data, CloseReason):
            return data
        takeover = (
            self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        )
        if takeover:
            self._decompressor = None
        return data

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        """Inflate ``data``, never beyond the message's limit (then: 1009)."""
        decompressor = self._decompressor
        assert decompressor is not None
        room = self.max_message_size - self._inflated
        try:
            out = decompressor.decompress(data, room + 1)  # max_length 0 would mean "no limit"
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(out) > room:
            return CloseReason.MESSAGE_TOO_BIG
        self._inflated += len(out)
        return out
