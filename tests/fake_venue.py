"""A fake transport and a scripted AllTick peer, for actor tests under the autojump clock.

No sockets: the feed's connection actor talks to :class:`FakeTransport`
objects through memory channels, and the test plays the venue.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import trio

from tickactors import Secret, TransportClosed


class FakeTransport:
    def __init__(self, url: str, token: Secret | None) -> None:
        self.url = url
        self.token = token
        self._to_client, self._inbox = trio.open_memory_channel[str | bytes](math.inf)
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.closed = False
        self.closed_politely: bool | None = None
        self._close_code: int | None = None
        self._new_frame = trio.Event()

    # the client's side
    async def receive(self) -> str | bytes:
        try:
            return await self._inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed(self._close_code, "fake close") from None

    async def receive_many(self, max_messages: int) -> list[str | bytes]:
        out = [await self.receive()]
        while len(out) < max_messages:
            try:
                out.append(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return out

    async def send(self, message: str) -> None:
        if self.closed:
            raise TransportClosed(1006, "closed")
        self.sent.append((trio.current_time(), orjson.loads(message)))
        self._new_frame.set()
        self._new_frame = trio.Event()
        await trio.lowlevel.checkpoint()

    async def aclose(self, *, polite: bool = True) -> None:
        self.closed = True
        self.closed_politely = polite
        self._to_client.close()
        await trio.lowlevel.checkpoint()

    # the venue's side
    def push(self, frame: str | bytes | dict[str, Any]) -> None:
        if isinstance(frame, dict):
            frame = orjson.dumps(frame).decode()
        self._to_client.send_nowait(frame)

    def trade(self, symbol: str, price: str = "1.5", seq: int = 1) -> None:
        self.push(
            {
                "cmd_id": 22998,
                "data": {"code": symbol, "seq": seq, "tick_time": 1, "price": price, "volume": "1"},
            }
        )

    def answer(self, request: dict[str, Any], ret: int = 200, msg: str = "ok") -> None:
        self.push(
            {
                "ret": ret,
                "msg": msg,
                "cmd_id": request["cmd_id"] + 1,
                "seq_id": request["seq_id"],
                "trace": request["trace"],
                "data": {},
            }
        )

    def close_by_peer(self, code: int = 1006) -> None:
        self._close_code = code
        self._to_client.close()

    def requests(self, cmd_id: int | None = None) -> list[dict[str, Any]]:
        return [m for _, m in self.sent if cmd_id is None or m["cmd_id"] == cmd_id]

    async def wait_sent(self, count: int) -> None:
        while len(self.sent) < count:
            await self._new_frame.wait()


class FakeNetwork:
    """The transport factory: every connect makes a :class:`FakeTransport`."""

    def __init__(self) -> None:
        self.transports: list[FakeTransport] = []
        self.connect_times: list[float] = []
        self.refuse = 0
        self._connected = trio.Event()

    async def __call__(self, nursery, url, token, ssl_context, connect_timeout) -> FakeTransport:
        from tickactors import ConnectError

        await trio.lowlevel.checkpoint()
        self.connect_times.append(trio.current_time())
        if self.refuse:
            self.refuse -= 1
            raise ConnectError("refused (fake)")
        transport = FakeTransport(url, token)
        self.transports.append(transport)
        self._connected.set()
        self._connected = trio.Event()
        return transport

    async def wait_connections(self, count: int) -> FakeTransport:
        while len(self.transports) < count:
            await self._connected.wait()
        return self.transports[count - 1]
