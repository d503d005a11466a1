"""Micro-benchmark: the batched transport's receive side, bytes in -> messages out.

``python bench/frames.py`` (``--frames N``, ``--runs N``, ``--json``).

No socket, no event loop: a stream of AllTick-like 22998 text frames (~165 bytes
of JSON each) is cut into 64 KiB reads, as ``receive_some`` would return them,
and fed to ``BatchedTransport._receive``; each case reports the median over
``--runs`` of the time per frame. Cases:

fast_path
    the default: plain frames parsed by :func:`tickactors._net.frames.take_plain`.
wsproto
    ``fast_path=False``: every frame through wsproto's events (what the
    transport did before the fast path).
scan_no_utf8
    the fast path's loop with ``bytes`` slices and no ``decode``: what the UTF-8
    validation (the decode that makes the ``str``) costs on top.
deflate_wsproto
    the same messages compressed (permessage-deflate, context takeover, as
    asyncio ``websockets`` sends them by default), inflated by wsproto.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable

from wsproto.connection import Connection, ConnectionType
from wsproto.extensions import PerMessageDeflate

from tickactors._net.batched import RECEIVE_SIZE, BatchedTransport
from tickactors._net.frames import BINARY_FIN, TEXT_FIN


def payloads(count: int) -> list[bytes]:
    """22998 pushes with random prices, volumes and turnovers (what deflate sees in practice)."""
    rng = random.Random(7)
    codes = ["BTCUSDT", "ETHUSDT", "EURUSD", "700.HK"]
    out = []
    for i in range(count):
        price = rng.uniform(1, 60000)
        volume = rng.uniform(0, 10)
        out.append(
            (
                f'{{"cmd_id":22998,"data":{{"code":"{codes[i % 4]}","seq":"{1795298359000001 + i}",'
                f'"tick_time":"{1795298359 + i // 1000}","price":"{price:.2f}","volume":'
                f'"{volume:.4f}","turnover":"{price * volume:.6f}","trade_direction":'
                f"{rng.choice((0, 1, 2))}}}}}"
            ).encode()
        )
    return out


def frame(payload: bytes, first: int = TEXT_FIN) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([first, n]) + payload
    return bytes([first, 126]) + n.to_bytes(2, "big") + payload


def reads(stream: bytes) -> list[bytes]:
    return [stream[i : i + RECEIVE_SIZE] for i in range(0, len(stream), RECEIVE_SIZE)]


class NullStream:
    """Never used for I/O: ``_receive`` is called directly."""


def transport(*, fast_path: bool = True, deflate: bool = False) -> BatchedTransport:
    extensions = []
    if deflate:
        extension = PerMessageDeflate()
        extension.finalize("permessage-deflate")  # as if the server accepted the offer
        extensions.append(extension)
    connection = Connection(ConnectionType.CLIENT, extensions)
    return BatchedTransport(NullStream(), connection, fast_path=fast_path)  # type: ignore[arg-type]


def time_feed(make: Callable[[], BatchedTransport], chunks: list[bytes], frames: int) -> float:
    t = make()
    start = time.perf_counter()
    for chunk in chunks:
        t._receive(chunk)
        t._messages.clear()
    elapsed = time.perf_counter() - start
    assert t._ended is None
    return elapsed / frames * 1e9


def time_scan_no_utf8(chunks: list[bytes], frames: int) -> float:
    """take_plain's loop without the decode: slices only."""
    start = time.perf_counter()
    leftover = b""
    out: list[bytes] = []
    append = out.append
    for chunk in chunks:
        data = leftover + chunk if leftover else chunk
        n = len(data)
        i = 0
        while n - i >= 2:
            b0 = data[i]
            if b0 != TEXT_FIN and b0 != BINARY_FIN:
                break
            size = data[i + 1]
            if size < 126:
                s = i + 2
            else:
                s = i + 4
                if s > n:
                    break
                size = data[i + 2] << 8 | data[i + 3]
            end = s + size
            if end > n:
                break
            append(data[s:end])
            i = end
        leftover = data[i:]
        out.clear()
    return (time.perf_counter() - start) / frames * 1e9


def deflate_stream(messages: list[bytes]) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = []
    for m in messages:
        data = compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH)
        out.append(frame(data[:-4], TEXT_FIN | 0x40))
    return b"".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    messages = payloads(args.frames)
    plain = b"".join(frame(m) for m in messages)
    compressed = deflate_stream(messages)
    plain_chunks, deflate_chunks = reads(plain), reads(compressed)
    cases: dict[str, Callable[[], float]] = {
        "fast_path": lambda: time_feed(transport, plain_chunks, args.frames),
        "wsproto": lambda: time_feed(lambda: transport(fast_path=False), plain_chunks, args.frames),
        "scan_no_utf8": lambda: time_scan_no_utf8(plain_chunks, args.frames),
        "deflate_wsproto": lambda: time_feed(
            lambda: transport(deflate=True), deflate_chunks, args.frames
        ),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, case in cases.items():
            results[name].append(case())
    medians = {name: statistics.median(values) for name, values in results.items()}
    report = {
        "frames": args.frames,
        "mean_frame_bytes": round(len(plain) / args.frames, 1),
        "mean_compressed_frame_bytes": round(len(compressed) / args.frames, 1),
        "ns_per_frame": {k: round(v, 1) for k, v in medians.items()},
        "frames_per_s": {k: round(1e9 / v) for k, v in medians.items()},
        "speedup_fast_vs_wsproto": round(medians["wsproto"] / medians["fast_path"], 2),
    }
    if args.json:
        json.dump(report, sys.stdout)
        print()
        return
    print(
        f"{args.frames:,} frames, mean {report['mean_frame_bytes']} bytes "
        f"({report['mean_compressed_frame_bytes']} deflated), median of {args.runs} runs"
    )
    for name, value in medians.items():
        print(f"  {name:16} {value:8.1f} ns/frame  {1e9 / value:>12,.0f} frames/s")
    print(f"  fast path / wsproto: {report['speedup_fast_vs_wsproto']}x")


if __name__ == "__main__":
    main()
