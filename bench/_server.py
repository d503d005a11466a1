"""A replaying AllTick server for benchmarks: the simulator's 22998 frames, as fast as TCP allows.

Why not ``python -m tickactors sim --firehose``? The simulator computes every
trade (random walk, decimal formatting, JSON encoding), passes it through a
memory channel and writes it with one ``send`` per few frames: about 35-40 us
of CPU per frame, a ceiling of ~25k frames/s on one core. A trio-websocket
client reads faster than that, so against the simulator a benchmark measures
the simulator. This server does the expensive part once: on start (and for any
new subscription) it asks the simulator's own market and encoder
(``tickactors.sim._market``, ``tickactors.sim._alltick_protocol``, "mixed" wire
variants, the firehose's round-robin over the sorted codes) for a ring of
``--ring`` frames, frames them once into ~48 KiB chunks, and then only calls
``sendall`` on those chunks in a loop. Server CPU per frame is then a fraction
of a microsecond. The wire content is the simulator's; only ``seq`` repeats
every ring length (nothing in the feed checks ``seq`` continuity).

Paced and stamped streams (``bench/latency.py``, ``bench/connections.py``): the
upgrade's query may carry ``rate=R`` (frames per second, per connection; absent or 0:
as fast as the client reads) and ``stamp=1``: every frame's ``seq`` (a 16-digit integer
in the simulator's frames) is overwritten, just before the write that carries it, with
``STAMP_OFFSET + time.monotonic_ns()`` (``CLOCK_MONOTONIC``: one clock for every process
of the machine). Every client decodes ``seq`` anyway, so when user code holds the tick,
``time.monotonic_ns() - (tick.seq - STAMP_OFFSET)`` is the time since the server's write,
on one clock. Paced frames go out in as few writes as the pacing allows: one frame a
write at 1,000 frames/s, a few at 20,000 (``time.sleep`` cannot wait 50 us), at most 256.
``once=1`` sends the ring once, then nothing (``tests/test_bench_peers.py``).

``--frames FILE`` replaces the simulator's ring by the payloads of a file (one JSON
text per line, sent as text frames in that order, whatever codes were subscribed).

Protocol, enough for the feed and a bare client: the HTTP upgrade on
``/quote-b-ws-api`` or ``/quote-stock-b-ws-api`` with a non-empty ``token``;
requests are answered like the simulator answers them (200 for 22000, 22002,
22004, 22006, no rate rule); an accepted 22004 replaces the streamed codes and
(re)starts streaming, 22006 stops it; pings are answered; a close frame is
answered and ends the connection. Depth (22002) is acknowledged and not
streamed.

One thread reads each connection, one thread streams to it; a lock orders
writes. The first line on stdout is ``listening ws://127.0.0.1:PORT/quote-b-ws-api``.
The process exits when stdin closes (its parent died or closed the pipe) or on
SIGTERM/SIGINT. Loopback only.

Run: ``python bench/_server.py --port 0 --codes BTCUSDT,EURUSD``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from tickactors.sim import _alltick_protocol as proto
from tickactors.sim._market import Market

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHUNK_FRAMES = 256
#: A stamp is ``STAMP_OFFSET + time.monotonic_ns()``: 16 digits, the width of the
#: simulator's ``seq``, for the first 104 days of uptime (checked), so no frame changes size.
STAMP_OFFSET = 10**15
_STAMP_DIGITS = 16
_SEQ_KEY = b'"seq":'
_OP_CONT, _OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def payloads(codes: tuple[str, ...], size: int, seed: int) -> list[bytes]:
    """At least ``size`` 22998 pushes as the simulator's firehose writes them (also used by
    ``bench/decode.py``): its market, its encoder, "mixed" wire variants, and the
    round-robin over the sorted codes."""
    market = Market(seed, time.time())
    rng = random.Random(f"{seed}:stream")
    out: list[bytes] = []
    while len(out) < size:
        for code in codes:
            trade = market.trade(code, time.time())
            out.append(proto.encode_trade(trade, proto.choose_variant(rng, "mixed")))
    return out


class Ring:
    """One ring of framed pushes: whole chunks for the fast stream, single frames (with
    where each one's ``seq`` digits lie, -1 for none) for the paced and stamped one."""

    def __init__(self, payloads: list[bytes]) -> None:
        self.frames = [frame(_OP_TEXT, p) for p in payloads]
        self.chunks = [
            b"".join(self.frames[i : i + _CHUNK_FRAMES])
            for i in range(0, len(self.frames), _CHUNK_FRAMES)
        ]
        self.seq_at = [_seq_at(f) for f in self.frames]


def _seq_at(framed: bytes) -> int:
    """Where the 16 digits of an integer ``seq`` start in a framed push; -1 if it has none."""
    at = framed.find(_SEQ_KEY)
    if at < 0:
        return -1
    at += len(_SEQ_KEY)
    digits = framed[at : at + _STAMP_DIGITS + 1]
    if len(digits) <= _STAMP_DIGITS or not digits[:_STAMP_DIGITS].isdigit():
        return -1
    return at if not digits[_STAMP_DIGITS:].isdigit() else -1


class Rings:
    """A :class:`Ring` of 22998 pushes per set of codes, built once each (or the one ring
    of ``--frames``)."""

    def __init__(self, size: int, seed: int, fixed: list[bytes] | None = None) -> None:
        self._size = size
        self._seed = seed
        self._lock = threading.Lock()
        self._rings: dict[tuple[str, ...], Ring] = {}
        self._fixed = Ring(fixed) if fixed is not None else None

    def get(self, codes: tuple[str, ...]) -> Ring:
        if self._fixed is not None:
            return self._fixed
        with self._lock:
            ring = self._rings.get(codes)
            if ring is None:
                ring = self._rings[codes] = Ring(payloads(codes, self._size, self._seed))
            return ring


@dataclass(frozen=True)
class Pace:
    """How one connection wants its stream (the upgrade's query, see the module docstring)."""

    rate: float = 0.0
    stamp: bool = False
    once: bool = False

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Pace:
        def first(name: str) -> str:
            return query.get(name, [""])[0]

        return cls(float(first("rate") or 0), first("stamp") == "1", first("once") == "1")


class Connection:
    """One client: the reader runs in the accepting thread, the streamer in its own."""

    def __init__(self, sock: socket.socket, rings: Rings) -> None:
        self._sock = sock
        self._rings = rings
        self._write_lock = threading.Lock()
        self._buffer = bytearray()
        self._stream_stop: threading.Event | None = None
        self._streamer: threading.Thread | None = None
        self._pace = Pace()
        self.closed = False

    # -- bytes in and out ---------------------------------------------------------------

    def _recv_more(self) -> bool:
        try:
            data = self._sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self._buffer += data
        return True

    def _send(self, data: bytes) -> bool:
        if self.closed:
            return False
        with self._write_lock:
            try:
                self._sock.sendall(data)
            except OSError:
                self.closed = True
                return False
        return True

    # -- handshake ----------------------------------------------------------------------

    def handshake(self) -> str | None:
        """Complete the upgrade; the token on success, None if refused or gone."""
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > 65536 or not self._recv_more():
                return None
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        target = parts[1] if len(parts) >= 2 else ""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path, _, query = target.partition("?")
        key = headers.get("sec-websocket-key")
        if path not in proto.PATHS or key is None:
            self._send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return None
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        self._send(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        fields = parse_qs(query)
        token = fields.get("token", [""])[0]
        try:
            self._pace = Pace.from_query(fields)
        except ValueError:
            token = ""
        if not token:
            self._send(frame(_OP_TEXT, proto.encode_answer(*proto.TOKEN_INVALID, 0)))
            self._send(frame(_OP_CLOSE, struct.pack("!H", 1008) + b"token invalid"))
            return None
        return token

    # -- inbound frames -----------------------------------------------------------------

    def _next_frame(self) -> tuple[int, bool, bytes] | None:
        """(opcode, fin, unmasked payload) of the next client frame; None once gone."""
        buf = self._buffer
        while True:
            if len(buf) >= 2:
                fin, opcode = buf[0] & 0x80, buf[0] & 0x0F
                length, at = buf[1] & 0x7F, 2
                if length == 126 and len(buf) >= 4:
                    length, at = struct.unpack_from("!H", buf, 2)[0], 4
                elif length == 127 and len(buf) >= 10:
                    length, at = struct.unpack_from("!Q", buf, 2)[0], 10
                elif length >= 126:
                    length = -1
                masked = buf[1] & 0x80
                end = at + (4 if masked else 0) + length
                if length >= 0 and len(buf) >= end:
                    payload = bytes(buf[end - length : end])
                    if masked:
                        mask = buf[at : at + 4] * (length // 4 + 1)
                        payload = bytes(a ^ b for a, b in zip(payload, mask, strict=False))
                    del buf[:end]
                    return opcode, bool(fin), payload
            if not self._recv_more():
                return None

    def serve(self) -> None:
        parts: list[bytes] = []
        while True:
            got = self._next_frame()
            if got is None:
                break
            opcode, fin, payload = got
            if opcode == _OP_CLOSE:
                self._stop_streaming()
                self._send(frame(_OP_CLOSE, payload[:2]))
                break
            if opcode == _OP_PING:
                self._send(frame(_OP_PONG, payload))
                continue
            if opcode in (_OP_TEXT, _OP_CONT):
                parts.append(payload)
                if fin:
                    self._request(b"".join(parts).decode("utf-8", "replace"))
                    parts = []
        self.closed = True
        self._stop_streaming()

    def _request(self, message: str) -> None:
        req = proto.parse_request(message)
        if req.error is not None:
            ret, msg, _ = req.error
            self._send(frame(_OP_TEXT, proto.encode_answer(ret, msg, req.answer_id, req.seq_id)))
            return
        self._send(
            frame(_OP_TEXT, proto.encode_answer(*proto.OK, req.answer_id, req.seq_id, req.trace))
        )
        if req.cmd_id == proto.SUB_TRADES:
            entries = req.data.get("symbol_list") or []
            codes = tuple(
                sorted(
                    {
                        e["code"]
                        for e in entries
                        if isinstance(e, dict) and isinstance(e.get("code"), str)
                    }
                )
            )
            self._stop_streaming()
            if codes:
                self._start_streaming(self._rings.get(codes))
        elif req.cmd_id == proto.CANCEL:
            self._stop_streaming()

    # -- streaming ----------------------------------------------------------------------

    def _start_streaming(self, ring: Ring) -> None:
        stop = threading.Event()
        self._stream_stop = stop
        pace = self._pace
        plain = not pace.rate and not pace.stamp and not pace.once
        target = self._stream if plain else self._stream_paced
        self._streamer = threading.Thread(target=target, args=(ring, stop), daemon=True)
        self._streamer.start()

    def _stop_streaming(self) -> None:
        if self._stream_stop is not None:
            self._stream_stop.set()
        if self._streamer is not None and self._streamer is not threading.current_thread():
            self._streamer.join(timeout=10)
        self._stream_stop = self._streamer = None

    def _stream(self, ring: Ring, stop: threading.Event) -> None:
        chunks = ring.chunks
        while not stop.is_set():
            for chunk in chunks:
                if stop.is_set() or not self._send(chunk):
                    return

    def _stream_paced(self, ring: Ring, stop: threading.Event) -> None:
        """Frames at ``rate`` a second (or as fast as read), stamped if asked, once if asked."""
        rate, stamp, once = self._pace.rate, self._pace.stamp, self._pace.once
        frames, seq_at = ring.frames, ring.seq_at
        n = len(frames)
        j = sent = 0
        start = time.monotonic()
        while not stop.is_set():
            if rate:
                elapsed = time.monotonic() - start
                due = int(elapsed * rate) + 1 - sent  # frame k is due at k / rate
                if due <= 0:
                    time.sleep(max(sent / rate - elapsed, 0.0))
                    continue
                k = min(due, _CHUNK_FRAMES)
            else:
                k = _CHUNK_FRAMES
            if once:
                k = min(k, n - sent)
                if k <= 0:
                    return
            picked = [(frames[(j + m) % n], seq_at[(j + m) % n]) for m in range(k)]
            data = bytearray(b"".join(f for f, _ in picked))
            if stamp:
                now = STAMP_OFFSET + time.monotonic_ns()
                digits = str(now).encode()
                assert len(digits) == _STAMP_DIGITS, "uptime beyond the stamp's 16 digits"
                pos = 0
                for f, at in picked:
                    if at >= 0:
                        data[pos + at : pos + at + _STAMP_DIGITS] = digits
                    pos += len(f)
            if not self._send(data):
                return
            j = (j + k) % n
            sent += k


def _serve_one(sock: socket.socket, rings: Rings) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(sock, rings)
    try:
        if conn.handshake() is not None:
            conn.serve()
    finally:
        conn.closed = True
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _exit_when_stdin_closes() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/_server.py", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument("--codes", default="", help="comma-separated codes to prepare at start")
    parser.add_argument("--ring", type=int, default=16384, help="frames per ring (default 16384)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated market")
    parser.add_argument("--frames", help="a file of payloads (one a line) to send instead")
    args = parser.parse_args(argv)
    fixed = None
    if args.frames:
        with open(args.frames, "rb") as f:
            fixed = [line.rstrip(b"\n") for line in f if line.strip()]
    rings = Rings(args.ring, args.seed, fixed)
    codes = tuple(sorted({c for c in args.codes.split(",") if c}))
    if codes:
        rings.get(codes)
    listener = socket.create_server(("127.0.0.1", args.port))
    port = listener.getsockname()[1]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    print(f"listening ws://127.0.0.1:{port}/quote-b-ws-api", flush=True)
    try:
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=_serve_one, args=(sock, rings), daemon=True).start()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
