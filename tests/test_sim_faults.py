"""Every fault of the simulator, observed from the client side of a real socket."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._faults import RANDOM_MENU
from tickactors.sim._probe import Probe, open_probe


async def arrivals(probe: Probe, seconds: float) -> list[tuple[float, dict[str, Any]]]:
    """Frames received within ``seconds``, each with its arrival time."""
    out: list[tuple[float, dict[str, Any]]] = []
    with trio.move_on_after(seconds):
        while True:
            frame = await probe.next_frame()
            out.append((trio.current_time(), frame))
    return out


def codes(
    frames: list[tuple[float, dict[str, Any]]], start: float = 0.0, end: float = float("inf")
) -> set[str]:
    return {f["data"]["code"] for t, f in frames if "ret" not in f and start <= t < end}


async def closed_reason(probe: Probe) -> tuple[int, str | None]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await probe.receive()
    return info.value.reason.code, info.value.reason.reason


async def test_stall_silences_everything_for_its_duration(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT", "EURUSD")
        await probe.collect(2.0)
        sim.faults.stall(5.0)
        assert sim.stats.fault_log == [(2.0, "stall", "duration=5.0")]
        await trio.sleep(1.0)
        await probe.heartbeat()  # swallowed: read, never answered
        frames = await arrivals(probe, 6.0)
        assert [t for t, _ in frames if 2.0 < t < 7.0] == []
        assert codes(frames, 7.0) == {"BTCUSDT", "EURUSD"}
        assert all("ret" not in f for _, f in frames)
        await probe.heartbeat()
        assert (await probe.answer())["seq_id"] == 3
        assert sim.stats.faults_injected["stall"] == 1


async def test_stall_until_resume(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT")
        await probe.answer()
        sim.faults.stall(None)
        for _ in range(10):  # swallowed heartbeats still keep the connection alive
            await probe.heartbeat()
            assert await probe.collect(10.0) == []
        assert sim.stats.connections_live == 1
        sim.faults.resume()
        assert len(await probe.collect(1.0)) > 3


async def test_drop_aborts_without_close_frame(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        async with open_probe(sim.url) as one, open_probe(sim.url) as two:
            await one.trades("BTCUSDT")
            await one.collect(1.0)
            sim.faults.drop()
            assert (await closed_reason(one))[0] == 1006
            assert (await closed_reason(two))[0] == 1006
        assert sim.stats.closes["drop"] == 2
        assert sim.stats.connections_live == 0
        async with open_probe(sim.url) as again:  # the venue still serves
            await again.heartbeat()
            assert (await again.answer())["ret"] == 200


async def test_accept_then_close(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        sim.faults.accept_then_close(2)
        for _ in range(2):
            async with open_probe(sim.url) as probe:
                assert await closed_reason(probe) == (1000, "accept then close")
        async with open_probe(sim.url) as probe:
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200
        assert sim.stats.connections_opened == 3
        assert sim.stats.closes["accept_then_close"] == 2


UPGRADE = (
    b"GET /quote-b-ws-api?token=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def test_hang_upgrade_never_answers(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        sim.faults.hang_upgrade(1)
        with pytest.raises(trio.TooSlowError):
            async with open_probe(sim.url, connect_timeout=3.0):
                pass
        assert trio.current_time() == 3.0
        async with open_probe(sim.url) as probe:
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200
        assert sim.stats.tcp_accepted == 2
        assert sim.stats.connections_opened == 1
        assert sim.stats.closes["hang_upgrade"] == 1


async def test_silence_symbol(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT", "EURUSD")
        await probe.collect(1.0)
        sim.faults.silence_symbol("BTCUSDT", 3.0)
        frames = await arrivals(probe, 5.0)
        assert codes(frames, 1.0001, 4.0) == {"EURUSD"}
        assert codes(frames, 4.0) == {"BTCUSDT", "EURUSD"}


async def test_ghost_keeps_streaming_removed_symbols(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT", "EURUSD", "ETHUSDT")
        await probe.collect(1.0)
        sim.faults.ghost(["BTCUSDT"], 2.0)
        await probe.trades("EURUSD")  # BTCUSDT ghosts, ETHUSDT stops
        assert (await probe.answer())["ret"] == 200
        frames = await arrivals(probe, 4.0)
        assert codes(frames, 1.0, 3.0) == {"BTCUSDT", "EURUSD"}
        assert codes(frames, 3.0) == {"EURUSD"}
        assert max(t for t, f in frames if f["data"]["code"] == "BTCUSDT") > 2.5
        assert sim.connections[0].trade_symbols == ("EURUSD",)
        sim.faults.ghost(None, None)  # everything removed from now on, forever
        await probe.cancel(0)
        await probe.answer()
        assert await probe.codes_for(20.0) == {"EURUSD"}
        sim.faults.clear_ghost()


async def test_lose_acks(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        sim.faults.lose_acks(1)
        await probe.trades("BTCUSDT")  # applied, never answered
        frames = await probe.collect(1.0)
        assert frames and all("ret" not in f for f in frames)
        await probe.heartbeat()
        assert (await probe.answer())["seq_id"] == 2


async def test_drop_requests(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        sim.faults.drop_requests(1)
        await probe.trades("BTCUSDT")  # neither applied nor answered
        assert await probe.collect(1.0) == []
        await probe.heartbeat()
        assert (await probe.answer())["seq_id"] == 2
        assert sim.connections[0].trade_symbols == ()
        assert sim.stats.requests_by_cmd[22004] == 1


async def test_delay_acks(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        sim.faults.delay_acks(2.5, 1)
        await probe.heartbeat()
        assert (await probe.answer())["seq_id"] == 1
        assert trio.current_time() == 2.5
        await trio.sleep(1.0)
        await probe.heartbeat()
        assert (await probe.answer())["seq_id"] == 2
        assert trio.current_time() == 3.5


async def test_kick(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        sim.faults.kick()
        frame = await probe.next_frame()
        assert (frame["ret"], frame["cmd_id"]) == (606, 0)
        assert (await closed_reason(probe))[0] == 1008
        assert sim.stats.closes["kick"] == 1


async def test_set_max_age(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        async with open_probe(sim.url) as old:
            await trio.sleep(2.0)
            async with open_probe(sim.url) as young:
                sim.faults.set_max_age(3.0)
                assert await closed_reason(old) == (1000, "max age")
                assert trio.current_time() == 3.0
                assert await closed_reason(young) == (1000, "max age")
                assert trio.current_time() == 5.0
        sim.faults.set_max_age(None)
        async with open_probe(sim.url) as probe:
            await trio.sleep(10.0)
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200


async def test_malformed_frames_then_normal_service(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        sim.faults.malformed(9)
        raw = [await probe.receive() for _ in range(9)]
        assert "" in raw
        assert any(isinstance(r, bytes) for r in raw)
        assert any(isinstance(r, str) and r.startswith("<html>") for r in raw)
        assert any(isinstance(r, str) and '"price":651.12' in r for r in raw)
        assert any(isinstance(r, str) and '"-651.12"' in r for r in raw)
        assert any(isinstance(r, str) and "0" * 300 in r for r in raw)
        await probe.heartbeat()
        assert (await probe.answer())["ret"] == 200
        await trio.sleep(1.0)
        await probe.trades("BTCUSDT")
        await probe.answer()
        assert await probe.codes_for(1.0) == {"BTCUSDT"}


async def test_expire_token(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        async with open_probe(sim.url, "tok-x") as x, open_probe(sim.url, "tok-y") as y:
            sim.faults.expire_token("tok-x")
            frame = await x.next_frame()
            assert (frame["ret"], frame["msg"]) == (401, "token invalid")
            assert (await closed_reason(x))[0] == 1008
            await y.heartbeat()
            assert (await y.answer())["ret"] == 200
            async with open_probe(sim.url, "tok-x") as again:
                assert (await again.next_frame())["ret"] == 401
        assert "tok-x" not in repr(sim.stats.fault_log)


async def test_slow_consumer_is_dropped(autojump_clock: trio.abc.Clock) -> None:
    config = SimConfig(send_queue=16, tick_interval=0.001, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
        async with stream:
            await stream.send_all(UPGRADE)
            assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 101")
            entries = ",".join(f'{{"code":"S{i}.US"}}' for i in range(100))
            body = (
                '{"cmd_id":22004,"seq_id":1,"trace":"","data":{"symbol_list":[' + entries + "]}}"
            ).encode()
            # a masked client frame (zero mask key), 16-bit length
            await stream.send_all(
                bytes([0x81, 0xFE]) + len(body).to_bytes(2, "big") + b"\0\0\0\0" + body
            )
            await trio.sleep(5.0)  # never reading: the server's queue overflows
            assert sim.stats.closes["slow_consumer"] == 1
        assert sim.stats.connections_live == 0


async def test_random_faults_are_deterministic(autojump_clock: trio.abc.Clock) -> None:
    async def run(seed: int) -> list[tuple[float, str, str]]:
        config = SimConfig(random_faults=4.0)
        start = trio.current_time()
        async with open_simulator(config=config, seed=seed) as sim:
            await trio.sleep(200.0)
            return [(round(t - start, 6), kind, detail) for t, kind, detail in sim.stats.fault_log]

    first = await run(11)
    assert len(first) > 20
    assert first == await run(11)
    assert first != await run(12)
    assert {kind for _, kind, _ in first} >= {"stall", "drop", "malformed"}


async def test_random_menu_covers_every_kind(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT")
        await probe.answer()
        rng = random.Random(1)
        kinds = {sim.faults.inject_random(rng, {"BTCUSDT"}) for _ in range(200)}
        assert kinds == {kind for kind, _ in RANDOM_MENU}
        sim.faults.clear()
    assert sum(sim.stats.faults_injected.values()) == 200


async def test_random_faults_against_a_reconnecting_client(autojump_clock: trio.abc.Clock) -> None:
    ticks = sessions = 0
    async with open_simulator(config=SimConfig(random_faults=3.0), seed=4) as sim:
        with trio.move_on_after(150.0):
            while True:
                sessions += 1
                try:
                    async with open_probe(sim.url, connect_timeout=5.0) as probe:
                        await probe.trades("BTCUSDT", "EURUSD")
                        while True:
                            with trio.move_on_after(10.0):
                                while True:
                                    raw = await probe.receive()
                                    ticks += isinstance(raw, str) and '"cmd_id":22998' in raw
                            await probe.heartbeat()
                except (ConnectionClosed, trio.TooSlowError):
                    await trio.sleep(1.0)
        assert sum(sim.stats.faults_injected.values()) > 30
        assert sim.stats.connections_opened >= sessions - sim.stats.closes["hang_upgrade"] - 1
    assert sessions > 3
    assert ticks > 100  # a naive client: a dropped subscribe request leaves it idle


async def test_run_random_faults_on_demand(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator(seed=2) as sim:
        with trio.move_on_after(60.0):
            await sim.run_random_faults(5.0)
        assert len(sim.stats.fault_log) > 3
        with pytest.raises(ValueError):
            await sim.run_random_faults(0)
