"""The connection lives on: a feed on the simulator takes a barrage of hostile frames.

For each venue the simulator sends, between its own pushes, a few hundred frames
the decoder must reject (mutated, truncated and wrapped valid frames, garbage, a
megabyte price, 100,000 nested lists, invalid UTF-8 in binary frames, empty
frames) and a handful it must accept but that carry nothing for the user (answers
to requests nobody made, events the feed ignores, a clock with keys of its own,
data for unknown symbols). The feed must keep its one connection, keep delivering
ticks, and count exactly the frames it rejected. Autojump clock: no real waiting.
"""

from __future__ import annotations

import random

import orjson
import trio

import tickactors
from tickactors._cli.output import JsonLines, MemoryLines, TextLines
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

from .fuzz_frames import MEGA, RandomSource, hostile_frame
from .fuzz_oracle import Decoders

TOKEN = "hostile-token-3c3c"
CHUNK = 40


def barrage(venue: str, n: int, seed: int) -> list[str | bytes]:
    """``n`` generated frames that a fresh dialect rejects, plus the heavy ones."""
    src, judge = RandomSource(random.Random(seed)), Decoders()
    frames: list[str | bytes] = []
    while len(frames) < n:
        _, frame = hostile_frame(src, venue)
        if len(frame) < 1_000_000 and not judge.judge(venue, frame):
            frames.append(frame)
    heavy: list[str | bytes] = ["", b"", b"\xff\xfe", "\x00", "[" * 100_000 + "]" * 100_000]
    if venue == "alltick":
        heavy.append('{"cmd_id":22998,"data":{"code":"BTCUSDT","price":"' + "9" * MEGA + '"}}')
        heavy.append(b'{"cmd_id":22998,"data":{"code":"BTC\xc0\xafUSDT","price":"1"}}')
    else:
        heavy.append('a[{"e":"md","d":{"quotes":[{"contractId":"' + "9" * MEGA + '"}]}}]')
        heavy.append(
            b'a[{"e":"md","d":{"quotes":[{"contractId":1,"entries":{"\xed\xa0\x80":{}}}]}}]'
        )
    assert not any(judge.judge(venue, frame) for frame in heavy)
    return frames + heavy


def harmless(venue: str) -> list[str]:
    """Frames a decoder accepts, that must neither end the connection nor reach the user."""
    if venue == "alltick":
        items = [
            {"ret": 200, "cmd_id": 22001, "seq_id": 10**9, "data": {"symbol_list": None}},
            {"ret": 606, "msg": "too many", "cmd_id": 0, "seq_id": 0, "data": {}},
            {"ret": 600, "msg": "\x1b[31mred", "cmd_id": 22005, "seq_id": 10**9 + 1},
            {"cmd_id": 22998, "data": {"code": "GHOST\x1b", "price": "1", "volume": "0"}},
        ]  # fmt: skip
        return [orjson.dumps(item).decode() for item in items]
    clock = {"t": "2024-01-02T14:30:00.000Z", "s": 1, "connection": 9, "event": "x", "message": 1}
    items = [
        {"i": 10**12, "s": 200, "d": {"p-ticket": "t", "p-time": 5}},
        {"i": 10**12 + 1, "s": 500, "d": "[" * 300 + "]" * 300},
        {"i": 10**12 + 2, "s": 404, "d": orjson.Fragment(b"[" * 300 + b"]" * 300)},
        {"e": "clock", "d": clock},
        {"e": "props", "d": {"entityType": "order"}},
        {"e": "chart", "d": {"charts": []}},
        # (no "shutdown": a Maintenance notice makes the feed replace the connection,
        # make-before-break: tests/test_feed_rotation.py)
        {"e": "whatever", "d": None},
        {"e": "md", "d": {"histograms": []}},
    ]
    # (no c[code,"reason"] either: a close frame ends the session at once, by design;
    # tests/test_e2e_tradovate.py covers it)
    return ["o", "h", "a" + orjson.dumps(items).decode()]


async def pour(conn, frames):
    for start in range(0, len(frames), CHUNK):
        conn.send_raw(frames[start : start + CHUNK])
        await trio.sleep(0.05)


async def collect(feed, symbols, timeout=30.0):
    """Wait until every symbol delivered an item; return the symbols seen."""
    missing, seen = set(symbols), set()
    with trio.fail_after(timeout):
        while missing:
            for item in await feed.get_batch():
                missing.discard(item.symbol)
                seen.add(item.symbol)
    return seen


async def survives(sim, feed, venue, symbols, seed):
    await collect(feed, symbols)
    (conn,) = sim.connections
    bad = barrage(venue, 300, seed)
    frames = bad + harmless(venue)
    random.Random(seed).shuffle(frames)
    before = feed.statistics()["connection"]
    await pour(conn, frames)
    with trio.move_on_after(2):
        while True:
            seen = {item.symbol for item in await feed.get_batch()}
            assert seen <= set(symbols)  # nothing of the barrage reaches the user
    assert await collect(feed, symbols) == set(symbols)  # ticks keep flowing
    after = feed.statistics()["connection"]
    assert after["decode_errors"] - before["decode_errors"] == len(bad)
    assert after["connects"] == 1 and after["disconnects"] == 0
    assert sim.stats.connections_opened == 1 and sim.connections == [conn]
    assert feed.statistics()["events"]["decode_error"] >= 10
    out = MemoryLines()
    for event in await feed._health.queue.get_batch():  # what the runner would print
        JsonLines(out).event(event)
        TextLines(out).event(event)
    assert "\x1b" not in out.text()
    return after


async def test_alltick_keeps_its_connection_through_a_barrage(autojump_clock):
    symbols = ("BTCUSDT", "ETHUSDT", "EURUSD")
    async with open_simulator("alltick", seed=3) as sim:
        venue = AllTick(url=sim.url, token=TOKEN)
        async with tickactors.open_feed(venue, seed=3, stale_after=5.0) as feed:
            feed.subscribe(*symbols)
            await survives(sim, feed, "alltick", symbols, seed=21)
            assert dict(sim.stats.violations) == {}


async def test_tradovate_keeps_its_connection_through_a_barrage(autojump_clock):
    symbols = ("ESZ6", "NQZ6")
    async with open_simulator("tradovate", config=SimConfig(tokens={TOKEN}), seed=5) as sim:
        async with tickactors.open_feed(Tradovate(url=sim.url, token=TOKEN), seed=5) as feed:
            feed.subscribe(*symbols)
            await survives(sim, feed, "tradovate", symbols, seed=22)
            assert feed.statistics()["events"]["clock"] == 1
