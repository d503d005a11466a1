"""Both transports against a WebSocket server nobody here wrote: asyncio ``websockets``.

The server (``tests/conformance_server.py``) runs in a separate process on
127.0.0.1, started once per module with a bounded wait for its ports; each test
sends it text commands (see that script's docstring) and checks what the
transport makes of the answer. Every test runs for ``connect_batched`` (the
default, with its fast path) and ``connect_websocket`` (trio-websocket), and
every await is under ``trio.fail_after``.

The one frame websockets would not send on its own, invalid UTF-8 in a text
message, it sends with ``send(bytes, text=True)``, which does not validate.
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickactors import CertificateError, connect_batched, connect_websocket
from tickactors._net.batched import BatchedTransport
from tickactors._net.transport import Transport, TransportClosed, TransportFactory

SERVER = Path(__file__).with_name("conformance_server.py")
STARTUP_SECONDS = 20.0
LIMIT = 1 << 20  # both transports' default max_message_size

FACTORIES: dict[str, TransportFactory] = {
    "batched": connect_batched,
    "trio-websocket": connect_websocket,
}
BOTH = pytest.mark.parametrize("kind", list(FACTORIES))


def sent_verdict(kind: str, code: int) -> str:
    """What the server receives when the client fails the connection on invalid UTF-8.

    The batched transport sends close 1007; trio-websocket (0.12) only raises it
    locally and sends no close frame, so the server sees the TCP connection drop.
    (It does send 1009 for a message over its limit.)
    """
    return f"{code} " if kind == "batched" else "none"


class Servers:
    def __init__(self, ports: dict[str, int], ca: trustme.CA) -> None:
        self.ports = ports
        self.ca = ca

    def url(self, server: str = "plain") -> str:
        scheme = "wss" if server == "tls" else "ws"
        return f"{scheme}://127.0.0.1:{self.ports[server]}/c/{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("conformance") / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    log = pem.with_name("server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--cert", str(pem)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_SECONDS)
        line = process.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the conformance server did not start; see {log.name}")
        yield Servers(json.loads(line), ca)
    finally:
        process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        log.close()


@asynccontextmanager
async def opened(
    factory: TransportFactory, url: str, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Transport]:
    async with trio.open_nursery() as nursery:
        transport = await factory(nursery, url, None, ssl_context, 5.0)
        try:
            yield transport
        finally:
            await transport.aclose(polite=False)


def pattern(size: int) -> bytes:
    """What the server's ``binary N`` sends."""
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


async def receive_n(transport: Transport, n: int) -> list[str | bytes]:
    got: list[str | bytes] = []
    while len(got) < n:
        got += await transport.receive_many(n - len(got))
    return got


async def until_buffered(transport: Transport, size: int) -> None:
    """Return once ``size`` bytes wait unread in the batched transport's socket.

    ``SO_RCVLOWAT`` makes the socket readable only from that many bytes on, so this is
    one wait for a condition, not a guess at how long the network takes.
    """
    assert isinstance(transport, BatchedTransport)
    stream = transport._stream
    assert isinstance(stream, trio.SocketStream)
    sock = stream.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)
    try:
        await trio.lowlevel.wait_readable(sock)
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)


async def closed_by(transport: Transport) -> TransportClosed:
    with pytest.raises(TransportClosed) as info:
        while True:
            await transport.receive_many(100)
    return info.value


async def server_received(servers: Servers, url: str) -> str:
    """The close frame the server received on the connection to ``url``: "CODE REASON"."""
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    while True:
        async with opened(connect_batched, servers.url()) as t:
            await t.send("result")
            result = json.loads(await t.receive())
        if f"/{path}" in result:
            return str(result[f"/{path}"])
        await trio.sleep(0.01)


# -- messages ----------------------------------------------------------------------------


@BOTH
async def test_text_and_binary(servers: Servers, kind: str) -> None:
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            await t.send("echo héllo, wörld ✓")
            assert await t.receive() == "héllo, wörld ✓"
            await t.send("binary 300")
            assert await t.receive() == pattern(300)


@BOTH
async def test_many_small_frames_in_one_read(servers: Servers, kind: str) -> None:
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            await t.send("many 500")  # one TCP write of 2,890 bytes
            if kind == "batched":  # all of it in the socket before the first read
                await until_buffered(t, sum(2 + len(f"m{i}") for i in range(500)))
            first = await t.receive_many(1000)
            got = first + await receive_n(t, 500 - len(first))
            assert got == [f"m{i}" for i in range(500)]
            if kind == "batched":
                assert len(first) == 500  # one socket read, one batch


@BOTH
@pytest.mark.parametrize("command", ["text", "binary"])
async def test_large_frames_spanning_many_reads(servers: Servers, kind: str, command: str) -> None:
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            for size in (LIMIT, 70_000, 126, 125, 65_535, 65_536):
                await t.send(f"{command} {size}")
                message = await t.receive()
                assert len(message) == size
                if command == "text":
                    assert message == "x" * size
                else:
                    assert message == pattern(size)


# -- fragmentation -----------------------------------------------------------------------


@BOTH
async def test_many_fragments(servers: Servers, kind: str) -> None:
    parts = [f"part {i}; " for i in range(300)]
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            await t.send("fragments " + json.dumps(parts))
            assert await t.receive() == "".join(parts)
            await t.send("fragments " + json.dumps([{"b": "00ff"}] * 50))
            assert await t.receive() == b"\x00\xff" * 50
            await t.send("echo after")  # the connection is still in step
            assert await t.receive() == "after"


@BOTH
async def test_a_ping_between_fragments_is_answered(servers: Servers, kind: str) -> None:
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            await t.send("ping-between-fragments")
            assert await receive_n(t, 2) == ["abc", "pong ok"]


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@BOTH
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(min_size=1, max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=1200), max_size=12),
)
async def test_random_fragment_splits_of_utf8(
    servers: Servers, kind: str, text: str, cuts: list[int]
) -> None:
    """Text split at any byte, even inside a UTF-8 sequence, comes back whole."""
    fragments = [{"t": part.hex()} for part in _splits(text.encode(), cuts)]
    binary = [{"b": part.hex()} for part in _splits(text.encode(), cuts[::-1])]
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            await t.send("fragments " + json.dumps(fragments))
            await t.send("fragments " + json.dumps(binary))
            await t.send("echo end")
            assert await receive_n(t, 3) == [text, text.encode(), "end"]


# -- ping, close -------------------------------------------------------------------------


@BOTH
async def test_ping_gets_a_pong(servers: Servers, kind: str) -> None:
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url()) as t:
            await t.send("ping hello")
            assert await t.receive() == "pong ok hello"


@BOTH
async def test_server_close_code_and_reason_surface_and_are_answered(
    servers: Servers, kind: str
) -> None:
    url = servers.url()
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], url) as t:
            await t.send("echo before")
            await t.send("close 4001 token expired")
            assert await t.receive() == "before"
            closed = await closed_by(t)
            assert (closed.code, closed.reason) == (4001, "token expired")
            with pytest.raises(TransportClosed):
                await t.send("too late")
        assert await server_received(servers, url) == "4001 token expired"


@BOTH
async def test_client_close_is_answered(servers: Servers, kind: str) -> None:
    url = servers.url()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            t = await FACTORIES[kind](nursery, url, None, None, 5.0)
            await t.send("echo hi")
            assert await t.receive() == "hi"
            # Polite close: 1000, then wait for the answer. With a 60 s close timeout, only
            # an answered close returns inside the 10 s deadline above: no clock is read.
            t._close_timeout = 60.0  # type: ignore[attr-defined]
            await t.aclose()
        assert await server_received(servers, url) == "1000 "


@BOTH
async def test_invalid_utf8_is_1007(servers: Servers, kind: str) -> None:
    url = servers.url()
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], url) as t:
            await t.send("echo fine")
            await t.send("invalid-utf8")
            assert await t.receive() == "fine"
            assert (await closed_by(t)).code == 1007
        assert (await server_received(servers, url)).startswith(sent_verdict(kind, 1007))


@BOTH
@pytest.mark.parametrize("command", ["text", "binary"])
async def test_a_message_over_the_limit_is_1009(servers: Servers, kind: str, command: str) -> None:
    url = servers.url()
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], url) as t:
            await t.send(f"{command} {LIMIT}")
            await t.send(f"{command} {LIMIT + 1}")
            assert len(await t.receive()) == LIMIT
            assert (await closed_by(t)).code == 1009
        assert (await server_received(servers, url)).startswith("1009 ")


# -- permessage-deflate ------------------------------------------------------------------


@pytest.mark.parametrize("server", ["deflate", "deflate_no_takeover"])
async def test_deflate_negotiated_and_inflated(servers: Servers, server: str) -> None:
    factory = partial(connect_batched, deflate=True)
    parts = [f"fragment {i}, " for i in range(40)]
    with trio.fail_after(10):
        async with opened(factory, servers.url(server)) as t:
            await t.send("extensions")
            assert await t.receive() == "permessage-deflate"
            for _ in range(2):  # the second time, with context (unless no takeover)
                await t.send("echo small ✓")
                await t.send("text 200000")
                await t.send("binary 100000")
                await t.send("many 300")
                await t.send("fragments " + json.dumps(parts))
                await t.send("ping-between-fragments")
                got = await receive_n(t, 306)
                assert got[:3] == ["small ✓", "x" * 200_000, pattern(100_000)]
                assert got[3:303] == [f"m{i}" for i in range(300)]
                assert got[303:] == ["".join(parts), "abc", "pong ok"]
            await t.send(f"text {LIMIT + 1}")  # inflates past the limit: 1009
            assert (await closed_by(t)).code == 1009


@pytest.mark.parametrize(
    ("factory", "server", "negotiated"),
    [
        (connect_batched, "deflate", "none"),  # not offered by default
        (partial(connect_batched, deflate=True), "plain", "none"),  # offered, declined
        (connect_websocket, "deflate", "none"),  # trio-websocket cannot offer it
    ],
    ids=["batched-default", "batched-declined", "trio-websocket"],
)
async def test_without_deflate(
    servers: Servers, factory: TransportFactory, server: str, negotiated: str
) -> None:
    with trio.fail_after(10):
        async with opened(factory, servers.url(server)) as t:
            await t.send("extensions")
            assert await t.receive() == negotiated
            await t.send("text 100000")
            assert await t.receive() == "x" * 100_000


# -- TLS ---------------------------------------------------------------------------------


@BOTH
async def test_tls_verified_works_unverified_is_refused(servers: Servers, kind: str) -> None:
    trusting = ssl.create_default_context()
    servers.ca.configure_trust(trusting)
    with trio.fail_after(10):
        async with opened(FACTORIES[kind], servers.url("tls"), trusting) as t:
            await t.send("echo over tls")
            assert await t.receive() == "over tls"
            await t.send("text 300000")
            assert await t.receive() == "x" * 300_000
        refused: CertificateError | None = None
        async with trio.open_nursery() as nursery:
            try:
                await FACTORIES[kind](nursery, servers.url("tls"), None, None, 5.0)
            except CertificateError as exc:
                refused = exc
        assert refused is not None
        assert "cannot verify the TLS certificate" in str(refused)
