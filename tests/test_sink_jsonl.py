"""The JSON-lines sink: rotation by size and by (virtual) time, crash repair, write errors.

Under the autojump clock, with ``clock_offset`` chosen so that the sink's clock reads
exact epoch seconds: time-based rotation happens at exact virtual times.
"""

from __future__ import annotations

import errno
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from tickactors import HealthEvent, Tick
from tickactors._json_lines import market_dict
from tickactors.sinks import JsonlSink, SinkError, open_jsonl_sink
from tickactors.sinks import _jsonl as jsonl_module
from tickactors.sinks._files import repair_torn_tail, retired_name

EPOCH = 1_700_000_000.0  # the sink's clock at trio time 0 (2023-11-14T22:13:20Z)


def tick(n: int) -> Tick:
    return Tick("700.HK", Decimal(f"{n}.10"), Decimal(1), seq=n, received_at=trio.current_time())


def offset() -> float:
    return EPOCH - trio.current_time()


def lines_of(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def retired(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name != "t.jsonl")


async def test_size_rotation_cuts_between_lines_and_keeps_the_limit(tmp_path: Path, autojump_clock):
    events: list[HealthEvent] = []
    spec = f"jsonl:{tmp_path}/t.jsonl?max_bytes=1K"
    async with open_jsonl_sink(spec, clock_offset=offset(), emit=events.append) as sink:
        for n in range(0, 100, 10):
            sink.market([tick(k) for k in range(n, n + 10)])
    stats = sink.statistics()
    files = retired(tmp_path)
    assert len(files) == stats["files"] > 5
    assert all(path.stat().st_size <= 1024 for path in files)
    assert not (tmp_path / "t.jsonl").exists()
    got = [line for path in files for line in lines_of(path)]
    assert got == [market_dict(tick(k), offset()) for k in range(100)]
    assert [g["price"] for g in got] == [f"{k}.10" for k in range(100)]
    assert [e.detail["reason"] for e in events if e.event == "sink_rotated"][-1] == "close"
    assert {e.detail["reason"] for e in events if e.event == "sink_rotated"} == {"size", "close"}
    assert stats["lines"] == 100 and stats["lost_lines"] == 0


async def test_time_rotation_happens_at_the_period_boundaries(tmp_path: Path, autojump_clock):
    events: list[HealthEvent] = []
    start = trio.current_time()
    spec = f"jsonl:{tmp_path}/t.jsonl?max_seconds=60"
    async with open_jsonl_sink(spec, clock_offset=offset(), emit=events.append) as sink:
        sink.market([tick(0)])  # at 22:13:20 UTC: this minute's file ends at 22:14:00
        await trio.sleep(19.5)  # half-seconds: no tick ties with a boundary
        sink.market([tick(1)])
        for n in range(2, 100):  # a tick a second: the timer cuts, not a late tick
            await trio.sleep(1)
            sink.market([tick(n)])
    times = [e.time - start for e in events if e.event == "sink_rotated"]
    assert times == [40.0, 100.0, 117.5]  # 22:14:00, 22:15:00, and the close at 22:15:17.5
    assert [e.detail["reason"] for e in events if e.event == "sink_rotated"] == [
        "time",
        "time",
        "close",
    ]
    files = retired(tmp_path)
    assert [p.name for p in files] == [
        "t.20231114T221400.000000Z.jsonl",
        "t.20231114T221500.000000Z.jsonl",
        "t.20231114T221517.500000Z.jsonl",
    ]
    assert [len(lines_of(p)) for p in files] == [22, 60, 18]


async def test_an_idle_file_is_retired_on_time_and_an_empty_one_is_not(
    tmp_path: Path, autojump_clock
):
    events: list[HealthEvent] = []
    spec = f"jsonl:{tmp_path}/t.jsonl?max_seconds=10"
    start = trio.current_time()
    async with open_jsonl_sink(spec, clock_offset=offset(), emit=events.append) as sink:
        sink.market([tick(0)])
        await trio.sleep(35)  # nothing more: one cut at 10, none at 20 and 30 (empty)
        await sink.flush()  # the writer thread has done what it was handed (and said so)
        assert [e.time - start for e in events if e.event == "sink_rotated"] == [10.0]
        assert (tmp_path / "t.jsonl").stat().st_size == 0
    assert len(retired(tmp_path)) == 1  # and the empty active file is removed at close
    assert not (tmp_path / "t.jsonl").exists()


async def test_a_torn_tail_is_cut_off_and_the_leftover_retired_at_start(tmp_path: Path):
    active = tmp_path / "t.jsonl"
    whole = b'{"kind":"tick","seq":1}\n{"kind":"tick","seq":2}\n'
    active.write_bytes(whole + b'{"kind":"tick","se')
    events: list[HealthEvent] = []
    async with open_jsonl_sink(f"jsonl:{active}", clock_offset=0.0, emit=events.append) as sink:
        sink.market([tick(3)])
    assert [e.event for e in events][:2] == ["sink_repaired", "sink_rotated"]
    assert events[0].detail["removed_bytes"] == len(b'{"kind":"tick","se')
    assert events[1].detail["reason"] == "start"
    first, second = retired(tmp_path)
    assert first.read_bytes() == whole
    assert [line["seq"] for line in lines_of(second)] == [3]
    assert sink.statistics()["repaired_bytes"] == 18


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", b""),
        (b"no newline at all", b""),
        (b"a\nb\n", b"a\nb\n"),
        (b"a\nb", b"a\n"),
        (b"x" * 200_000 + b"\n" + b"y" * 100_000, b"x" * 200_000 + b"\n"),  # across chunks
        (b"a\n\x00\x00\x00", b"a\n"),  # a power loss's zero-filled tail
    ],
)
def test_repair_keeps_exactly_the_whole_lines(tmp_path: Path, content: bytes, kept: bytes):
    path = tmp_path / "f"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDWR)
    try:
        assert repair_torn_tail(fd) == len(content) - len(kept)
    finally:
        os.close(fd)
    assert path.read_bytes() == kept


async def test_a_failed_write_loses_that_batch_only_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    events: list[HealthEvent] = []
    real = jsonl_module.write_all
    calls = {"n": 0}

    def flaky(fd: int, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # part of a batch reaches the disk, then the disk is full
            os.write(fd, data[: len(data) // 2 + 5])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(jsonl_module, "write_all", flaky)
    async with open_jsonl_sink(
        f"jsonl:{tmp_path}/t.jsonl", clock_offset=0.0, emit=events.append
    ) as sink:
        sink.market([tick(1), tick(2)])
        sink.market([tick(3), tick(4)])  # fails: both lost, what was written taken back
        sink.market([tick(5)])  # reopens, goes on
        await sink.flush()
        stats = sink.statistics()
    assert stats["lost_lines"] == 2 and stats["write_errors"] == 1
    names = [e.event for e in events]
    assert names.index("sink_error") < names.index("sink_recovered")
    assert "sink_repaired" not in names  # the failed piece was truncated away at once
    assert "No space left" in next(e.message for e in events if e.event == "sink_error")
    (file,) = retired(tmp_path)
    assert [line["seq"] for line in lines_of(file)] == [1, 2, 5]


async def test_events_raised_mid_batch_land_after_it(tmp_path: Path):
    """An ``emit`` that writes a sink's events back into it (the runner does not, but a
    user may): a rotation in the middle of a batch must not put its event line in the
    middle of the batch's lines."""
    sink_box: list[JsonlSink] = []

    def emit(event: HealthEvent) -> None:
        sink_box[0].event(event)

    async with open_jsonl_sink(
        f"jsonl:{tmp_path}/t.jsonl?max_bytes=1000", clock_offset=0.0, emit=emit
    ) as sink:
        sink_box.append(sink)
        sink.market([tick(n) for n in range(12)])  # about 130 bytes a line: cuts inside
        await sink.flush()  # the events come back on the Trio thread; once closed, no more
    lines = [line for path in retired(tmp_path) for line in lines_of(path)]
    kinds = [line["kind"] for line in lines]
    seqs = [line["seq"] for line in lines if line["kind"] == "tick"]
    assert seqs == list(range(12))
    first_event = kinds.index("status")
    assert kinds[:first_event] == ["tick"] * 12  # every tick of the batch came first


async def test_fsync_batch_and_the_status_line(tmp_path: Path, autojump_clock):
    await trio.sleep(5)
    spec = f"jsonl:{tmp_path}/t.jsonl?fsync=batch"
    async with open_jsonl_sink(spec, clock_offset=100.0 - trio.current_time()) as sink:
        sink.market([tick(1)])
        sink.status("command", "subscribe", symbols=["A"])
        sink.event(HealthEvent("stale", 1.0, 2, "quiet", {"silent_for": 3.0}))
    (file,) = retired(tmp_path)
    got = lines_of(file)
    assert got[1] == {
        "kind": "status",
        "event": "command",
        "message": "subscribe",
        "time": 100.0,
        "connection": 0,
        "symbols": ["A"],
    }
    assert got[2]["event"] == "stale" and got[2]["silent_for"] == 3.0


async def test_a_path_that_cannot_be_opened_is_a_sink_error(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SinkError, match="cannot open"):
        async with open_jsonl_sink(f"jsonl:{tmp_path}/file/t.jsonl", clock_offset=0.0):
            pass


def test_retired_names_sort_in_time_order_and_never_collide(tmp_path: Path):
    path = tmp_path / "ticks.jsonl"
    first = retired_name(path, 1_700_000_000.25)
    assert first.name == "ticks.20231114T221320.250000Z.jsonl"
    first.write_text("")
    assert retired_name(path, 1_700_000_000.25).name == "ticks.20231114T221320.250001Z.jsonl"
    assert retired_name(tmp_path / "capture", 0.0).name == "capture.19700101T000000.000000Z"


async def test_the_rotation_timer_moves_on_while_no_file_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock
):
    """After a failed write no file is open until the next batch; the timer must still
    move its deadline on instead of waking for the same past deadline forever."""

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    spec = f"jsonl:{tmp_path}/t.jsonl?max_seconds=10"
    async with open_jsonl_sink(spec, clock_offset=offset()) as sink:
        real_due = sink._policy.due
        calls: list[float] = []

        def counted(now: float) -> bool:
            calls.append(now)
            assert len(calls) < 50, "the timer spins"
            return real_due(now)

        monkeypatch.setattr(sink._policy, "due", counted)
        monkeypatch.setattr(jsonl_module, "write_all", full)
        sink.market([tick(1)])
        await trio.sleep(35)
    assert len(calls) == 3  # once a period boundary: at 10, 20 and 30 s, no more


async def test_a_stalled_disk_stalls_the_writer_thread_never_the_trio_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock
):
    """A write that blocks (a hung mount, a disk that takes seconds) happens in the sink's
    thread: the loop's timers go on, ``market`` returns at once, and only
    ``wait_writable`` waits, once the thread is ``buffer`` bytes behind; code that never
    waits loses (and is told of) what it offers beyond twice the buffer."""
    import threading

    real = jsonl_module.write_all
    release = threading.Event()
    writers: set[int] = set()

    def stalled(fd: int, data: bytes) -> None:
        writers.add(threading.get_ident())
        release.wait(30)  # a bound for a broken test, not a timing
        real(fd, data)

    monkeypatch.setattr(jsonl_module, "write_all", stalled)
    trio_thread = threading.get_ident()
    spec = f"jsonl:{tmp_path}/t.jsonl"
    events: list[HealthEvent] = []
    async with open_jsonl_sink(
        spec, clock_offset=offset(), buffer=4096, emit=events.append
    ) as sink:
        for n in range(0, 100, 10):  # ~1.3 KB a batch, never waiting: beyond 2 x 4 KB
            sink.market([tick(k) for k in range(n, n + 10)])
        writable = trio.Event()

        async def wait_writable() -> None:
            await sink.wait_writable()
            writable.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_writable)
            started = trio.current_time()
            await trio.sleep(60)  # the loop runs on while the disk hangs
            assert trio.current_time() - started == 60
            assert not writable.is_set()
            release.set()
            await writable.wait()
        await sink.flush()
        stats = sink.statistics()
    assert writers and trio_thread not in writers
    # taken while below 2 x buffer (the thread's first batch included), the rest refused
    assert (stats["lines"], stats["lost_lines"]) == (70, 30)
    (loss,) = [e for e in events if e.event == "sink_loss"]
    assert loss.detail["lost_lines"] == 10  # announced at the first refusal
    (file,) = retired(tmp_path)
    assert [line["seq"] for line in lines_of(file)] == list(range(70))
