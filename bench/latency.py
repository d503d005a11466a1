"""Latency: from the server's write of a frame to the moment user code holds its tick.

Used by ``bench/run.py``. The replay server (``bench/_server.py``) paces each
connection at a fixed rate (``?rate=R``) and stamps every frame's ``seq`` with
``STAMP_OFFSET + time.monotonic_ns()`` just before the write that carries it
(``?stamp=1``). Every contender decodes ``seq`` anyway; when user code holds a tick it
computes ``time.monotonic_ns() - (tick.seq - STAMP_OFFSET)``: one clock
(``CLOCK_MONOTONIC``, shared by every process of the machine), no offsets to estimate.

Contenders, each on a fresh connection, in a rotating order per rate:

feed
    ``open_feed(AllTick(...))`` with the default transport, ``await feed.get_batch()``;
    user code holds every tick of a batch when ``get_batch`` returns (one clock read a
    batch: they are held at the same moment).
feed_callback
    the same feed opened with ``on_batch=``: the connection's reader calls user code with
    each read's ticks, in its own step, with no consumer task to wake (one clock read a
    call). The like-for-like of the peers, which call user code from their reader too.
picows_decode, websockets_decode
    the fair peers of ``bench/peers.py``: user code is called with each tick as soon as
    it is decoded.
trio_floor
    not a client: the least any Trio reader can do. One Trio task on the same kind of
    connection (``connect_batched``, then its socket): ``wait_readable``, ``os.read``, and
    the stamps found with ``bytes.find`` (no framing, no decode, no ``Tick``; a stamp cut
    by a read boundary is skipped). Its latency is the floor under ``feed_callback``: if
    it is not below ``picows_decode``'s, no reader that waits through Trio's run loop
    and decodes can be (docs/performance.md, "Latency").
thread_floor
    not a client either: the same floor in a thread of its own, outside any event loop.
    A plain socket (``_common.raw_subscribed``), a blocking ``recv`` with nothing else in
    the thread, the stamps found the same way. What a reader that does not wait through
    Trio could reach, measured rather than guessed.

Each (rate, contender) window lets ``warmup`` seconds pass, then records every tick for
its seconds; p50, p99 and p99.9 in microseconds, with the number of samples and the
rate the contender actually received (a contender that cannot keep up with the offered
rate is marked ``overloaded``: its queue, and so its latency, grows for as long as the
window lasts). :func:`run` gives each contender three windows per rate, in a rotating
order, and reports the medians of their percentiles.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import trio

import tickactors
from _common import TOKEN, Server, percentile, raw_subscribed, subscribe_request
from _server import STAMP_OFFSET
from peers import PEERS
from tickactors.venues import AllTick

CONTENDERS = (
    "feed",
    "feed_callback",
    "picows_decode",
    "websockets_decode",
    "trio_floor",
    "thread_floor",
)
#: Where a stamp's 16 digits follow (``bench/_server.py`` stamps integer ``seq`` values).
_SEQ_KEY = b'"seq":'


class Recorder:
    """Latencies (ns) of the ticks held between ``warmup`` and ``warmup + seconds``."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.samples: list[int] = []
        self.start = time.monotonic_ns() + int(warmup * 1e9)
        self.end = self.start + int(seconds * 1e9)

    def summary(self, rate: float, seconds: float) -> dict[str, Any]:
        values = [v / 1000 for v in self.samples]
        received = len(values) / seconds if seconds else 0.0
        return {
            "p50": round(percentile(values, 0.5), 1),
            "p99": round(percentile(values, 0.99), 1),
            "p999": round(percentile(values, 0.999), 1),
            "samples": len(values),
            "received_per_s": round(received),
            "overloaded": received < 0.95 * rate,
        }


async def _feed(url: str, symbols: list[str], rec: Recorder) -> None:
    venue = AllTick(url=url, token=TOKEN)
    now_ns = time.monotonic_ns
    samples = rec.samples
    offset = STAMP_OFFSET
    async with tickactors.open_feed(venue, stale_after=60) as feed:
        feed.subscribe(*symbols)
        get_batch = feed.get_batch
        while True:
            batch = await get_batch()
            now = now_ns()
            if now < rec.start:
                continue
            if now >= rec.end:
                return
            for tick in batch:
                samples.append(now - (tick.seq - offset))


async def _feed_callback(url: str, symbols: list[str], rec: Recorder) -> None:
    venue = AllTick(url=url, token=TOKEN)
    now_ns = time.monotonic_ns
    samples = rec.samples
    offset = STAMP_OFFSET
    start, end = rec.start, rec.end
    done = trio.Event()

    def on_batch(batch: list[tickactors.MarketData]) -> None:
        now = now_ns()
        if now < start:
            return
        if now >= end:
            done.set()
            return
        for tick in batch:
            samples.append(now - (tick.seq - offset))

    async with tickactors.open_feed(venue, stale_after=60, on_batch=on_batch) as feed:
        feed.subscribe(*symbols)
        await done.wait()


async def _trio_floor(url: str, symbols: list[str], rec: Recorder) -> None:
    now_ns = time.monotonic_ns
    samples = rec.samples
    start, end = rec.start, rec.end
    async with trio.open_nursery() as nursery:
        transport = await tickactors.connect_batched(nursery, url, None, None, 10)
        await transport.send(subscribe_request(symbols))
        sock = getattr(transport, "_socket", None)
        assert sock is not None, "trio_floor needs a plain TCP connection"
        fd = sock.fileno()
        wait_readable = trio.lowlevel.wait_readable
        read = os.read
        try:
            while True:
                await wait_readable(fd)
                data = read(fd, 65536)
                now = now_ns()
                if not data or now >= end:
                    return
                if now >= start:
                    _stamps(data, now, samples)
        finally:
            await transport.aclose(polite=False)


def _stamps(data: bytes, now: int, samples: list[int]) -> None:
    """Record ``now`` minus each whole stamp in ``data`` (one cut by the read is skipped)."""
    key, skip, offset = _SEQ_KEY, len(_SEQ_KEY), STAMP_OFFSET
    at = data.find(key)
    while at >= 0:
        digits = data[at + skip : at + skip + 16]
        if len(digits) == 16 and digits.isdigit():
            samples.append(now - (int(digits) - offset))
        at = data.find(key, at + skip)


def _thread_floor(url: str, symbols: list[str], rec: Recorder, limit: float) -> None:
    sock, _ = raw_subscribed(url, symbols)
    sock.settimeout(limit)  # nothing waits forever: the window ends long before
    now_ns = time.monotonic_ns
    samples = rec.samples
    start, end = rec.start, rec.end

    def read() -> None:
        recv = sock.recv
        while True:
            data = recv(65536)
            now = now_ns()
            if not data or now >= end:
                return
            if now >= start:
                _stamps(data, now, samples)

    try:
        reader = threading.Thread(target=read, name="thread_floor", daemon=True)
        reader.start()
        reader.join()
    finally:
        sock.close()


def _peer_user(rec: Recorder) -> Callable[[Any], bool]:
    now_ns = time.monotonic_ns
    samples = rec.samples
    offset = STAMP_OFFSET
    start, end = rec.start, rec.end

    def on_tick(tick: Any) -> bool:
        now = now_ns()
        if now < start:
            return False
        if now >= end:
            return True
        samples.append(now - (tick.seq - offset))
        return False

    return on_tick


def one(
    server: Server, name: str, symbols: list[str], rate: float, warmup: float, seconds: float
) -> dict[str, Any]:
    """One contender at one rate; its summary."""
    base = f"{server.url}?rate={rate:g}&stamp=1"
    rec = Recorder(warmup + 0.5, seconds)  # + connecting and subscribing
    limit = warmup + seconds + 30
    if name == "thread_floor":
        _thread_floor(base, symbols, rec, limit)
    elif name in ("feed", "feed_callback", "trio_floor"):
        trio_side = {"feed": _feed, "feed_callback": _feed_callback, "trio_floor": _trio_floor}
        ours = trio_side[name]
        url = f"{base}&token={TOKEN}" if name == "trio_floor" else base

        async def body() -> None:
            with trio.move_on_after(limit):
                await ours(url, symbols, rec)

        trio.run(body)
    else:

        async def peer() -> None:
            try:
                async with asyncio.timeout(limit):
                    await PEERS[name](f"{base}&token={TOKEN}", symbols, _peer_user(rec))
            except TimeoutError:
                pass

        asyncio.run(peer())
    return rec.summary(rate, seconds)


def run(
    server: Server,
    symbols: list[str],
    rates: list[float],
    *,
    seconds: dict[float, float],
    warmup: float,
    rounds: int = 3,
    contenders: dict[str, str] | None = None,
    log: Callable[[str], None],
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{rate: {contender: {"p50", "p99", "p999", ...}}}`` (rates as strings, for JSON).

    Each rate's ``seconds`` are split into ``rounds`` windows per contender, the order
    rotating from round to round; a contender's percentiles are the medians of its
    windows' (each window's are under ``"rounds"``). A burst of the host's that spoils one
    window of one contender then moves its figure little, where a single window would
    carry the burst into the ratio whole. ``contenders``: name -> a reason to skip it
    (None or absent: run it)."""
    skipped = contenders or {}
    names = [n for n in CONTENDERS if n not in skipped]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for k, rate in enumerate(rates):
        windows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for r in range(rounds):
            turn = (k + r) % len(names)
            for name in names[turn:] + names[:turn]:
                w = one(server, name, symbols, rate, warmup, seconds[rate] / rounds)
                windows[name].append(w)
                log(
                    f"  latency {rate:>9,.0f}/s {name:<18} p50 {w['p50']:>9,.1f}  p99 "
                    f"{w['p99']:>9,.1f}  p99.9 {w['p999']:>9,.1f} us  ({w['samples']:,} "
                    f"ticks, {w['received_per_s']:,}/s"
                    f"{', OVERLOADED' if w['overloaded'] else ''}; round {r + 1}/{rounds})"
                )
        out[f"{rate:g}"] = {name: merged(windows[name]) for name in names}
    return out


def merged(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """One contender's figures at one rate from its windows: the median of each
    percentile, every sample counted, overloaded if any window was; the windows kept."""
    return {
        "p50": statistics.median(w["p50"] for w in windows),
        "p99": statistics.median(w["p99"] for w in windows),
        "p999": statistics.median(w["p999"] for w in windows),
        "samples": sum(w["samples"] for w in windows),
        "received_per_s": round(statistics.fmean(w["received_per_s"] for w in windows)),
        "overloaded": any(w["overloaded"] for w in windows),
        "rounds": [{key: w[key] for key in ("p50", "p99", "p999")} for w in windows],
    }
