"""A raw Tradovate probe and REST caller: the smallest clients of the simulator, for tests.

No reconnection, no heartbeat timer, no validation: the probe sends exactly
what it is told and records every frame (``frames``: ``(trio time, raw)``),
so tests check the server, not a client. :func:`rest` makes one HTTP/1.1
call on a fresh connection with h11. Not part of the public API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h11
import orjson
import trio
from trio_websocket import WebSocketConnection

from ._probe import open_probe


class TradovateProbe:
    """One raw socket; see :func:`open_tradovate_probe`."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.frames: list[tuple[float, str | bytes]] = []
        self.items: list[dict[str, Any]] = []  # every answer and event seen, in order
        self._next_id = 0

    async def send_raw(self, message: str | bytes) -> None:
        await self.ws.send_message(message)

    async def request(
        self, endpoint: str, body: Any = "", query: str = "", *, id: int | None = None
    ) -> int:
        """Send ``endpoint\\nid\\nquery\\nbody``; a non-str body is JSON-encoded. Returns the id."""
        if id is None:
            self._next_id += 1
            id = self._next_id
        text = body if isinstance(body, str) else orjson.dumps(body).decode()
        await self.ws.send_message(f"{endpoint}\n{id}\n{query}\n{text}")
        return id

    async def authorize(self, token: str, *, quoted: bool = False, id: int = 0) -> dict[str, Any]:
        body = orjson.dumps(token).decode() if quoted else token
        await self.request("authorize", body, id=id)
        return await self.answer(id)

    async def heartbeat(self) -> None:
        await self.ws.send_message("[]")

    async def receive(self) -> str | bytes:
        """The next raw frame (raises trio_websocket.ConnectionClosed at the end)."""
        frame = await self.ws.get_message()
        self.frames.append((trio.current_time(), frame))
        if isinstance(frame, str) and frame.startswith("a"):
            try:
                items = orjson.loads(frame[1:])
            except orjson.JSONDecodeError:
                items = None  # a malformed frame: kept in ``frames`` only
            if isinstance(items, list):
                self.items.extend(i for i in items if isinstance(i, dict))
        return frame

    async def answer(self, request_id: int) -> dict[str, Any]:
        """The answer to ``request_id`` (other frames are recorded meanwhile)."""
        seen = len(self.items)
        while True:
            for item in self.items[seen:]:
                if item.get("i") == request_id:
                    return item
            seen = len(self.items)
            await self.receive()

    async def call(
        self, endpoint: str, body: Any = "", query: str = "", *, id: int | None = None
    ) -> dict[str, Any]:
        return await self.answer(await self.request(endpoint, body, query, id=id))

    async def collect(self, seconds: float) -> list[tuple[float, str | bytes]]:
        """Raw frames received within ``seconds``, with arrival times."""
        start = len(self.frames)
        with trio.move_on_after(seconds):
            while True:
                await self.receive()
        return self.frames[start:]

    async def event(self, kind: str) -> dict[str, Any]:
        """The next event with ``"e": kind``."""
        seen = len(self.items)
        while True:
            for item in self.items[seen:]:
                if item.get("e") == kind:
                    return item
            seen = len(self.items)
            await self.receive()


@asynccontextmanager
async def open_tradovate_probe(
    url: str, *, connect_timeout: float = 10.0, expect_open: bool = True
) -> AsyncIterator[TradovateProbe]:
    """Connect to ``url``; with ``expect_open`` wait for the ``o`` frame first."""
    async with open_probe(url, None, connect_timeout=connect_timeout) as raw:
        probe = TradovateProbe(raw.ws)
        if expect_open:
            assert await probe.receive() == "o"
        yield probe


async def rest(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    """One HTTP call to ``127.0.0.1:port``; returns (status, parsed JSON body)."""
    status, _, parsed = await rest_response(port, method, path, body, token=token, headers=headers)
    return status, parsed


async def rest_response(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """:func:`rest` with the response headers too (names lowercased)."""
    conn = h11.Connection(h11.CLIENT)
    data = b"" if body is None else orjson.dumps(body)
    head = [("Host", f"127.0.0.1:{port}"), ("Content-Length", str(len(data)))]
    if body is not None:
        head.append(("Content-Type", "application/json"))
    if token is not None:
        head.append(("Authorization", f"Bearer {token}"))
    head += headers or []
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        out = conn.send(h11.Request(method=method, target=path, headers=head))
        out += conn.send(h11.Data(data=data)) if data else b""
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)
        status, chunks, answer_headers = 0, bytearray(), {}
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                answer_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    return status, answer_headers, orjson.loads(chunks) if chunks else None
