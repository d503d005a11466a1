"""``python -m tickactors run --sink ...`` as a subprocess, against the simulator and a real
``nats-server -js``: what the runner printed is what the sinks hold.

Real time (a child process and a real server); every wait is under ``trio.fail_after``.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sinks import decode_symbol_token

from .nats_support import NatsServer, free_port, read_stream
from .test_runner import TOKEN, Child, start

SYMBOLS = "BTCUSDT,700.HK,X_Y-Z"


async def read_to_end(child: Child, timeout: float = 30.0) -> tuple[list[dict[str, Any]], int]:
    """Every stdout line until the runner exits, and its exit code."""
    with trio.fail_after(timeout):
        try:
            while True:
                await child.next_line()
        except EOFError:
            pass
        return child.lines, await child.process.wait()


def of_kind(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["kind"] == kind]


def events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == name]


def sink_stats(lines: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    stopped = lines[-1]
    assert stopped["event"] == "stopped"
    return next(s for s in stopped["sinks"] if s["sink"].startswith(prefix))


def read_captures(directory: Path) -> list[dict[str, Any]]:
    """Every line of every file in ``directory``, files in name order; each line whole."""
    out = []
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        assert data.endswith(b"\n"), path
        out.extend(json.loads(line) for line in data.splitlines())
    return out


async def test_ticks_reach_stdout_jsonl_and_nats_alike(nats_server: NatsServer, tmp_path: Path):
    capture = tmp_path / "capture"
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=11) as sim:
        child = await start(
            sim.url,
            *("--symbols", SYMBOLS, "--duration", "3"),
            *("--sink", f"jsonl:{capture}/ticks.jsonl?max_bytes=4K"),
            *("--sink", nats_server.url),
        )
        async with child:
            lines, code = await read_to_end(child)
    assert code == 0
    ticks = of_kind(lines, "tick")
    assert len(ticks) > 20
    assert {t["symbol"] for t in ticks} == set(SYMBOLS.split(","))

    # NATS: every tick, exactly, in order, on its subject
    nats = sink_stats(lines, "nats://")
    assert nats["published"]["tick"] == len(ticks)
    assert nats["dropped_total"] == 0 and nats["rejected"] == {} and nats["state"] == "closed"
    published = await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.>")
    assert [payload for _, payload in published] == ticks  # exact decimal strings and all
    for subject, payload in published:
        assert subject.rsplit(".", 1)[0] == "ticks.alltick.tick"
        assert decode_symbol_token(subject.rsplit(".", 1)[1]) == payload["symbol"]
    assert {subject for subject, _ in published} == {
        "ticks.alltick.tick.BTCUSDT",
        "ticks.alltick.tick.700%2EHK",
        "ticks.alltick.tick.X_Y-Z",
    }
    health = await trio.to_thread.run_sync(read_stream, nats_server.url, "health.>")
    assert len(health) == nats["published"]["status"]
    assert all(subject == f"health.alltick.{p['event']}" for subject, p in health)
    assert "subscribed" in {p["event"] for _, p in health}
    printed = {json.dumps(line, sort_keys=True) for line in lines if line["kind"] == "status"}
    assert all(json.dumps(p, sort_keys=True) in printed for _, p in health)

    # JSON lines: the same lines as stdout, cut into files of at most 4 KiB
    jsonl = sink_stats(lines, "jsonl:")
    files = sorted(capture.iterdir())
    assert len(files) == jsonl["files"] >= 2
    assert not (capture / "ticks.jsonl").exists()  # a clean stop retires the active file
    assert all(path.stat().st_size <= 4096 for path in files)
    captured = read_captures(capture)
    others = [line for line in lines if line.get("sink") != jsonl["sink"]]  # not its own
    assert captured == others[: len(captured)]
    assert of_kind(captured, "tick") == ticks
    assert events(captured, "sink_connected")  # the NATS sink's events are captured
    assert jsonl["lines"] == len(captured) and jsonl["lost_lines"] == 0
    rotated = events(lines, "sink_rotated")
    assert {r["reason"] for r in rotated} == {"size", "close"}
    assert [Path(r["file"]).name for r in rotated] == [path.name for path in files]


async def test_unreachable_nats_never_stops_the_feed_and_every_loss_is_counted():
    url = f"nats://127.0.0.1:{free_port()}?buffer=20&drain=0.5"
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=12) as sim:
        child = await start(sim.url, "--symbols", SYMBOLS, "--duration", "3", "--sink", url)
        async with child:
            lines, code = await read_to_end(child)
    assert code == 0
    ticks = of_kind(lines, "tick")
    assert len(ticks) > 20  # the feed kept streaming
    assert events(lines, "sink_connect_failed")
    losses = events(lines, "sink_loss")
    assert losses and all(loss["buffered"] <= 20 for loss in losses)
    stats = sink_stats(lines, "nats://")
    assert stats["high_water"] <= 20 and stats["capacity"] == 20
    assert stats["published_total"] == 0
    assert stats["dropped_total"] == stats["accepted"]  # every entry accounted for
    assert stats["dropped"]["tick"] == len(ticks)
    assert losses[-1]["lost_total"] == stats["dropped_total"]


@pytest.mark.slow
async def test_a_nats_server_killed_mid_run_costs_no_tick_and_no_duplicate(
    nats_server: NatsServer,
):
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=13) as sim:
        child = await start(
            sim.url, "--symbols", SYMBOLS, "--duration", "10", "--sink", nats_server.url
        )
        async with child:
            await child.wait_for(lambda o: o.get("event") == "sink_connected")
            for _ in range(5):
                await child.wait_for(lambda o: o["kind"] == "tick")
            killed_at = time.time()
            await trio.to_thread.run_sync(nats_server.kill)
            await child.wait_for(
                lambda o: o.get("event") in ("sink_disconnected", "sink_connect_failed")
            )
            for _ in range(10):  # the feed streams on while NATS is away
                await child.wait_for(lambda o: o["kind"] == "tick")
            await trio.to_thread.run_sync(nats_server.start)  # same port, same store
            await child.wait_for(lambda o: o.get("event") == "sink_connected", timeout=20)
            lines, code = await read_to_end(child)
    assert code == 0
    ticks = of_kind(lines, "tick")
    stats = sink_stats(lines, "nats://")
    assert stats["connects"] == 2
    assert (
        stats["published_total"] + stats["dropped_total"] + sum(stats["rejected"].values())
        == stats["accepted"]
    )

    published = [
        p for _, p in await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.>")
    ]
    keys = Counter((p["symbol"], p["seq"]) for p in published)
    assert max(keys.values()) == 1  # no duplicate, retries included (Nats-Msg-Id)
    assert all(p in ticks for p in published)
    missing = [t for t in ticks if (t["symbol"], t["seq"]) not in keys]
    # Everything from the outage on was buffered and delivered; only a server killed with
    # acknowledged messages still in its own memory could have lost any, before the kill.
    assert all(t["received_at"] < killed_at for t in missing)
    assert [t for t in ticks if t["received_at"] >= killed_at]
    assert stats["dropped_total"] == 0


async def test_a_torn_line_left_by_a_crash_is_cut_off_at_the_next_start(tmp_path: Path):
    capture = tmp_path / "capture"
    sink = f"jsonl:{capture}/ticks.jsonl"
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=14) as sim:
        child = await start(sim.url, "--symbols", SYMBOLS, "--sink", sink)
        async with child:
            for _ in range(10):
                await child.wait_for(lambda o: o["kind"] == "tick")
            child.process.send_signal(signal.SIGKILL)
            with trio.fail_after(10):
                await child.process.wait()
        active = capture / "ticks.jsonl"
        whole = active.read_bytes()
        assert whole.endswith(b"\n")
        torn = b'{"kind":"tick","symbol":"BTCUSDT","price":"6'  # as a crash mid-write leaves
        with active.open("ab") as file:
            file.write(torn)

        child = await start(sim.url, "--symbols", SYMBOLS, "--duration", "1.5", "--sink", sink)
        async with child:
            lines, code = await read_to_end(child)
    assert code == 0
    (repaired,) = events(lines, "sink_repaired")
    assert repaired["removed_bytes"] == len(torn)
    reasons = [r["reason"] for r in events(lines, "sink_rotated")]
    assert reasons == ["start", "close"]
    files = sorted(capture.iterdir())
    assert len(files) == 2 and not active.exists()
    assert files[0].read_bytes() == whole  # the first run's lines, whole, nothing else
    captured = read_captures(capture)  # every line of every file parses
    assert of_kind(captured, "tick")


async def test_bad_sinks_are_usage_errors_that_show_no_password(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = {
        "nats://u:pw-S3CRET@127.0.0.1:4222?bogus=1": "unknown option 'bogus'",
        "kafka://127.0.0.1:9092": "unknown sink",
        "jsonl:x?max_bytes=lots": "not a size",
        f"jsonl:{blocker}/under/a/file.jsonl": "cannot open",
    }
    for spec, expected in cases.items():
        child = await start("ws://127.0.0.1:9/quote-b-ws-api", "--symbols", "A", "--sink", spec)
        async with child:
            lines, code = await read_to_end(child)
        assert code == 2, spec
        assert lines[-1]["event"] == "error" and expected in lines[-1]["message"], lines
        assert "pw-S3CRET" not in json.dumps(lines)
