"""A reader of the runner's stdout that stops reading never costs the connection (issue 12).

The runner's own code path (``run_feed`` with the JSON-lines writer on a real pipe, its
writer thread, the market pump) runs against the in-process simulator under the
autojump clock. Nobody reads the pipe for a minute of feed time, five times the
simulator's heartbeat timeout: heartbeats must keep reaching the venue (the simulator
drops a connection 10.5 s after its last one, the client sends one every 10 s), no
``stale`` verdict, no reconnect; the trade lane fills and the reader waits (``block``).
Then a thread reads the pipe: every line is whole JSON and fresh data follows at once.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import os
import threading
from typing import Any

import orjson
import pytest
import trio

from tickactors._cli.fd_lines import FdLines, open_fd_lines, write_whole_lines
from tickactors._cli.output import JsonLines
from tickactors._cli.run import run_feed
from tickactors._feed.feed import Feed
from tickactors.sim import SimConfig, open_simulator
from tickactors.sinks._writer_thread import WriterThread
from tickactors.venues import AllTick

TOKEN = "pipe-SECRET-7a7a"


def args(**over: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "symbols": "BTCUSDT,ETHUSDT",
        "book_symbols": "BTCUSDT",
        "duration": None,
        "stale_after": None,
        "symbol_stale_after": None,
        "seed": 1,
        "policy": None,
        "shard": None,
        "sink": None,
        "buffer": 200,
    }
    base.update(over)
    return argparse.Namespace(**base)


def read_to_end(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as rest:
        return rest.read()


async def read_all(stream: trio.lowlevel.FdStream, seen: list[tuple[float, bytes]]) -> None:
    """Read the pipe (its own end: non-blocking there only), noting the clock per chunk."""
    while chunk := await stream.receive_some(65536):
        seen.append((trio.current_time(), chunk))


async def test_a_pipe_nobody_reads_for_a_minute_costs_nothing(autojump_clock):
    config = SimConfig(tokens={TOKEN}, tick_interval=0.1, heartbeat_timeout=10.5)
    read_end, write_end = os.pipe()
    feeds: list[Feed] = []
    seen: list[tuple[float, bytes]] = []
    try:
        async with open_simulator("alltick", config=config, seed=5) as sim:
            async with open_fd_lines(write_end, capacity=16 * 1024, reserve=16 * 1024) as out:
                writer = JsonLines(out, clock_offset=0.0)
                venue = AllTick(url=sim.url, token=TOKEN)
                async with trio.open_nursery() as nursery:

                    async def runner() -> None:
                        code = await run_feed(
                            venue, args(), writer, extra=lambda feed, _: feeds.append(feed)
                        )
                        assert code == 0

                    nursery.start_soon(runner)
                    await trio.sleep(60)  # nobody reads
                    (feed,) = feeds
                    stalled = feed.statistics()
                    (conn,) = sim.connections  # the one and only, as it turns out
                    assert out.blocked  # the pump waits for the reader of stdout
                    resumed_at = trio.current_time()
                    reading = trio.lowlevel.FdStream(os.dup(read_end))
                    nursery.start_soon(read_all, reading, seen)
                    await trio.sleep(20)  # reading again
                    after = feed.statistics()
                    nursery.cancel_scope.cancel()
                await reading.aclose()
            heartbeats = sim.stats.heartbeats
            closes = dict(sim.stats.closes)
            beats = [at for at, cmd, _ in conn.requests if cmd == 22000]
    finally:
        os.close(write_end)
    tail = read_to_end(read_end)  # the writer closed: the end of what was written
    data = b"".join(chunk for _, chunk in seen) + tail

    # the connection lived through it: heartbeats on time, no stale verdict, no reconnect
    assert heartbeats >= 6 and closes == {"client_closed": 1}, (heartbeats, closes)
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    assert len(gaps) >= 6 and max(gaps) < 10.05, gaps  # every 10 s, as if read
    for stats in (stalled, after):
        assert stats["connection"]["connects"] == 1
        assert stats["connection"]["disconnects"] == 0
        assert stats["events"].get("stale", 0) == 0
    assert stalled["queue"]["producer_blocked"] > 0  # trades block: the reader waited
    assert "trade:BTCUSDT" not in stalled["queue"]["dropped_by_symbol"]  # never a trade

    # every line whole; fresh data within a second of reading again
    lines = [orjson.loads(line) for line in data.splitlines()]
    ticks = [line for line in lines if line["kind"] == "tick"]
    assert len(ticks) > 1000
    # Fresh data (received after reading resumed) follows the backlog. The autojump clock
    # runs on whenever the loop idles, the writer thread's pipe round trips included, so
    # the time to it is measured in real time by bench/stdout.py, not here.
    assert any(t["received_at"] > resumed_at + 10 for t in ticks)
    assert after["queue"]["waiting"] < stalled["queue"]["waiting"]  # the backlog drained
    # the trade stream has no hole: the simulator's sequence numbers run on per symbol
    for symbol in ("BTCUSDT", "ETHUSDT"):
        seqs = [t["seq"] for t in ticks if t["symbol"] == symbol]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


# ---- the pieces ---------------------------------------------------------------------


def test_pieces_into_a_pipe_end_at_line_ends():
    writes: list[bytes] = []
    lines = [b"x" * n + b"\n" for n in (100, 3000, 2000, 5000, 10, 4095, 1)]
    data = b"".join(lines)
    read_end, write_end = os.pipe()
    try:
        collected = bytearray()

        def drain() -> None:
            while chunk := os.read(read_end, 1 << 20):
                collected.extend(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        real_write = os.write

        def noting(fd: int, view: Any) -> int:
            writes.append(bytes(view))
            return real_write(fd, view)

        os.write = noting  # type: ignore[assignment]
        try:
            write_whole_lines(write_end, data, 4096)
        finally:
            os.write = real_write  # type: ignore[assignment]
        os.close(write_end)
        reader.join(10)
    finally:
        os.close(read_end)
    assert bytes(collected) == data
    assert all(w.endswith(b"\n") for w in writes)
    assert all(len(w) <= 4096 or w.count(b"\n") == 1 for w in writes)


async def test_a_reader_gone_is_a_broken_pipe_for_the_pump_and_nothing_for_events():
    read_end, write_end = os.pipe()
    os.close(read_end)
    async with open_fd_lines(write_end) as out:
        out.write_nowait(b"first\n")
        with trio.fail_after(5):
            while not out.failed:  # noqa: ASYNC110 (the writer thread meets EPIPE in time)
                await trio.sleep(0.01)
        with pytest.raises(BrokenPipeError):
            await out.write(b"more\n")
        assert out.write_nowait(b"event\n") is False
    os.close(write_end)


async def test_the_writer_thread_paces_put_and_bounds_offer():
    release = threading.Event()
    handled: list[list[int]] = []

    def handle(items: list[int]) -> None:
        release.wait(10)
        handled.append(items)

    writer: WriterThread[int] = WriterThread(handle, capacity=10, reserve=5)
    writer.start()
    writer.put(1, 4)  # the thread takes it and blocks in handle
    writer.put(2, 7)  # 11 queued: full
    assert writer.full
    assert writer.offer(3, 100)  # below capacity + reserve: taken (one may overshoot)
    assert not writer.offer(4, 1)  # 111 >= 15: refused
    assert writer.refused == 1
    waited = False

    async def wait_room() -> None:
        nonlocal waited
        await writer.wait_room()
        waited = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_room)
        await trio.testing.wait_all_tasks_blocked()
        assert not waited
        release.set()
    assert waited and not writer.full
    await writer.wait_idle()
    assert [i for batch in handled for i in batch] == [1, 2, 3]
    assert await writer.aclose(10)
    writer.put(5, 1)
    assert writer.discarded == 1


async def test_an_error_in_the_thread_wakes_every_waiter_and_discards_the_rest():
    def handle(items: list[int]) -> None:
        raise OSError(errno.EIO, "gone")

    writer: WriterThread[int] = WriterThread(handle, capacity=1)
    writer.start()
    writer.put(1, 5)
    with trio.fail_after(5):
        await writer.wait_room()
        await writer.wait_idle()
    assert isinstance(writer.error, OSError)
    assert not writer.offer(2, 1)
    assert await writer.aclose(5) is False


async def test_a_closed_stdout_takes_everything_and_writes_nothing():
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)  # now a closed descriptor, like ``>&-``
    lines = FdLines(write_end)
    lines._thread.start()
    await lines.write(b"a\n")
    assert await lines._thread.aclose(5)
