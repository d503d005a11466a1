"""The batched transport (trio + wsproto, no reader task) against a tiny raw server.

The server is ``trio.serve_tcp`` on 127.0.0.1 with wsproto's server side for
the handshake and for reading what the client sends; it writes its own frames
by hand (``frame()``), so a test decides exactly which bytes travel together in
one TCP write, and can send what wsproto would refuse to (invalid UTF-8). Time
is virtual (``autojump_clock``) wherever a deadline is involved.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import urlsplit

import pytest
import trio
import trio.testing
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

import tickactors
from tickactors import CertificateError, ConnectError
from tickactors._actors.connector import describe
from tickactors._actors.supervisor import reconnect_cause
from tickactors._net.batched import BatchedTransport, connect_batched
from tickactors._net.frames import frame_end
from tickactors._net.handshake import client_handshake
from tickactors._net.transport import TransportClosed
from tickactors._secret import Secret
from tickactors.sim import open_simulator
from tickactors.venues import AllTick

TOKEN = "TOKEN-must-not-leak-5e5e"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(payload: bytes | str, opcode: int = TEXT, *, fin: bool = True) -> bytes:
    """One unmasked server frame."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(code.to_bytes(2, "big") + reason.encode(), CLOSE)


class Peer:
    """The server's end of one connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None
        self.done = trio.Event()

    async def handshake(self, *, reject: int | None = None, trailing: bytes = b"") -> None:
        while self.request is None:
            data = await self.stream.receive_some(65536)
            assert data, "the client went away during the handshake"
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, Request):
                    self.request = event
        answer = AcceptConnection() if reject is None else RejectConnection(status_code=reject)
        await self.stream.send_all(self.ws.send(answer) + trailing)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_event(self) -> Event | None:
        """The client's next frame event; None at end of stream."""
        while True:
            for event in self.ws.events():
                return event
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.ws.receive_data(data)

    async def until_eof(self) -> None:
        while await self.stream.receive_some(65536):
            pass


Handler = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, *, path: str = "/ws") -> AsyncIterator[tuple[str, list[Peer]]]:
    peers: list[Peer] = []

    async def serve(stream: trio.SocketStream) -> None:
        peer = Peer(stream)
        peers.append(peer)
        try:
            await handler(peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            peer.done.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}{path}?token={TOKEN}", peers
        nursery.cancel_scope.cancel()


async def connect(url: str, timeout: float = 5.0) -> BatchedTransport:
    """``connect_batched``; its ConnectError raised bare (not in the nursery's group)."""
    async with trio.open_nursery() as nursery:
        try:
            transport = await connect_batched(nursery, url, Secret(TOKEN), None, timeout)
        except ConnectError as exc:
            error = exc
        else:
            error = None
    if error is not None:
        raise error
    assert isinstance(transport, BatchedTransport)
    return transport


async def accept_then(peer: Peer) -> None:
    await peer.handshake()


# -- opening -----------------------------------------------------------------------------


async def test_handshake_and_text_echo():
    async def echo(peer: Peer) -> None:
        await peer.handshake()
        while isinstance(event := await peer.next_event(), TextMessage):
            await peer.send(frame(event.data))

    async with server(echo) as (url, peers):
        t = await connect(url)
        await t.send("hello")
        assert await t.receive() == "hello"
        await t.send("two")
        assert await t.receive_many(10) == ["two"]
        await t.aclose()
    request = peers[0].request
    assert request is not None
    assert request.target == f"/ws?token={TOKEN}"
    assert request.host == url.split("/")[2]


async def test_frames_right_behind_the_101_response_are_not_lost():
    async def eager(peer: Peer) -> None:
        await peer.handshake(trailing=frame("first") + frame("second"))
        await peer.until_eof()

    async with server(eager) as (url, _):
        t = await connect(url)
        assert await t.receive_many(10) == ["first", "second"]
        await t.aclose(polite=False)


# -- receiving ---------------------------------------------------------------------------


async def test_many_small_messages_in_one_chunk_come_back_in_one_call():
    async def burst(peer: Peer) -> None:
        await peer.handshake()
        assert isinstance(await peer.next_event(), TextMessage)
        await peer.send(b"".join(frame(f"m{i}") for i in range(300)))  # one TCP write
        await peer.until_eof()

    async with server(burst) as (url, _):
        t = await connect(url)
        await t.send("go")
        batch = await t.receive_many(512)
        assert len(batch) == 300
        assert batch == [f"m{i}" for i in range(300)]
        await t.aclose(polite=False)


async def test_receive_many_caps_the_batch_and_keeps_the_rest_buffered():
    async def burst(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(b"".join(frame(f"m{i}") for i in range(250)))
        await peer.until_eof()

    async with server(burst) as (url, _):
        t = await connect(url)
        first = await t.receive_many(100)
        second = await t.receive_many(100)
        third = await t.receive_many(100)
        assert [len(first), len(second), len(third)] == [100, 100, 50]
        assert first + second + third == [f"m{i}" for i in range(250)]
        await t.aclose(polite=False)


async def test_fragmented_message_with_a_ping_between_fragments():
    events: list[Event | None] = []
    ponged = trio.Event()

    async def fragments(peer: Peer) -> None:
        await peer.handshake()
        unsolicited_pong = frame(b"", PONG)
        await peer.send(frame("hel", TEXT, fin=False) + frame(b"are you there?", PING))
        await peer.send(unsolicited_pong)
        await trio.testing.wait_all_tasks_blocked()  # the rest in a later chunk
        await peer.send(frame("lo, ", CONT, fin=False) + frame("wörld", CONT))
        events.append(await peer.next_event())
        ponged.set()
        await peer.until_eof()

    async with server(fragments) as (url, _):
        t = await connect(url)
        assert await t.receive_many(10) == ["hello, wörld"]
        with trio.fail_after(5):
            await ponged.wait()
        await t.aclose(polite=False)
    assert events == [Pong(payload=b"are you there?")]


async def test_binary_messages_small_and_spanning_many_chunks():
    big = bytes(range(256)) * 1200  # 300 KiB: many receive_some chunks, one message

    async def binary(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(frame(b"\x00\x01\xff", BINARY) + frame(big[:1000], BINARY, fin=False))
        await peer.send(frame(big[1000:], CONT))
        await peer.until_eof()

    async with server(binary) as (url, _):
        t = await connect(url)
        got = await t.receive_many(10)
        while len(got) < 2:
            got += await t.receive_many(10)
        assert got == [b"\x00\x01\xff", big]
        assert all(type(m) is bytes for m in got)
        await t.aclose(polite=False)


async def test_close_from_the_server_after_messages_delivers_them_first():
    seen: list[Event | None] = []

    async def closer(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(frame("one") + frame("two") + close_frame(4001, "token expired"))
        seen.append(await peer.next_event())

    async with server(closer) as (url, peers):
        t = await connect(url)
        assert await t.receive_many(10) == ["one", "two"]
        with pytest.raises(TransportClosed) as info:
            await t.receive_many(10)
        assert (info.value.code, info.value.reason) == (4001, "token expired")
        assert not info.value.by_us and not info.value.lost
        assert describe(info.value) == "closed by the peer (code 4001, token expired)"
        with pytest.raises(TransportClosed) as again:
            await t.send("too late")
        assert again.value.code == 4001
        await peers[0].done.wait()
        await t.aclose()  # the peer's close was answered already: nothing more to say
    assert len(seen) == 1 and isinstance(seen[0], CloseConnection)
    assert (seen[0].code, seen[0].reason) == (4001, "token expired")  # the answer echoes it


async def test_end_of_stream_without_a_close_frame_is_1006():
    async def vanish(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(frame("last words"))
        # returning closes the socket: a FIN, no close frame

    async with server(vanish) as (url, _):
        t = await connect(url)
        assert await t.receive() == "last words"
        with pytest.raises(TransportClosed) as info:
            await t.receive_many(10)
        assert info.value.code == 1006
        assert info.value.reason == "connection lost without a close frame"
        assert info.value.lost and not info.value.by_us
        assert describe(info.value) == (
            "lost without a close frame (connection lost without a close frame)"
        )
        with pytest.raises(TransportClosed) as again:
            await t.send("anyone?")
        assert again.value.code == 1006
        await t.aclose()


async def test_invalid_utf8_in_a_text_message_is_1007():
    seen: list[Event | None] = []

    async def garbage(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(frame("fine") + frame(b"caf\xc3(", TEXT))
        seen.append(await peer.next_event())
        await peer.until_eof()

    async with server(garbage) as (url, _):
        t = await connect(url)
        assert await t.receive_many(10) == ["fine"]
        with pytest.raises(TransportClosed) as info:
            await t.receive_many(10)
        assert info.value.code == 1007
        assert info.value.by_us  # we refused the frame: not the venue's close
        assert describe(info.value).startswith("closed by us (code 1007, ")
        await t.aclose()
    assert isinstance(seen[0], CloseConnection) and seen[0].code == 1007


async def test_bad_framing_is_1002():
    seen: list[Event | None] = []

    async def masked(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(bytes([0x81, 0x80 | 2]) + b"\x00\x00\x00\x00hi")  # servers never mask
        seen.append(await peer.next_event())

    async with server(masked) as (url, _):
        t = await connect(url)
        with pytest.raises(TransportClosed) as info:
            await t.receive_many(10)
        assert info.value.code == 1002
        assert info.value.by_us
        await t.aclose()
    assert isinstance(seen[0], CloseConnection) and seen[0].code == 1002


@pytest.mark.parametrize("fragments", [1, 20])
async def test_oversized_message_is_1009(fragments: int):
    seen: list[Event | None] = []
    payload = b"x" * ((1 << 20) + 1)
    step = len(payload) // fragments + 1

    async def flood(peer: Peer) -> None:
        await peer.handshake()
        async with trio.open_nursery() as nursery:

            async def send_all() -> None:
                for i in range(0, len(payload), step):
                    opcode = BINARY if i == 0 else CONT
                    fin = i + step >= len(payload)
                    await peer.send(frame(payload[i : i + step], opcode, fin=fin))

            nursery.start_soon(send_all)
            seen.append(await peer.next_event())
            nursery.cancel_scope.cancel()

    async with server(flood) as (url, peers):
        t = await connect(url)
        with pytest.raises(TransportClosed) as info:
            while True:
                await t.receive_many(10)
        assert info.value.code == 1009
        await peers[0].done.wait()
        await t.aclose(polite=False)
    assert isinstance(seen[0], CloseConnection) and seen[0].code == 1009


async def test_a_complete_message_over_a_small_limit_is_1009():
    seen: list[Event | None] = []

    async def send_two(peer: Peer) -> None:
        await peer.handshake()
        await peer.send(frame("x" * 100) + frame("y" * 101))
        seen.append(await peer.next_event())

    async with server(send_two) as (url, peers):
        parts = urlsplit(url)
        stream = await trio.open_tcp_stream("127.0.0.1", parts.port)
        connection, initial = await client_handshake(
            stream, parts.netloc, f"{parts.path}?{parts.query}"
        )
        t = BatchedTransport(stream, connection, max_message_size=100, initial=initial)
        assert await t.receive_many(10) == ["x" * 100]
        with pytest.raises(TransportClosed) as info:
            await t.receive_many(10)
        assert info.value.code == 1009
        assert info.value.by_us
        assert reconnect_cause(info.value) == "error"  # not a kick: the venue did not close
        await peers[0].done.wait()
        await t.aclose()
    assert isinstance(seen[0], CloseConnection) and seen[0].code == 1009


# -- failing to connect ------------------------------------------------------------------


async def test_a_server_that_never_answers_the_upgrade_hits_connect_timeout(autojump_clock):
    async def silent(peer: Peer) -> None:
        await peer.until_eof()  # reads the request, never answers, notices the close

    async with server(silent) as (url, peers):
        start = trio.current_time()
        with pytest.raises(ConnectError, match="no WebSocket handshake within 3 s"):
            await connect(url, timeout=3.0)
        assert trio.current_time() - start == 3.0
        with trio.fail_after(1):
            await peers[0].done.wait()  # the client closed its socket: no leak


async def test_http_403_is_a_connect_error_and_the_socket_is_closed():
    async def refuse(peer: Peer) -> None:
        await peer.handshake(reject=403)
        await peer.until_eof()

    async with server(refuse) as (url, peers):
        with pytest.raises(ConnectError, match="403"):
            await connect(url)
        with trio.fail_after(5):
            await peers[0].done.wait()


async def test_certificates_are_verified_and_a_trusted_one_works():
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    async def tls_echo(stream: trio.SocketStream) -> None:
        peer = Peer(trio.SSLStream(stream, server_context, server_side=True))
        try:
            await peer.handshake()
            while isinstance(event := await peer.next_event(), TextMessage):
                await peer.send(frame(event.data))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(peer.stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, tls_echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        url = f"wss://127.0.0.1:{port}/ws?token={TOKEN}"
        # default context: the test CA is unknown, so verification must fail
        with pytest.raises(CertificateError, match="cannot verify the TLS certificate") as info:
            await connect(url)
        assert "unable to get local issuer certificate" in str(info.value)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        async with trio.open_nursery() as inner:
            t = await connect_batched(inner, url, Secret(TOKEN), client_context, 5.0)
        await t.send("over tls")
        assert await t.receive() == "over tls"
        await t.aclose()
        nursery.cancel_scope.cancel()


async def _free_port() -> int:
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def _garbage_response(peer: Peer) -> None:
    await peer.stream.receive_some(65536)
    await peer.send(b"HTTP/1.1 banana\r\n\r\n")
    await peer.until_eof()


async def _close_at_once(peer: Peer) -> None:
    await peer.stream.receive_some(65536)


async def _not_tls(peer: Peer) -> None:
    await peer.stream.receive_some(65536)
    await peer.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")


@pytest.mark.parametrize("case", ["refused", "hang", "403", "garbage", "closed", "tls-to-plain"])
async def test_the_token_never_appears_in_an_exception(case: str, autojump_clock):
    handlers: dict[str, Handler] = {
        "hang": lambda peer: peer.until_eof(),
        "403": lambda peer: peer.handshake(reject=403),
        "garbage": _garbage_response,
        "closed": _close_at_once,
        "tls-to-plain": _not_tls,
    }
    async with server(handlers.get(case, accept_then)) as (url, _):
        if case == "refused":
            url = url.replace(url.split("/")[2], f"127.0.0.1:{await _free_port()}")
        if case == "tls-to-plain":
            url = "wss" + url[2:]
        with pytest.raises(ConnectError) as info:
            await connect(url, timeout=2.0)
    chain: list[BaseException] = []
    exc: BaseException | None = info.value
    while exc is not None and len(chain) < 10:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for each in chain:
        for text in (str(each), repr(each), *map(str, each.args)):
            assert TOKEN not in text, (case, text)
    assert "token=" not in str(info.value)


# -- sending and closing -----------------------------------------------------------------


async def test_a_send_that_cannot_complete_times_out_and_poisons_the_stream(autojump_clock):
    async def deaf(peer: Peer) -> None:
        await peer.handshake()
        await trio.sleep_forever()

    async with server(deaf) as (url, _):
        t = await connect(url)
        chunk = "x" * 1_000_000
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            for _ in range(500):
                await t.send(chunk)
        assert trio.current_time() - start == 10.0  # send_timeout; filling took no time
        with pytest.raises(TransportClosed) as info:
            await t.send("after half a frame")
        assert info.value.code == 1006
        await t.aclose()  # polite, but a half-sent frame means no close frame
        assert trio.current_time() - start == 10.0


async def test_polite_close_waits_for_the_answer(autojump_clock):
    seen: list[Event | None] = []

    async def answer(peer: Peer) -> None:
        await peer.handshake()
        event = await peer.next_event()
        seen.append(event)
        assert isinstance(event, CloseConnection)
        await peer.send(peer.ws.send(event.response()))
        await peer.until_eof()

    async with server(answer) as (url, peers):
        t = await connect(url)
        start = trio.current_time()
        await t.aclose()
        assert trio.current_time() == start
        await peers[0].done.wait()
        with pytest.raises(TransportClosed):
            await t.send("closed")
    assert isinstance(seen[0], CloseConnection) and seen[0].code == 1000


async def test_polite_close_gives_up_after_close_timeout_and_never_raises(autojump_clock):
    async def ignore(peer: Peer) -> None:
        await peer.handshake()
        await peer.until_eof()

    async with server(ignore) as (url, peers):
        t = await connect(url)
        start = trio.current_time()
        with trio.CancelScope() as scope:
            scope.cancel()  # even when cancelled, closing runs (shielded) and frees the socket
            await t.aclose()
        assert trio.current_time() - start == 2.0
        await peers[0].done.wait()


async def test_impolite_close_sends_nothing_and_resets_the_stream(autojump_clock):
    seen: list[Event | str | None] = []

    async def watch(peer: Peer) -> None:
        await peer.handshake()
        try:
            seen.append(await peer.next_event())
        except trio.BrokenResourceError:
            seen.append("reset")

    async with server(watch) as (url, peers):
        t = await connect(url)
        start = trio.current_time()
        await t.aclose(polite=False)
        assert trio.current_time() == start
        await peers[0].done.wait()
    assert seen == ["reset"]  # no close frame, not even a FIN: a reset


async def test_an_impolite_close_discards_what_the_kernel_still_held_to_send(autojump_clock):
    """A stale connection's socket is reset, not closed: what the feed wrote and gave up on
    (an order it failed with ConnectionLostError) must not reach the venue later."""
    received = 0
    outcome: list[str] = []
    reading = trio.Event()

    async def slow(peer: Peer) -> None:
        nonlocal received
        await peer.handshake()
        await reading.wait()  # deaf while the client writes and gives up
        try:
            while data := await peer.stream.receive_some(65536):
                received += len(data)
            outcome.append("eof")
        except trio.BrokenResourceError:
            outcome.append("reset")

    async with server(slow) as (url, peers):
        t = await connect(url)
        sent = 0
        with pytest.raises(trio.TooSlowError):
            for _ in range(100_000):
                await t.send("x" * 10_000)  # until the kernel's buffers are full
                sent += 10_000
        await t.aclose(polite=False)
        reading.set()
        await peers[0].done.wait()
    assert outcome == ["reset"]
    assert received < sent  # a graceful close would have delivered all of it first


async def test_the_trio_websocket_transport_resets_too(autojump_clock):
    seen: list[Event | str | None] = []

    async def watch(peer: Peer) -> None:
        await peer.handshake()
        try:
            seen.append(await peer.next_event())
        except trio.BrokenResourceError:
            seen.append("reset")

    async with server(watch) as (url, peers):
        async with trio.open_nursery() as nursery:
            t = await tickactors.connect_websocket(nursery, url, Secret(TOKEN), None, 5.0)
            await t.aclose(polite=False)
            await peers[0].done.wait()
            nursery.cancel_scope.cancel()
    assert seen == ["reset"]


# -- the feed end to end on the simulator ------------------------------------------------


async def test_feed_on_the_simulator_with_the_batched_transport(autojump_clock):
    symbols = ("BTCUSDT", "ETHUSDT", "EURUSD")

    async def flowing(feed):
        missing = set(symbols)
        with trio.fail_after(30):
            while missing:
                for tick in await feed.get_batch():
                    missing.discard(tick.symbol)

    async def until_event(feed, name):
        with trio.fail_after(60):
            async for event in feed.events():
                if event.event == name:
                    return event
        raise AssertionError(name)

    async def drain(feed):
        while feed.statistics()["queue"]["waiting"]:
            await feed.get_batch()

    async with open_simulator("alltick", seed=7) as sim:
        venue = AllTick(url=sim.url, token=TOKEN)
        async with tickactors.open_feed(
            venue, transport_factory=connect_batched, stale_after=5.0, seed=7
        ) as feed:
            feed.subscribe(*symbols)
            await flowing(feed)
            with trio.fail_after(5):
                await feed.wait_confirmed()

            sim.faults.drop()
            await until_event(feed, "disconnected")
            await drain(feed)
            await flowing(feed)
            assert sim.stats.connections_opened == 2

            sim.faults.stall(8.0)
            stalled_at = trio.current_time()
            stale = await until_event(feed, "stale")
            assert 5.0 <= stale.time - stalled_at <= 5.0 + 0.2
            await drain(feed)
            await flowing(feed)
            with trio.fail_after(30):
                await feed.wait_confirmed()
            stats = feed.statistics()
            assert stats["connection"]["connects"] >= 3
            assert stats["connection"]["frames_received"] > 0
            assert dict(sim.stats.violations) == {}


# -- the fast path never drifts from wsproto ---------------------------------------------


def _frames_strategy() -> st.SearchStrategy[list[bytes | int]]:
    """Frame sequences; an int stands for a text frame of that many bytes (short reprs)."""
    text = st.text(max_size=200).map(str.encode)
    raw = st.binary(max_size=200)
    plain = st.one_of(
        text.map(frame),
        raw.map(lambda b: frame(b, BINARY)),
        st.integers(60_000, 70_000),  # 16- and 64-bit lengths
    )
    fragmented = st.tuples(
        st.sampled_from([TEXT, BINARY]),
        st.lists(text, min_size=1, max_size=4),
        st.lists(st.sampled_from([b"", frame(b"p", PING), frame(b"", PONG)]), max_size=4),
    ).map(
        lambda spec: b"".join(
            frame(part, spec[0] if i == 0 else CONT, fin=i == len(spec[1]) - 1)
            + (spec[2][i] if i < len(spec[2]) else b"")
            for i, part in enumerate(spec[1])
        )
    )
    odd = st.sampled_from(
        [
            frame(b"caf\xc3("),  # invalid UTF-8
            frame(b"\xe2\x82", TEXT, fin=False) + frame(b"\xac", CONT),  # valid across fragments
            bytes([0x81, 0x80 | 2]) + b"\x00\x00\x00\x00hi",  # masked
            bytes([0xC1, 1]) + b"x",  # RSV1 without deflate
            frame(b"x", 0x3),  # reserved opcode
            frame(b"x", CONT),  # continuation without a start
            frame(b"p" * 200),  # over the small limit below
            bytes([0x81, 126, 0, 5]) + b"hello",  # a 16-bit length for 5 bytes (1002)
            bytes([0x82, 127]) + (130).to_bytes(8, "big") + b"q" * 130,  # 64-bit for 130
            close_frame(4001, "bye"),
        ]
    )
    return st.lists(st.one_of(plain, plain, fragmented, odd), max_size=12)


class _NoStream:
    """``_receive`` is called directly: no I/O."""


def _feed(data: bytes, cuts: list[int], *, fast_path: bool) -> BatchedTransport:
    t = BatchedTransport(
        _NoStream(),  # type: ignore[arg-type]
        Connection(ConnectionType.CLIENT),
        max_message_size=150,
        fast_path=fast_path,
    )
    bounds = [0, *sorted({min(c, len(data)) for c in cuts}), len(data)]
    for a, b in itertools.pairwise(bounds):
        if t._ended is not None:
            break
        t._receive(data[a:b])
    return t


@settings(max_examples=300, deadline=None)
@given(spec=_frames_strategy(), cuts=st.lists(st.integers(0, 200_000), max_size=8))
def test_the_fast_path_gives_what_wsproto_alone_gives(
    spec: list[bytes | int], cuts: list[int]
) -> None:
    """Any frames, cut into reads anywhere: same messages, same verdict, same replies."""
    data = b"".join(frame("y" * p) if isinstance(p, int) else p for p in spec)
    fast = _feed(data, cuts, fast_path=True)
    slow = _feed(data, cuts, fast_path=False)
    assert fast._messages == slow._messages
    assert (fast._ended is None) == (slow._ended is None)
    if fast._ended is not None and slow._ended is not None:
        code, reason, by_us = fast._ended
        assert (code, by_us) == (slow._ended[0], slow._ended[2])
        if code not in (1002, 1007):  # wsproto's words say where in *its* input it failed
            assert reason == slow._ended[1]
    assert _sent(fast) == _sent(slow)  # pongs and closes, unmasked


def _sent(t: BatchedTransport) -> list[tuple[int, bytes]]:
    """The client frames in the transport's outgoing buffer: (opcode, payload); a close's code."""
    data = bytes(t._outgoing)
    frames = []
    i = 0
    while i < len(data):
        end = frame_end(data, i)
        assert end is not None and end <= len(data)
        size = data[i + 1] & 0x7F
        start = i + 2 + (2 if size == 126 else 8 if size == 127 else 0) + 4
        key = data[start - 4 : start]
        payload = bytes(b ^ key[j % 4] for j, b in enumerate(data[start:end]))
        opcode = data[i] & 0x0F
        frames.append((opcode, payload[:2] if opcode == CLOSE else payload))
        i = end
    return frames
