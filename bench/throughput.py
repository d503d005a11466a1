"""Throughput: our full feed against bare receive loops on four WebSocket stacks.

Used by ``bench/run.py``. Every contender reads the same replay server
(``bench/_server.py``, a separate process streaming identical AllTick 22998
frames as fast as the client takes them), on a fresh connection per run, in a
rotating order; each lets ``warmup`` frames pass and then times ``n``.

feed
    ``tickactors.open_feed(AllTick(...))`` with the default transport, ``subscribe``,
    ``await feed.get_batch()`` in a loop (``pipeline.run_pipeline``): decoded,
    validated, staleness-stamped, ghost-filtered ticks delivered to user code.
trio_websocket
    ``await ws.get_message()`` on trio-websocket (``pipeline.run_bare``).
wsproto_trio
    one Trio task: ``receive_some(65536)`` on a TCP stream, ``wsproto`` events, count
    ``TextMessage`` events (wsproto checks and decodes UTF-8; nothing is JSON-decoded).
websockets_asyncio
    ``websockets.asyncio.client.connect`` with its defaults, ``await ws.recv()``.
picows
    ``picows.ws_connect`` with a listener whose ``on_ws_frame`` only counts frames.

The bare loops decode nothing. asyncio contenders run under ``asyncio.run``, Trio
ones under ``trio.run``, one after another in one client process (one core).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import trio

from _common import TOKEN, Sample, Server, Window, subscribe_request
from peers import PEERS
from pipeline import run_bare, run_pipeline

Body = Callable[[Server, list[str], int, int, Sample], None]
TIMEOUT = 30.0  # seconds per run; a run cut short keeps its partial count


async def _trio_bounded(body: Callable[..., Any], *args: Any) -> None:
    with trio.move_on_after(TIMEOUT):
        await body(*args)


async def _asyncio_bounded(body: Callable[..., Any], *args: Any) -> None:
    try:
        async with asyncio.timeout(TIMEOUT):
            await body(*args)
    except TimeoutError:
        pass


def feed(server: Server, symbols: list[str], warmup: int, n: int, sample: Sample) -> None:
    trio.run(_trio_bounded, run_pipeline, server, symbols, warmup, n, sample)


def trio_websocket_bare(
    server: Server, symbols: list[str], warmup: int, n: int, sample: Sample
) -> None:
    trio.run(_trio_bounded, run_bare, server, symbols, warmup, n, sample, {})


async def _wsproto(server: Server, symbols: list[str], warmup: int, n: int, sample: Sample) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        target = f"{parts.path}?token={TOKEN}"
        await stream.send_all(ws.send(Request(host=f"{host}:{port}", target=target)))
        accepted = False
        while not accepted:
            ws.receive_data(await stream.receive_some(65536))
            accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
        await stream.send_all(ws.send(TextMessage(data=subscribe_request(symbols))))
        receive_some, receive_data, events = stream.receive_some, ws.receive_data, ws.events
        count = 0
        window: Window | None = None
        try:
            while count < warmup + n:
                receive_data(await receive_some(65536))
                for event in events():
                    if type(event) is TextMessage and event.message_finished:
                        count += 1
                if window is None and count >= warmup:
                    window, count = Window(server, sample), count - warmup
                    warmup = 0
        finally:
            if window is not None:
                window.stop(count)


def wsproto_trio_bare(
    server: Server, symbols: list[str], warmup: int, n: int, sample: Sample
) -> None:
    trio.run(_trio_bounded, _wsproto, server, symbols, warmup, n, sample)


async def _websockets(
    server: Server, symbols: list[str], warmup: int, n: int, sample: Sample
) -> None:
    from websockets.asyncio.client import connect

    async with connect(f"{server.url}?token={TOKEN}") as ws:
        await ws.send(subscribe_request(symbols))
        recv = ws.recv
        for _ in range(warmup):
            await recv()
        window = Window(server, sample)
        count = 0
        try:
            while count < n:
                await recv()
                count += 1
        finally:
            window.stop(count)


def websockets_asyncio_bare(
    server: Server, symbols: list[str], warmup: int, n: int, sample: Sample
) -> None:
    asyncio.run(_asyncio_bounded(_websockets, server, symbols, warmup, n, sample))


async def _picows(server: Server, symbols: list[str], warmup: int, n: int, sample: Sample) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    class Counter(WSListener):
        def __init__(self) -> None:
            self.count = 0
            self.window: Window | None = None
            self.done = asyncio.get_running_loop().create_future()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            self.count += 1
            if self.window is None:
                if self.count >= warmup:
                    self.window, self.count = Window(server, sample), 0
            elif self.count >= n and not self.done.done():
                self.window.stop(self.count)
                self.done.set_result(None)
                transport.disconnect()

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if not self.done.done():
                self.done.set_result(None)

    transport, opened = await ws_connect(Counter, f"{server.url}?token={TOKEN}")
    listener = cast(Counter, opened)
    transport.send(WSMsgType.TEXT, subscribe_request(symbols).encode())
    try:
        await listener.done
    finally:
        if listener.window is not None and not sample.seconds:
            listener.window.stop(listener.count)  # cut short: keep the partial count
        transport.disconnect()
        await transport.wait_disconnected()


def picows_bare(server: Server, symbols: list[str], warmup: int, n: int, sample: Sample) -> None:
    asyncio.run(_asyncio_bounded(_picows, server, symbols, warmup, n, sample))


async def _peer(
    name: str, server: Server, symbols: list[str], warmup: int, n: int, sample: Sample
) -> None:
    """A fair peer (``bench/peers.py``): the same ticks as the feed, to a counting user."""
    count = 0
    limit = warmup
    window: Window | None = None

    def on_tick(tick: object) -> bool:
        nonlocal count, limit, window
        count += 1
        if count < limit:
            return False
        if window is None:
            window, count, limit = Window(server, sample), 0, n
            return False
        if not sample.seconds:  # frames of the same read may follow: counted once
            window.stop(count)
        return True

    try:
        await PEERS[name](f"{server.url}?token={TOKEN}", symbols, on_tick)
    finally:
        if window is not None and not sample.seconds:
            window.stop(count)  # cut short: keep the partial count


def picows_decode(server: Server, symbols: list[str], warmup: int, n: int, sample: Sample) -> None:
    asyncio.run(_asyncio_bounded(_peer, "picows_decode", server, symbols, warmup, n, sample))


def websockets_decode(
    server: Server, symbols: list[str], warmup: int, n: int, sample: Sample
) -> None:
    asyncio.run(_asyncio_bounded(_peer, "websockets_decode", server, symbols, warmup, n, sample))


def contenders() -> tuple[dict[str, Body], dict[str, str]]:
    """Contenders that can run here, and a note per one that cannot."""
    out: dict[str, Body] = {
        "feed": feed,
        "trio_websocket": trio_websocket_bare,
        "wsproto_trio": wsproto_trio_bare,
    }
    notes: dict[str, str] = {}
    for name, module, body in (
        ("websockets_asyncio", "websockets.asyncio.client", websockets_asyncio_bare),
        ("picows", "picows", picows_bare),
        ("picows_decode", "picows", picows_decode),
        ("websockets_decode", "websockets.asyncio.client", websockets_decode),
    ):
        try:
            __import__(module)
        except ImportError as exc:
            notes[name] = f"skipped: {exc}"
        else:
            out[name] = body
    return out, notes


def run(
    server: Server,
    symbols: list[str],
    *,
    warmup: int,
    ticks: int,
    runs: int,
    max_seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Rotate the contenders ``runs`` times (fewer if ``max_seconds`` would be passed)."""
    bodies, notes = contenders()
    names = list(bodies)
    samples: list[Sample] = []
    started = time.perf_counter()
    longest = 0.0
    for run_no in range(1, runs + 1):
        if run_no > 1 and time.perf_counter() - started + 1.2 * longest > max_seconds:
            log(f"throughput: stopping after {run_no - 1} rounds (time limit {max_seconds:g} s)")
            break
        shift = (run_no - 1) % len(names)
        round_start = time.perf_counter()
        for name in names[shift:] + names[:shift]:
            sample = Sample(name, run_no)
            bodies[name](server, symbols, warmup, ticks, sample)
            samples.append(sample)
            log(
                f"  round {run_no} {name:<19} {sample.rate:>11,.0f} ticks/s  client CPU "
                f"{100 * sample.client_load:3.0f}%  server CPU {100 * sample.server_load:3.0f}%  "
                f"{sample.cpu_us_per_tick:6.2f} us CPU/tick"
            )
        longest = max(longest, time.perf_counter() - round_start)

    def median(name: str, attr: str) -> float:
        values = [getattr(s, attr) for s in samples if s.contender == name and s.ticks]
        return statistics.median(values) if values else 0.0

    return {
        "rates": {name: median(name, "rate") for name in names},
        "cpu_us_per_tick": {name: round(median(name, "cpu_us_per_tick"), 3) for name in names},
        "client_cpu_pct": {name: round(100 * median(name, "client_load"), 1) for name in names},
        "server_cpu_pct": {name: round(100 * median(name, "server_load"), 1) for name in names},
        "server_cpu_pct_max": round(100 * max((s.server_load for s in samples), default=0.0), 1),
        "rounds": min(sum(s.contender == n and s.ticks > 0 for s in samples) for n in names),
        "per_run": [
            {"contender": s.contender, "run": s.run, "ticks_per_s": round(s.rate, 1)}
            for s in samples
        ],
        "notes": notes,
    }
