"""What a hostile peer can make the client hold, and for how long (issue 17, part A).

Each bound has its test, against a raw Trio server on loopback that does what a
polite WebSocket library never would:

- a compression bomb (permessage-deflate): a small compressed message that inflates to
  far more than the message size limit is refused with close 1009 as its output reaches
  the limit, never inflated whole; the memory it costs is measured (``tracemalloc``);
- a peer that trickles a frame one byte a second cannot hold a connection past
  ``stale_after``: only whole messages stamp the staleness clock;
- a peer that trickles (or never sends) its answer to the upgrade cannot hold a connect
  past ``connect_timeout``;
- the runner, with stdout, stderr and a ``jsonl:`` sink all blocked for two minutes of a
  busy feed, keeps every queue and buffer within its bound (counted, not guessed from RSS).

Time is virtual (the autojump clock) wherever a deadline is involved.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import os
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request
from wsproto.extensions import PerMessageDeflate

import tickactors
from tickactors._chaos.process import rss_mb
from tickactors._cli.fd_lines import open_fd_lines
from tickactors._cli.output import JsonLines
from tickactors._cli.run import run_feed
from tickactors._cli.stderr import stderr_routed_to
from tickactors._feed.feed import Feed
from tickactors._net.batched import MAX_MESSAGE_SIZE, BatchedTransport, connect_batched
from tickactors._net.transport import TransportClosed
from tickactors.sim import SimConfig, open_simulator
from tickactors.sinks import _jsonl, _open
from tickactors.venues import AllTick

TOKEN = "hostile-S3CRET-1c1c"
TRANSPORTS = pytest.mark.parametrize(
    "transport",
    [tickactors.connect_batched, tickactors.connect_websocket],
    ids=["batched", "trio-websocket"],
)


class Peer:
    """The server's end of one raw connection: wsproto for the upgrade and for reading."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.closes: list[int] = []
        self.sent = 0
        self.gone = trio.Event()

    async def request(self) -> Request:
        while True:
            data = await self.stream.receive_some(65536)
            assert data, "the client went away during the upgrade"
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, Request):
                    return event

    async def accept(self, *, deflate: bool = False) -> None:
        await self.request()
        extensions = [PerMessageDeflate()] if deflate else []
        await self.stream.send_all(self.ws.send(AcceptConnection(extensions=extensions)))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)
        self.sent += len(data)

    async def read_until_closed(self) -> None:
        """Read what the client sends (its close frame noted) until it goes."""
        while data := await self.stream.receive_some(65536):
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, CloseConnection):
                    self.closes.append(event.code)


@asynccontextmanager
async def raw_server(
    handler: Callable[[Peer], Awaitable[None]],
) -> AsyncIterator[tuple[int, list[Peer]]]:
    peers: list[Peer] = []

    async def serve(stream: trio.SocketStream) -> None:
        peer = Peer(stream)
        peers.append(peer)
        try:
            await handler(peer)
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went: what a hostile server does then does not matter
        finally:
            peer.gone.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        )
        yield listeners[0].socket.getsockname()[1], peers
        nursery.cancel_scope.cancel()


def frame_header(first: int, size: int) -> bytes:
    """An unmasked server frame's header: ``first`` (FIN, RSV1, opcode) and the length."""
    if size < 126:
        return bytes([first, size])
    if size < 1 << 16:
        return bytes([first, 126]) + size.to_bytes(2, "big")
    return bytes([first, 127]) + size.to_bytes(8, "big")


def deflated(sizes: list[int]) -> list[bytes]:
    """One raw-deflate piece per size (zeros, each ended by a sync flush), as one message's
    fragments; RFC 7692 strips the final ``00 00 ff ff``. Made a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    pieces = []
    for size in sizes:
        out = []
        while size > 0:
            out.append(packer.compress(zeros[: min(size, len(zeros))]))
            size -= len(zeros)
        out.append(packer.flush(zlib.Z_SYNC_FLUSH))
        pieces.append(b"".join(out))
    assert pieces[-1].endswith(b"\x00\x00\xff\xff")
    pieces[-1] = pieces[-1][:-4]
    return pieces


def compressed_message(sizes: list[int]) -> bytes:
    """A binary message of ``sum(sizes)`` zero bytes, compressed, one fragment per size."""
    pieces = deflated(sizes)
    frames = []
    for i, piece in enumerate(pieces):
        fin = 0x80 if i == len(pieces) - 1 else 0
        first = fin | (0x40 | 0x2 if i == 0 else 0x0)  # RSV1 and binary on the first only
        frames.append(frame_header(first, len(piece)) + piece)
    return b"".join(frames)


BOMB = 128 << 20  # 128 MiB of zeros: about 128 KiB compressed, 128 times the limit


@functools.cache
def bomb() -> bytes:
    return compressed_message([BOMB])


async def connect_deflate(port: int) -> BatchedTransport:
    async with trio.open_nursery() as nursery:
        transport = await connect_batched(
            nursery, f"ws://127.0.0.1:{port}/ws", None, None, 10.0, deflate=True
        )
    assert isinstance(transport, BatchedTransport)
    return transport


async def receive_all(transport: BatchedTransport) -> tuple[list[str | bytes], int | None]:
    """Every message until the connection ends, and the close code it ended with."""
    got: list[str | bytes] = []
    try:
        while True:
            got.extend(await transport.receive_many(100))
    except TransportClosed as exc:
        return got, exc.code


@pytest.mark.parametrize(
    ("sizes", "what"),
    [
        ([BOMB], "one frame"),
        ([600 << 10] * 200, "fragments each under the limit"),
    ],
)
async def test_a_compression_bomb_is_refused_with_1009_before_it_is_inflated(
    sizes: list[int], what: str
) -> None:
    message = bomb() if sizes == [BOMB] else compressed_message(sizes)
    assert len(message) < 256 << 10  # small on the wire ...
    assert sum(sizes) > 100 * MAX_MESSAGE_SIZE  # ... and far beyond the limit inflated

    async def bomber(peer: Peer) -> None:
        await peer.accept(deflate=True)
        await peer.send(message)
        await peer.read_until_closed()

    async with raw_server(bomber) as (port, peers):
        transport = await connect_deflate(port)
        tracemalloc.start()
        try:
            got, code = await receive_all(transport)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await transport.aclose()
        with trio.fail_after(5):
            await peers[0].gone.wait()
    assert got == [] and code == 1009
    assert peers[0].closes == [1009]  # the close went to the peer
    # what was inflated stayed near the limit: nothing close to the 128 MiB it held
    assert peak < 8 * MAX_MESSAGE_SIZE, peak


async def test_a_compressed_message_at_the_limit_passes_and_one_byte_more_does_not() -> None:
    messages = compressed_message([MAX_MESSAGE_SIZE]) + compressed_message([MAX_MESSAGE_SIZE + 1])

    async def two(peer: Peer) -> None:
        await peer.accept(deflate=True)
        await peer.send(messages)
        await peer.read_until_closed()

    async with raw_server(two) as (port, _):
        transport = await connect_deflate(port)
        got, code = await receive_all(transport)
        await transport.aclose()
    assert [len(m) for m in got] == [MAX_MESSAGE_SIZE] and code == 1009
    assert got[0] == bytes(MAX_MESSAGE_SIZE)


async def test_context_takeover_still_works_across_bounded_messages() -> None:
    """Many small compressed messages sharing one window (context takeover, the default):
    the bound changes nothing for them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    wire = b""
    texts = [f'{{"n":{i},"pad":"{"x" * (i % 50)}"}}' for i in range(300)]
    for text in texts:
        piece = packer.compress(text.encode()) + packer.flush(zlib.Z_SYNC_FLUSH)
        piece = piece[:-4]
        wire += frame_header(0x80 | 0x40 | 0x1, len(piece)) + piece

    async def chatty(peer: Peer) -> None:
        await peer.accept(deflate=True)
        await peer.send(wire)
        await peer.stream.send_all(peer.ws.send(CloseConnection(code=1000)))
        await peer.read_until_closed()

    async with raw_server(chatty) as (port, _):
        transport = await connect_deflate(port)
        got, code = await receive_all(transport)
        await transport.aclose()
    assert got == texts and code == 1000


# ---- trickles --------------------------------------------------------------------------


@TRANSPORTS
async def test_a_frame_trickled_a_byte_a_second_cannot_hold_the_connection_past_stale_after(
    autojump_clock: trio.abc.Clock, transport: Any
) -> None:
    async def trickler(peer: Peer) -> None:
        await peer.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.read_until_closed)
            await peer.send(frame_header(0x81, 1000))  # a text frame of 1000 bytes ...
            while True:
                await trio.sleep(1.0)
                await peer.send(b"x")  # ... that never ends

    async with raw_server(trickler) as (port, peers):
        venue = AllTick(url=f"ws://127.0.0.1:{port}/quote-b-ws-api", token=TOKEN)
        events: dict[str, tickactors.HealthEvent] = {}
        async with tickactors.open_feed(
            venue, stale_after=5.0, transport_factory=transport
        ) as feed:
            feed.subscribe("BTCUSDT")
            with trio.fail_after(60):
                async for event in feed.events():
                    events.setdefault(event.event, event)
                    if event.event == "disconnected":
                        break
    held = events["stale"].time - events["connected"].time
    assert held == pytest.approx(5.0, abs=1e-6)  # stale_after, not a byte later
    assert events["disconnected"].detail["reason"] == "StaleConnection"
    assert peers[0].sent >= 4 + 4  # the header and a byte a second were arriving


@TRANSPORTS
async def test_an_upgrade_answer_trickled_a_byte_a_second_hits_the_connect_deadline(
    autojump_clock: trio.abc.Clock, transport: Any
) -> None:
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

    async def trickler(peer: Peer) -> None:
        await peer.request()
        for byte in answer:  # never the blank line that ends the head
            await peer.send(bytes([byte]))
            await trio.sleep(1.0)
        await trio.sleep_forever()

    async with raw_server(trickler) as (port, peers):
        venue = AllTick(url=f"ws://127.0.0.1:{port}/quote-b-ws-api", token=TOKEN)
        async with tickactors.open_feed(
            venue, connect_timeout=4.0, transport_factory=transport
        ) as feed:
            with trio.fail_after(60):
                async for event in feed.events():
                    if event.event == "connect_failed":
                        break
    assert event.time == 4.0 and "within 4 s" in event.message
    assert event.detail == {"permanent": False, "cause": "timeout"}
    assert peers[0].sent >= 4  # bytes were arriving the whole time


# ---- the runner, everything blocked ----------------------------------------------------


#: samples, 5 s apart: two minutes of feed time (about 100,000 frames, a minute of CPU)
SAMPLES = 24


def runner_args(sink: str) -> argparse.Namespace:
    return argparse.Namespace(
        symbols="BTCUSDT,ETHUSDT,EURUSD,XAUUSD",
        book_symbols="BTCUSDT,ETHUSDT",
        duration=None,
        stale_after=None,
        symbol_stale_after=None,
        seed=1,
        policy=tickactors._core.lanes.parse_policies("trades=drop-oldest"),
        shard=None,
        sink=[sink],
        buffer=500,
    )


@pytest.mark.slow
async def test_the_runners_memory_stays_bounded_with_stdout_stderr_and_the_sink_blocked(
    autojump_clock: trio.abc.Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two minutes of a feed at 800 trades a second plus books, into a stdout and a stderr
    nobody reads (pipes shrunk to one page) and a ``jsonl:`` sink whose disk never returns
    from a write: the feed's lanes, the health queue, stdout's and stderr's writer threads
    and the sink's writer stay within their bounds the whole time, sampled every 5 s, and
    each of the three outputs ends up refusing (and counting) what it cannot hold."""
    stalled = threading.Event()
    release = threading.Event()

    def stuck_write(fd: int, data: Any) -> None:
        stalled.set()
        release.wait(120)  # the disk answers only when the test lets it

    monkeypatch.setattr(_jsonl, "write_all", stuck_write)
    sink_buffer = 8 * 1024
    sinks: list[_jsonl.JsonlSink] = []

    @asynccontextmanager
    async def small_sink(spec: Any, **kw: Any) -> AsyncIterator[_jsonl.JsonlSink]:
        async with _jsonl.open_jsonl_sink(spec, buffer=sink_buffer, **kw) as sink:
            sinks.append(sink)
            yield sink

    monkeypatch.setattr(_open, "open_jsonl_sink", small_sink)
    config = SimConfig(tokens={TOKEN}, tick_interval=0.005, book_interval=0.05)
    pipes = [os.pipe(), os.pipe()]  # stdout, stderr: nobody reads either
    for _, write_end in pipes:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # the kernel holds one page
    capacity, reserve = 16 * 1024, 4 * 1024
    batch = 256 * 1024  # a market batch is put whole: at most --buffer items per lane
    feeds: list[Feed] = []
    samples: list[dict[str, Any]] = []
    try:
        async with open_simulator("alltick", config=config, seed=5) as sim:
            async with (
                open_fd_lines(pipes[0][1], capacity=capacity, reserve=reserve) as out,
                open_fd_lines(pipes[1][1], capacity=capacity // 4, reserve=reserve // 4) as err,
            ):
                writer = JsonLines(out, clock_offset=0.0, errors=err)
                venue = AllTick(url=sim.url, token=TOKEN)
                sink = f"jsonl:{tmp_path / 'capture.jsonl'}"
                with stderr_routed_to(err):
                    async with trio.open_nursery() as nursery:

                        async def runner() -> None:
                            code = await run_feed(
                                venue,
                                runner_args(sink),
                                writer,
                                extra=lambda feed, _: (feeds.append(feed), ready.set()),
                            )
                            assert code == 0

                        ready = trio.Event()
                        nursery.start_soon(runner)
                        await ready.wait()  # the sink opens in a thread first
                        for _ in range(SAMPLES):  # every 5 s
                            await trio.sleep(5)
                            (feed,) = feeds
                            stats = feed.statistics()
                            samples.append(
                                {
                                    "queue": stats["queue"],
                                    "events_waiting": len(feed._health.queue),
                                    "out": out.statistics(),
                                    "err": err.statistics(),
                                    "sink": sinks[0].statistics(),
                                    "connects": stats["connection"]["connects"],
                                    "rss_mb": rss_mb(),
                                }
                            )
                        received = sim.stats.frames_sent
                        release.set()  # let the disk answer, and the pipes drain
                        for read_end, _ in pipes:
                            nursery.start_soon(drain, read_end)
                        nursery.cancel_scope.cancel()
    finally:
        release.set()
        for read_end, write_end in pipes:
            os.close(write_end)
            os.close(read_end)
    assert stalled.is_set()
    assert received > 80_000  # a busy feed
    last = samples[-1]
    assert last["queue"]["dropped"] > 60_000  # the trade lane dropped, as its policy says
    for sample in samples:
        assert sample["queue"]["waiting"] <= 2 * 500  # a lane per kind, each within --buffer
        assert sample["events_waiting"] <= 10_000
        # each writer: its capacity and reserve, overshot by one item at most (a market
        # batch is put whole: put never refuses, then waits)
        assert sample["out"]["high_water"] <= capacity + reserve + batch, sample
        assert sample["err"]["high_water"] <= (capacity + reserve) // 4 + 1024, sample
        writer = sample["sink"]["writer"]
        assert writer["high_water"] <= 2 * sink_buffer + batch, sample
    # bounded, not merely slow to grow: each output filled up, refused (and counted) what
    # it could not hold from then on, and grew no more than by a line after that
    for name in ("out", "err", "sink"):
        writers = [x[name]["writer"] if name == "sink" else x[name] for x in samples]
        full = [w for w in writers if w["refused"] > 0]
        assert len(full) >= 2, name
        assert full[-1]["high_water"] - full[0]["high_water"] <= 2048, name
        assert full[-1]["refused"] > full[0]["refused"], name  # still refusing at the end
    assert last["sink"]["lost_lines"] == last["sink"]["writer"]["refused"]
    assert last["connects"] == 1  # the connection lived through it
    # and the process did not grow either (measured: 59.0 MB throughout; RSS is coarse)
    assert last["rss_mb"] - samples[0]["rss_mb"] < 16


async def drain(fd: int) -> None:
    stream = trio.lowlevel.FdStream(os.dup(fd))
    async with stream:
        while await stream.receive_some(1 << 20):
            pass
