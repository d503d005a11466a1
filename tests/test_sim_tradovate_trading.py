"""The simulated Tradovate as a trading venue: sync, orders, props, faults, keep-alive upgrade.

Driven with raw clients (the probe, h11, wsproto), never with the tickactors client.
"""

from __future__ import annotations

import h11
import orjson
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from tickactors.sim import open_simulator


async def test_rest_then_upgrade_on_one_keep_alive_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_simulator("tradovate", seed=3) as sim:
        token = sim.tradovate.accounts.issue("kim").access
        stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
        with trio.fail_after(30):
            await _rest_then_upgrade(stream, sim.port, token)
        assert sim.stats.tcp_accepted == 1 and sim.stats.connections_opened == 1


async def _rest_then_upgrade(stream: trio.SocketStream, port: int, token: str) -> None:
    async with stream:
        http = h11.Connection(h11.CLIENT)
        head = [
            ("Host", f"127.0.0.1:{port}"),
            ("Authorization", f"Bearer {token}"),
            ("Connection", "keep-alive"),
        ]
        out = http.send(h11.Request(method="GET", target="/v1/account/list", headers=head))
        await stream.send_all(out + http.send(h11.EndOfMessage()))
        status, body = 0, bytearray()
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert status == 200 and orjson.loads(body)[0]["name"].startswith("DEMO")
        # the same TCP connection now asks for the WebSocket
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="127.0.0.1", target="/v1/websocket")))
        texts: list[str] = []
        accepted = False
        while not texts:
            ws.receive_data(await stream.receive_some(65536))
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, TextMessage):
                    texts.append(event.data)
        assert accepted and texts == ["o"]
