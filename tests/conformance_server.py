"""A WebSocket server nobody here wrote (asyncio ``websockets``), driven by commands.

Started by ``tests/test_conformance.py`` in a separate process:
``python tests/conformance_server.py [--cert PEM --key PEM]``. It listens on
127.0.0.1 only, on ports the OS picks, and prints one JSON line with them::

    {"plain": P, "deflate": P, "deflate_no_takeover": P, "tls": P}

``plain`` negotiates no extension; ``deflate`` accepts permessage-deflate with
context takeover (websockets' default); ``deflate_no_takeover`` accepts it with
``server_no_context_takeover`` (a fresh compressor per message); ``tls`` is
``plain`` over TLS with the given certificate (absent without ``--cert``).

Every text message the client sends is a command; the server answers with
messages, frames or a close. Commands (``N`` an integer):

``echo X``             send ``X`` back
``extensions``         send the negotiated extensions, e.g. ``permessage-deflate`` or ``none``
``fragments JSON``     send one message in the fragments of a JSON list of strings
                       (text) or of ``{"b": hex}`` objects (binary); a text fragment given
                       as ``{"t": hex}`` is raw bytes sent on a text frame, so UTF-8
                       sequences may be split across fragments
``ping-between-fragments``  send "abc" in three fragments with a ping after the first;
                       then "pong ok" if the pong came within 5 s, else "pong missing"
``ping X``             ping with payload X; "pong ok X" or "pong missing X"
``close CODE REASON``  close with that code and reason
``invalid-utf8``       send b"caf\\xc3(" on a text frame (websockets' ``text=True``)
``text N`` / ``binary N``  one message of N characters ("x" * N) or N bytes
``many N``             N small text messages "m0".."mN-1", all written before any await
``result``             (on any connection) "ID CODE REASON" for each connection that ended:
                       what close the server received from each client; the ID is the
                       request path
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

CLOSES: dict[str, str] = {}  # request path -> "CODE REASON" of the close the server received


async def handle(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "?"
    try:
        async for message in ws:
            if isinstance(message, bytes):
                await ws.send(message)  # binary: echo
                continue
            await command(ws, message)
    except ConnectionClosed:
        pass
    finally:
        received = ws.protocol.close_rcvd
        CLOSES[path] = "none" if received is None else f"{received.code} {received.reason}"


async def command(ws: ServerConnection, message: str) -> None:
    name, _, arg = message.partition(" ")
    if name == "echo":
        await ws.send(arg)
    elif name == "extensions":
        names = [extension.name for extension in ws.protocol.extensions]
        await ws.send(",".join(names) or "none")
    elif name == "fragments":
        parts, keywords = fragments(json.loads(arg))
        await ws.send(parts, **keywords)
    elif name == "ping-between-fragments":
        waiter: list[Any] = []

        async def parts() -> Any:
            yield "a"
            waiter.append(await ws.ping(b"between"))
            yield "b"
            yield "c"

        await ws.send(parts())
        await ws.send(await pong_verdict(waiter[0], ""))
    elif name == "ping":
        await ws.send(await pong_verdict(await ws.ping(arg.encode()), arg))
    elif name == "close":
        code, _, reason = arg.partition(" ")
        await ws.close(int(code), reason)
    elif name == "invalid-utf8":
        await ws.send(b"caf\xc3(", text=True)
    elif name == "text":
        await ws.send("x" * int(arg))
    elif name == "binary":
        await ws.send(bytes(range(256)) * (int(arg) // 256) + bytes(range(int(arg) % 256)))
    elif name == "many":
        for i in range(int(arg)):  # websockets writes each frame at once: no await between
            ws.protocol.send_text(f"m{i}".encode())
        ws.transport.write(b"".join(ws.protocol.data_to_send()))  # one write, one segment
    elif name == "result":
        await ws.send(json.dumps(CLOSES))
    else:
        await ws.send(f"unknown command {name!r}")


def fragments(spec: list[Any]) -> tuple[Any, dict[str, Any]]:
    """(message, keywords) for ``ws.send``: a list of str, or of raw bytes and text=?"""
    if all(isinstance(part, str) for part in spec):
        return spec, {}
    if all("b" in part for part in spec):
        return [bytes.fromhex(part["b"]) for part in spec], {"text": False}
    return [bytes.fromhex(part["t"]) for part in spec], {"text": True}


async def pong_verdict(waiter: Any, payload: str) -> str:
    try:
        await asyncio.wait_for(waiter, 5.0)
    except TimeoutError:
        return f"pong missing {payload}".strip()
    return f"pong ok {payload}".strip()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    no_takeover = ServerPerMessageDeflateFactory(server_no_context_takeover=True)
    servers = {
        "plain": serve(handle, "127.0.0.1", 0, compression=None),
        "deflate": serve(handle, "127.0.0.1", 0),
        "deflate_no_takeover": serve(
            handle, "127.0.0.1", 0, compression=None, extensions=[no_takeover]
        ),
    }
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        servers["tls"] = serve(handle, "127.0.0.1", 0, compression=None, ssl=context)
    ports = {}
    started = []
    for name, server in servers.items():
        running = await server.__aenter__()
        started.append(running)
        ports[name] = running.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    # Until the test process closes our stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
