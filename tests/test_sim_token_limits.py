"""AllTick's per-token limits in the simulator: plans, connections per token, the 3 s rule."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio
from trio_websocket import ConnectionClosed

from tickactors.sim import PLANS, SimConfig, open_simulator
from tickactors.sim._probe import Probe, open_probe

TOO_MANY_CONNECTIONS = {
    "ret": 429,
    "msg": "too many connections",
    "cmd_id": 0,
    "seq_id": 0,
    "trace": "",
    "data": {},
}


async def refused(probe: Probe) -> tuple[dict[str, object], int, str | None]:
    """The one answer a refused connection gets, then its close code and reason."""
    frame = await probe.next_frame()
    with pytest.raises(ConnectionClosed) as info:
        await probe.receive()
    return frame, info.value.reason.code, info.value.reason.reason


async def ok(probe: Probe) -> None:
    await probe.heartbeat()
    assert (await probe.answer())["ret"] == 200


def test_plans_are_presets_and_explicit_values_win() -> None:
    assert {name: (p.max_symbols, p.max_connections_per_token) for name, p in PLANS.items()} == {
        "free": (5, 1),
        "basic": (100, 1),
        "premium": (200, 3),
        "professional": (3000, 10),
    }
    for name, limits in PLANS.items():
        config = SimConfig(plan=name)  # type: ignore[arg-type]
        assert config.max_symbols == limits.max_symbols
        assert config.max_connections_per_token == limits.max_connections_per_token
        assert config.token_rate_interval == 3.0
    mixed = SimConfig(
        plan="professional", max_symbols=7, max_connections_per_token=2, token_rate_interval=None
    )
    assert (mixed.max_symbols, mixed.max_connections_per_token, mixed.token_rate_interval) == (
        7,
        2,
        None,
    )
    plain = SimConfig()  # no plan: what the simulator did before plans existed
    assert (plain.plan, plain.max_symbols, plain.max_connections_per_token) == (None, 100, None)
    assert plain.token_rate_interval is None and not plain.record_connections
    for bad in (
        {"plan": "gold"},
        {"max_connections_per_token": 0},
        {"token_rate_interval": 0.0},
    ):
        with pytest.raises(ValueError):
            SimConfig(**bad)


async def test_one_connection_too_many_gets_429_then_1008(autojump_clock: trio.abc.Clock) -> None:
    config = SimConfig(max_connections_per_token=2, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        async with open_probe(sim.url, "a") as one, open_probe(sim.url, "a") as two:
            await one.trades("BTCUSDT")
            assert (await one.answer())["ret"] == 200
            await ok(two)
            async with open_probe(sim.url, "a") as three:
                assert await refused(three) == (TOO_MANY_CONNECTIONS, 1008, "too many connections")
            async with open_probe(sim.url, "b") as other:  # the limit is per token
                await ok(other)
            # the two that fit are untouched and still stream
            assert {f["data"]["code"] for f in await one.collect(1.0)} == {"BTCUSDT"}
            await ok(two)
            assert sim.stats.connections_live == 2
        assert sim.stats.closes["connection_limit"] == 1
        assert sim.stats.connections_opened == 4  # the refused one completed its handshake
        assert dict(sim.stats.violations) == {}


async def test_a_closed_connection_frees_its_slot_at_once(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator(config=SimConfig(plan="free")) as sim:
        async with open_probe(sim.url) as first:
            await ok(first)
            async with open_probe(sim.url) as second:  # free: one connection per token
                assert (await refused(second))[0] == TOO_MANY_CONNECTIONS
            await trio.sleep(1.0)
            await first.trades("A.US", "B.US", "C.US", "D.US", "E.US", "F.US")
            assert (await first.answer())["ret"] == 200  # free: five symbols, the rest ignored
            assert sim.connections[0].trade_symbols == ("A.US", "B.US", "C.US", "D.US", "E.US")
        async with open_probe(sim.url) as again:  # the client's close freed the slot
            await ok(again)
        assert sim.stats.closes["connection_limit"] == 1


UPGRADE = (
    b"GET /quote-b-ws-api?token=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def test_a_connection_the_server_is_closing_frees_its_slot(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(max_connections_per_token=1, max_connection_age=5.0, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        # a raw client that never answers the server's close frame
        async with await trio.open_tcp_stream(sim.host, sim.port) as deaf:
            await deaf.send_all(UPGRADE)
            assert (await deaf.receive_some()).startswith(b"HTTP/1.1 101")
            await trio.sleep(6.0)  # close frame "max age" sent at 5.0; the sim waits 5 s more
            (closing,) = sim.connections
            assert closing.closed_reason == "max_age"
            async with open_probe(sim.url, "t") as new:
                await ok(new)
                assert len(sim.connections) == 2
        assert sim.stats.closes["connection_limit"] == 0


async def test_make_before_break_needs_one_spare_slot(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator(config=SimConfig(plan="premium", heartbeat_timeout=None)) as sim:
        async with AsyncExitStack() as stack:  # probes exit in reverse order at the end

            async def connect() -> Probe:
                probe = await stack.enter_async_context(open_probe(sim.url))
                await ok(probe)
                return probe

            shards = [await connect(), await connect()]  # two of premium's three
            for n in range(6):
                new = await connect()  # the spare slot: three live
                async with open_probe(sim.url) as fourth:
                    assert (await refused(fourth))[0] == TOO_MANY_CONNECTIONS
                await shards[n % 2].ws.aclose()  # break only after make
                shards[n % 2] = new
            assert len(sim.connections) == 2
        assert sim.stats.closes["connection_limit"] == 6
        assert sim.stats.closes["client_closed"] == 8


async def test_token_rate_spacing_across_connections(autojump_clock: trio.abc.Clock) -> None:
    config = SimConfig(token_rate_interval=3.0, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        async with open_probe(sim.url, "t") as a, open_probe(sim.url, "t") as b:
            await a.trades("BTCUSDT")
            assert (await a.answer())["ret"] == 200
            await trio.sleep(1.0)
            await b.trades("ETHUSDT")
            answer = await b.answer()
            assert (answer["ret"], answer["cmd_id"]) == (605, 22005)
            assert answer["msg"] == "too many requests"
            conn_a, conn_b = sim.connections
            assert conn_b.trade_symbols == ()  # a rejected request changes nothing
            for probe in (a, b):  # heartbeats neither count nor move the token's clock
                await ok(probe)
            async with open_probe(sim.url, "u") as other:  # another token has its own clock
                await other.trades("EURUSD")
                assert (await other.answer())["ret"] == 200
            await trio.sleep(2.0)  # exactly 3 s after the last *accepted* subscription
            await b.trades("ETHUSDT")
            assert (await b.answer())["ret"] == 200
            await trio.sleep(2.0)
            await a.cancel(0)  # cancels count too
            assert (await a.answer())["ret"] == 605
            await trio.sleep(1.0)
            await a.send(22004, {"symbol_list": []})  # so do invalid subscription requests
            assert (await a.answer())["ret"] == 601
            await trio.sleep(1.0)
            await b.cancel(2)
            assert (await b.answer())["ret"] == 605
            assert conn_a.trade_symbols == ("BTCUSDT",) and conn_b.trade_symbols == ("ETHUSDT",)
        assert sim.stats.violations == {"token_rate": 3, "empty_list": 1}
        assert sim.stats.closes["rate_kick"] == 0


async def test_a_lone_connection_answers_to_its_own_rule_only(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(token_rate_interval=3.0, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim:
        async with open_probe(sim.url) as a:
            await a.trades("BTCUSDT")
            await trio.sleep(1.0)
            await a.depth("BTCUSDT")
            assert [(await a.answer())["ret"] for _ in range(2)] == [200, 200]
            async with open_probe(sim.url) as b:  # two live: the token's clock applies
                await b.trades("ETHUSDT")
                assert (await b.answer())["ret"] == 605
            await trio.sleep(1.0)  # b is gone: one live again
            await a.cancel(0)
            assert (await a.answer())["ret"] == 200
        assert sim.stats.violations == {"token_rate": 1}


async def test_token_rate_violations_kick_like_the_connection_rule(
    autojump_clock: trio.abc.Clock,
) -> None:
    # heartbeats counted (the strict reading), so both rules add to one count
    config = SimConfig(
        token_rate_interval=3.0, heartbeat_timeout=None, heartbeats_count_toward_rate=True
    )
    async with open_simulator(config=config) as sim:
        async with open_probe(sim.url) as a, open_probe(sim.url) as b:
            await a.trades("BTCUSDT")
            assert (await a.answer())["ret"] == 200
            await trio.sleep(1.0)
            await b.trades("ETHUSDT")
            assert (await b.answer())["ret"] == 605  # token rule: 1
            await b.heartbeat()
            assert (await b.answer())["ret"] == 200
            await trio.sleep(0.5)
            await b.heartbeat()
            assert (await b.answer())["ret"] == 605  # connection rule: 2
            await trio.sleep(1.0)
            await b.trades("ETHUSDT")  # 1.5 s after b's last: token rule again, 3
            answer = await b.answer()
            assert (answer["ret"], answer["cmd_id"]) == (606, 22005)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await b.receive()
            assert (info.value.reason.code, info.value.reason.reason) == (1008, "too many requests")
            await ok(a)  # the other connection of the token is untouched
            assert trio.current_time() == 2.5
        assert sim.stats.violations == {"token_rate": 2, "rate": 1}
        assert sim.stats.closes["rate_kick"] == 1


async def test_no_token_rule_by_default(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        async with AsyncExitStack() as stack:
            probes = [await stack.enter_async_context(open_probe(sim.url)) for _ in range(12)]
            for n, probe in enumerate(probes):
                await probe.trades(f"S{n}.US")
            for probe in probes:
                assert (await probe.answer())["ret"] == 200
        assert dict(sim.stats.violations) == {} and sim.stats.closes["connection_limit"] == 0
