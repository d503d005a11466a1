"""A raw AllTick probe: the smallest client that talks to the simulator, for tests.

No reconnection, no rate budget, no validation: it sends exactly what it is
told and records every frame it receives (``raw``), so tests can check the
server's behaviour, not a client's. Not part of the public API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson
import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from . import _alltick_protocol as proto


class Probe:
    """One raw connection; see :func:`open_probe`."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.raw: list[str | bytes] = []
        self.pushes: list[dict[str, Any]] = []
        self._seq = 0

    async def send(
        self, cmd_id: int, data: Any = None, *, seq_id: int | None = None, trace: str = ""
    ) -> int:
        """Send a request; returns its ``seq_id``."""
        if seq_id is None:
            self._seq += 1
            seq_id = self._seq
        body = {"cmd_id": cmd_id, "seq_id": seq_id, "trace": trace, "data": data or {}}
        await self.ws.send_message(orjson.dumps(body).decode())
        return seq_id

    async def send_raw(self, message: str | bytes) -> None:
        await self.ws.send_message(message)

    async def heartbeat(self) -> int:
        return await self.send(proto.HEARTBEAT, {})

    async def trades(self, *codes: str) -> int:
        return await self.send(proto.SUB_TRADES, {"symbol_list": [{"code": c} for c in codes]})

    async def depth(self, *codes: str, level: int | None = 5) -> int:
        """A 22002 for ``codes``; ``level=None`` sends no ``depth_level``."""
        entries: list[dict[str, object]] = [
            {"code": c} if level is None else {"code": c, "depth_level": level} for c in codes
        ]
        return await self.send(proto.SUB_DEPTH, {"symbol_list": entries})

    async def cancel(self, cancel_type: int) -> int:
        return await self.send(proto.CANCEL, {"cancel_type": cancel_type})

    async def receive(self) -> str | bytes:
        """The next frame, raw (raises trio_websocket.ConnectionClosed at the end)."""
        message = await self.ws.get_message()
        self.raw.append(message)
        return message

    async def next_frame(self) -> dict[str, Any]:
        """The next frame as a dict (pushes are also appended to ``pushes``)."""
        frame: dict[str, Any] = orjson.loads(await self.receive())
        if "ret" not in frame:
            self.pushes.append(frame)
        return frame

    async def answer(self) -> dict[str, Any]:
        """The next answer frame; pushes received meanwhile go to ``pushes``."""
        while True:
            frame = await self.next_frame()
            if "ret" in frame:
                return frame

    async def collect(self, seconds: float) -> list[dict[str, Any]]:
        """Every frame received within ``seconds``."""
        frames: list[dict[str, Any]] = []
        with trio.move_on_after(seconds):
            while True:
                frames.append(await self.next_frame())
        return frames

    async def codes_for(self, seconds: float, cmd_id: int = proto.PUSH_TRADE) -> set[str]:
        """Codes of the pushes of ``cmd_id`` received within ``seconds``."""
        frames = await self.collect(seconds)
        return {f["data"]["code"] for f in frames if f.get("cmd_id") == cmd_id}


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


@asynccontextmanager
async def open_probe(
    url: str, token: str | None = "test-token", *, connect_timeout: float = 10.0
) -> AsyncIterator[Probe]:
    """Connect to ``url`` (``?token=`` appended unless ``token`` is None).

    Raises ``trio.TooSlowError`` if the upgrade is not answered within
    ``connect_timeout``, ``trio_websocket.ConnectionRejected`` on an HTTP refusal.

    The probe owns its TCP stream and closes it on every path: trio-websocket
    0.12's ``open_websocket_url`` leaks the socket after a close the server
    started, and its ``connect_timeout`` hangs while the server stays silent.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    resource = parts.path + (f"?token={token}" if token is not None else "")
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(connect_timeout):
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    f"{parts.hostname}:{parts.port}",
                    resource,
                    message_queue_size=100_000,
                )
            try:
                yield Probe(ws)
            finally:
                with trio.move_on_after(5.0):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        leaves = [e for e in _leaves(group) if not isinstance(e, trio.Cancelled)]
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
    finally:
        await trio.aclose_forcefully(stream)
