"""The simulated AllTick venue over real loopback sockets: handshake, requests, rules, pushes."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._probe import open_probe

QUIET = SimConfig(enforce_rate=False, heartbeat_timeout=None)


async def test_url_port_and_paths() -> None:
    async with open_simulator() as sim:
        assert sim.port > 0
        assert sim.url == f"ws://127.0.0.1:{sim.port}/quote-b-ws-api"
        assert sim.url_for("/quote-stock-b-ws-api").endswith(f":{sim.port}/quote-stock-b-ws-api")
        async with open_probe(sim.url_for("/quote-stock-b-ws-api")) as probe:
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200
        # unknown path: HTTP 404 (raw request: trio-websocket leaks its socket on a rejection)
        assert (await _raw_upgrade(sim.port, "/nope?token=t")).startswith(b"HTTP/1.1 404")
        assert (await _raw_upgrade(sim.port, "/quote-b-ws-api?token=t")).startswith(b"HTTP/1.1 101")


async def _raw_upgrade(port: int, target: str) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return await stream.receive_some(4096)


async def test_refuses_non_loopback_and_unknown_venue() -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with open_simulator(host="0.0.0.0"):
            pass
    with pytest.raises(ValueError, match="venue"):
        async with open_simulator("binance"):
            pass


async def test_body_exception_comes_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_simulator():
            raise KeyError("x")


async def test_heartbeat_answered_with_echo(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.send(22000, {}, seq_id=7, trace="abc")
        assert await probe.answer() == {
            "ret": 200,
            "msg": "ok",
            "cmd_id": 22001,
            "seq_id": 7,
            "trace": "abc",
            "data": {},
        }
        await trio.sleep(1.0)
        await probe.send_raw('{"cmd_id":22000,"seq_id":8,"trace":"","data":{"symbol_list":null}}')
        assert (await probe.answer())["ret"] == 200
        assert sim.stats.heartbeats == 2
        assert sim.connections[0].last_heartbeat_at == 1.0


@pytest.mark.parametrize("token", [None, "", "wrong"])
async def test_bad_token_gets_401_then_1008(token: str | None) -> None:
    async with open_simulator(config=SimConfig(tokens={"good"})) as sim:
        async with open_probe(sim.url, token) as probe:
            frame = await probe.next_frame()
            assert frame == {
                "ret": 401,
                "msg": "token invalid",
                "cmd_id": 0,
                "seq_id": 0,
                "trace": "",
                "data": {},
            }
            with pytest.raises(ConnectionClosed) as info:
                await probe.receive()
            assert info.value.reason.code == 1008
        async with open_probe(sim.url, "good") as probe:
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200
        assert sim.stats.closes["token_rejected"] == 1


async def test_token_is_masked_in_connection_state() -> None:
    async with open_simulator() as sim, open_probe(sim.url, "s3cr3t-token") as probe:
        await probe.heartbeat()
        await probe.answer()
        (conn,) = sim.connections
        assert "s3cr3t" not in conn.token_masked
        assert "s3cr3t" not in repr(conn)
        assert conn.uses_token("s3cr3t-token")


async def test_replace_semantics(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("CCC.US")
        assert (await probe.answer())["cmd_id"] == 22005
        assert await probe.codes_for(1.0) == {"CCC.US"}
        await probe.trades("AAA.US", "BBB.US")
        assert (await probe.answer())["ret"] == 200
        assert await probe.codes_for(2.0) == {"AAA.US", "BBB.US"}
        assert sim.connections[0].trade_symbols == ("AAA.US", "BBB.US")


async def test_cancel_types(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT")
        await trio.sleep(1.0)
        await probe.depth("700.HK", level=3)
        await probe.collect(1.0)
        frames = await probe.collect(1.0)
        assert {f["cmd_id"] for f in frames} == {22998, 22999}
        depth = [f for f in frames if f["cmd_id"] == 22999]
        assert all(len(f["data"]["bids"]) == len(f["data"]["asks"]) == 3 for f in depth)
        await probe.cancel(1)
        assert (await probe.answer())["cmd_id"] == 22007
        assert {f["cmd_id"] for f in await probe.collect(1.0)} == {22998}
        await probe.cancel(2)
        assert (await probe.answer())["ret"] == 200
        assert await probe.collect(2.0) == []
        await probe.trades("BTCUSDT")
        await probe.answer()
        await trio.sleep(1.0)
        await probe.depth("700.HK")
        await probe.answer()
        await trio.sleep(1.0)
        await probe.cancel(0)
        assert (await probe.answer())["cmd_id"] == 22007
        assert await probe.collect(2.0) == []
        conn = sim.connections[0]
        assert conn.trade_symbols == conn.depth_symbols == ()


VALIDATION_CASES: list[tuple[str, str | bytes, int, int, str | None]] = [
    # (name, raw request, ret, answer cmd_id, violation kind)
    (
        "empty list",
        '{"cmd_id":22004,"seq_id":1,"trace":"","data":{"symbol_list":[]}}',
        601,
        22005,
        "empty_list",
    ),
    ("missing list", '{"cmd_id":22002,"seq_id":1,"trace":"","data":{}}', 601, 22003, "empty_list"),
    ("not json", "subscribe BTCUSDT", 400, 0, "bad_request"),
    ("binary", b'{"cmd_id":22000}', 400, 0, "bad_request"),
    ("no seq_id", '{"cmd_id":22000,"trace":"","data":{}}', 400, 22001, "bad_request"),
    ("bool cmd_id", '{"cmd_id":true,"seq_id":1,"trace":"","data":{}}', 400, 0, "bad_request"),
    ("unknown cmd", '{"cmd_id":22010,"seq_id":1,"trace":"","data":{}}', 400, 0, "bad_request"),
    (
        "long trace",
        '{"cmd_id":22000,"seq_id":1,"trace":"%s","data":{}}' % ("x" * 65),
        400,
        22001,
        "bad_request",
    ),
    (
        "data not object",
        '{"cmd_id":22004,"seq_id":1,"trace":"","data":[1]}',
        400,
        22005,
        "bad_request",
    ),
    (
        "duplicate",
        '{"cmd_id":22004,"seq_id":1,"trace":"","data":{"symbol_list":'
        '[{"code":"A.US"},{"code":"A.US"}]}}',
        400,
        22005,
        "duplicate_code",
    ),
    (
        "bad code",
        '{"cmd_id":22004,"seq_id":1,"trace":"","data":{"symbol_list":[{"code":"NASDAQ:AAPL"}]}}',
        600,
        22005,
        None,
    ),
    (
        "listed invalid",
        '{"cmd_id":22004,"seq_id":1,"trace":"","data":{"symbol_list":[{"code":"DEAD.US"}]}}',
        600,
        22005,
        None,
    ),
    (
        "unauthorized",
        '{"cmd_id":22002,"seq_id":1,"trace":"","data":{"symbol_list":'
        '[{"code":"SECRET.US","depth_level":5}]}}',
        604,
        22003,
        None,
    ),
    (
        "too many",
        '{"cmd_id":22004,"seq_id":1,"trace":"","data":{"symbol_list":'
        '[{"code":"A.US"},{"code":"B.US"},{"code":"C.US"}]}}',
        603,
        22005,
        None,
    ),
    (
        "depth level",
        '{"cmd_id":22002,"seq_id":1,"trace":"","data":{"symbol_list":'
        '[{"code":"A.US","depth_level":0}]}}',
        400,
        22003,
        "bad_request",
    ),
    (
        "cancel type",
        '{"cmd_id":22006,"seq_id":1,"trace":"","data":{"cancel_type":3}}',
        400,
        22007,
        "bad_request",
    ),
]


@pytest.mark.parametrize(
    ("raw", "ret", "cmd_id", "violation"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
async def test_validation(
    raw: str | bytes, ret: int, cmd_id: int, violation: str | None, autojump_clock: trio.abc.Clock
) -> None:
    config = SimConfig(
        max_symbols=2,
        over_cap="reject",  # "too many" is about the 603
        invalid_codes={"DEAD.US"},
        unauthorized_codes={"SECRET.US"},
    )
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.trades("KEEP.US")
        await probe.answer()
        await trio.sleep(1.0)
        await probe.send_raw(raw)
        answer = await probe.answer()
        assert (answer["ret"], answer["cmd_id"]) == (ret, cmd_id)
        assert dict(sim.stats.violations) == ({violation: 1} if violation else {})
        # a rejected request changes nothing
        assert sim.connections[0].trade_symbols == ("KEEP.US",)
        assert sim.connections[0].depth_symbols == ()
        assert await probe.codes_for(1.0) == {"KEEP.US"}


async def test_depth_level_accepted_on_trade_entries() -> None:
    async with open_simulator(config=QUIET) as sim, open_probe(sim.url) as probe:
        await probe.send(22004, {"symbol_list": [{"code": "BTCUSDT", "depth_level": 5}]})
        assert (await probe.answer())["ret"] == 200


async def test_over_cap_ignored_by_default_streams_first_symbols(
    autojump_clock: trio.abc.Clock,
) -> None:
    assert SimConfig().over_cap == "ignore"  # the documented reading
    async with open_simulator(config=SimConfig(max_symbols=2)) as sim, open_probe(sim.url) as probe:
        await probe.trades("A.US", "B.US", "C.US")
        assert (await probe.answer())["ret"] == 200
        assert await probe.codes_for(2.0) == {"A.US", "B.US"}
        assert sim.connections[0].trade_symbols == ("A.US", "B.US")
        assert not sim.stats.violations


async def test_over_cap_reject_answers_603(autojump_clock: trio.abc.Clock) -> None:
    config = SimConfig(max_symbols=2, over_cap="reject")
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.trades("A.US", "B.US", "C.US")
        answer = await probe.answer()
        assert (answer["ret"], answer["cmd_id"]) == (603, 22005)
        assert await probe.codes_for(2.0) == set()
        assert sim.connections[0].trade_symbols == ()


async def _books(config: SimConfig, level: int | None, *codes: str) -> dict[str, list[Any]]:
    """code -> the ``(bids, asks)`` of its 22999 pushes, two seconds after subscribing."""
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.depth(*codes, level=level)
        assert (await probe.answer())["ret"] == 200
        books: dict[str, list[Any]] = defaultdict(list)
        for frame in await probe.collect(2.0):
            if frame.get("cmd_id") == 22999:
                books[frame["data"]["code"]].append((frame["data"]["bids"], frame["data"]["asks"]))
    assert set(books) == set(codes)
    return books


def _shapes(books: list[Any]) -> set[tuple[int, int, bool]]:
    """{(bid levels, ask levels, every level has a volume)} over ``books``."""
    return {
        (len(bids), len(asks), all("volume" in level for level in bids + asks))
        for bids, asks in books
    }


async def test_depth_without_depth_level_is_one_level(autojump_clock: trio.abc.Clock) -> None:
    books = await _books(SimConfig(), None, "700.HK", "BTCUSDT")
    assert _shapes(books["700.HK"]) == _shapes(books["BTCUSDT"]) == {(1, 1, True)}
    old = await _books(SimConfig(default_depth=5), None, "700.HK")  # the sim's old pick
    assert _shapes(old["700.HK"]) == {(5, 5, True)}


async def test_depth_level_100_is_as_many_as_there_are(autojump_clock: trio.abc.Clock) -> None:
    books = await _books(SimConfig(), 100, "700.HK")
    assert _shapes(books["700.HK"]) == {(50, 50, True)}  # the simulated market's 50


async def test_forex_and_metals_books_have_one_level_without_volume(
    autojump_clock: trio.abc.Clock,
) -> None:
    codes = ("EURUSD", "USDJPY", "XAUUSD", "XAGUSD", "700.HK")
    books = await _books(SimConfig(), 5, *codes)
    for code in codes[:4]:
        assert _shapes(books[code]) == {(1, 1, False)}, code
        assert all(set(level) == {"price"} for bids, asks in books[code] for level in bids + asks)
    assert _shapes(books["700.HK"]) == {(5, 5, True)}
    full = await _books(SimConfig(fx_depth="full"), 5, "EURUSD", "XAUUSD")
    assert _shapes(full["EURUSD"]) == _shapes(full["XAUUSD"]) == {(5, 5, True)}


async def test_rate_rule_605_then_606_and_close(autojump_clock: trio.abc.Clock) -> None:
    # the strict reading: heartbeats count, any two requests of the connection are spaced
    config = SimConfig(heartbeats_count_toward_rate=True, rate_scope="connection")
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.heartbeat()
        assert (await probe.answer())["ret"] == 200
        await trio.sleep(1.0)  # exactly one second later is allowed
        await probe.heartbeat()
        assert (await probe.answer())["ret"] == 200
        await trio.sleep(0.5)
        await probe.trades("BTCUSDT")
        answer = await probe.answer()
        assert (answer["ret"], answer["msg"], answer["cmd_id"]) == (605, "too many requests", 22005)
        assert sim.connections[0].trade_symbols == ()
        await trio.sleep(0.6)  # 1.1 s after the last *accepted* request: fine again
        await probe.trades("BTCUSDT")
        assert (await probe.answer())["ret"] == 200
        await probe.heartbeat()
        assert (await probe.answer())["ret"] == 605
        await probe.heartbeat()
        answer = await probe.answer()
        assert (answer["ret"], answer["cmd_id"]) == (606, 22001)
        assert answer["msg"] == "too many requests, connection will be closed"
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await probe.receive()
        assert info.value.reason.code == 1008
    assert sim.stats.violations["rate"] == 3
    assert sim.stats.closes["rate_kick"] == 1


async def test_heartbeats_do_not_count_toward_the_rate_rule_by_default(
    autojump_clock: trio.abc.Clock,
) -> None:
    # the official examples: connect, heartbeat, subscribe within the same second
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.heartbeat()
        assert (await probe.answer())["ret"] == 200
        await probe.trades("BTCUSDT")
        assert (await probe.answer())["ret"] == 200
        for _ in range(5):  # heartbeats are never refused, nor move the request clock
            await probe.heartbeat()
            assert (await probe.answer())["ret"] == 200
        await trio.sleep(0.5)
        await probe.trades("BTCUSDT")  # 0.5 s after the subscription: still the data rule
        assert (await probe.answer())["ret"] == 605
        await trio.sleep(0.5)
        await probe.depth("700.HK")
        assert (await probe.answer())["ret"] == 200
        assert await probe.codes_for(1.0) == {"BTCUSDT"}
        conn = sim.connections[0]
        assert (conn.trade_symbols, conn.depth_symbols, conn.rate_violations) == (
            ("BTCUSDT",),
            ("700.HK",),
            1,
        )
    assert sim.stats.violations["rate"] == 1
    assert sim.stats.heartbeats == 6


async def test_heartbeats_count_toward_the_rate_rule_when_asked(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(heartbeats_count_toward_rate=True, rate_scope="connection")
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.heartbeat()
        assert (await probe.answer())["ret"] == 200
        await probe.trades("BTCUSDT")  # what the official examples get: 605, never data
        answer = await probe.answer()
        assert (answer["ret"], answer["cmd_id"]) == (605, 22005)
        assert await probe.codes_for(2.0) == set()
        assert sim.connections[0].trade_symbols == ()


@pytest.mark.parametrize(
    "data",
    ["[]", "{}", "null", '{"symbol_list":null}', None],
    ids=["php-empty-array", "object", "null", "go-symbol-list-null", "missing"],
)
async def test_heartbeat_data_variants_of_the_official_examples(
    data: str | None, autojump_clock: trio.abc.Clock
) -> None:
    body = "" if data is None else f',"data":{data}'
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.send_raw('{"cmd_id":22000,"seq_id":3,"trace":"t"' + body + "}")
        answer = await probe.answer()
        assert (answer["ret"], answer["cmd_id"], answer["seq_id"]) == (200, 22001, 3)
        assert sim.stats.heartbeats == 1 and not sim.stats.violations
        await probe.send_raw('{"cmd_id":22000,"seq_id":4,"trace":"t","data":[1]}')
        assert (await probe.answer())["ret"] == 400  # a list with something in it is not {}


async def test_heartbeat_enforced_at_exactly_30s(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim:
        async with open_probe(sim.url) as probe:
            await probe.trades("BTCUSDT")
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await probe.receive()
            assert trio.current_time() == 30.0
            assert info.value.reason.code == 1006  # no close frame
        assert sim.stats.closes["heartbeat_timeout"] == 1
        async with open_probe(sim.url) as probe:
            for _ in range(7):
                await probe.heartbeat()
                assert (await probe.answer())["ret"] == 200
                await trio.sleep(10.0)
            assert trio.current_time() == 100.0
            assert sim.stats.connections_live == 1


async def test_max_connection_age(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator(config=SimConfig(max_connection_age=5.0)) as sim:
        async with open_probe(sim.url) as probe:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await probe.receive()
            assert trio.current_time() == 5.0
            assert (info.value.reason.code, info.value.reason.reason) == (1000, "max age")
        assert sim.stats.closes["max_age"] == 1


def _price_ok(text: str) -> bool:
    return re.fullmatch(r"\d+\.\d+", text) is not None and Decimal(text) > 0


async def test_session_frames_are_eval_safe_and_well_formed(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(wire="varied")
    async with open_simulator(config=config, seed=3) as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT", "EURUSD", "USDJPY", "700.HK")
        await trio.sleep(1.0)
        await probe.depth("700.HK", "EURUSD", level=5)
        await trio.sleep(1.0)
        await probe.heartbeat()
        await probe.send_raw("not json")  # 605, an error frame too
        await probe.collect(10.0)
        await probe.send(22004, {"symbol_list": []})
        await probe.collect(1.0)
    frames: list[str] = [f for f in probe.raw if isinstance(f, str)]
    assert len(frames) == len(probe.raw) > 300
    last_seq: dict[str, int] = defaultdict(int)
    kinds: set[tuple[type, type, int]] = set()
    for text in frames:
        for word in ("true", "false", "null"):
            assert word not in text
        parsed: dict[str, Any] = ast.literal_eval(text)
        assert eval(text, {"__builtins__": {}}) == parsed  # as AllTick's Python example does
        if parsed["cmd_id"] not in (22998, 22999):
            continue
        data = parsed["data"]
        seq = int(data["seq"])
        assert seq > last_seq[data["code"]]
        last_seq[data["code"]] = seq
        tick_time = int(data["tick_time"])
        kinds.add((type(data["seq"]), type(data["tick_time"]), len(str(tick_time))))
        if parsed["cmd_id"] == 22998:
            assert _price_ok(data["price"]) and Decimal(data["volume"]) > 0
            if data["code"] in ("EURUSD", "USDJPY"):
                assert data["trade_direction"] == 0 and "turnover" not in data
            else:
                assert data["trade_direction"] in (0, 1, 2) and Decimal(data["turnover"]) > 0
        else:
            fx = data["code"] == "EURUSD"  # forex: one level, no volume
            assert len(data["bids"]) == len(data["asks"]) == (1 if fx else 5)
            assert all(("volume" in level) != fx for level in data["bids"] + data["asks"])
            bids = [Decimal(level["price"]) for level in data["bids"]]
            asks = [Decimal(level["price"]) for level in data["asks"]]
            assert all(_price_ok(level["price"]) for level in data["bids"] + data["asks"])
            assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
            assert bids[0] < asks[0]
    # mixed variants: int and str seq and tick_time, seconds (10 digits) and ms (13 digits)
    assert {k[0] for k in kinds} == {int, str}
    assert {k[1] for k in kinds} == {int, str}
    assert {k[2] for k in kinds} == {10, 13}
    assert set(last_seq) == {"BTCUSDT", "EURUSD", "USDJPY", "700.HK"}


async def test_documented_variant_and_shared_market(autojump_clock: trio.abc.Clock) -> None:
    assert SimConfig().wire == "strict"  # the documented shape is the default
    config = SimConfig(epoch=1_700_000_000.0)
    async with open_simulator(config=config) as sim:
        async with open_probe(sim.url) as one, open_probe(sim.url) as two:
            await one.trades("BTCUSDT")
            await two.trades("BTCUSDT")
            await one.answer()
            await two.answer()
            a = [f["data"] for f in await one.collect(3.0)]
            b = [f["data"] for f in await two.collect(0.001)]
    assert len(a) > 10 and a == b[: len(a)]
    assert all(type(d["seq"]) is int and type(d["tick_time"]) is int for d in a)
    assert a[0]["seq"] == 1_700_000_000_000_001
    assert all(1_700_000_000 <= d["tick_time"] <= 1_700_000_004 for d in a)


async def test_wire_varies_the_shape_only(autojump_clock: trio.abc.Clock) -> None:
    async def pushes(wire: str) -> list[tuple[int, str, int, int, str]]:
        config = SimConfig(wire=wire, epoch=1_700_000_000.0)  # type: ignore[arg-type]
        async with open_simulator(config=config, seed=2) as sim, open_probe(sim.url) as probe:
            await probe.trades("BTCUSDT", "700.HK")
            await probe.answer()
            await trio.sleep(1.0)
            await probe.depth("700.HK")
            await probe.answer()
            frames = await probe.collect(5.0)
        out = []
        for f in frames:
            data = f["data"]
            stamp = int(data["tick_time"])
            seconds = stamp // 1000 if stamp > 10**11 else stamp
            out.append(
                (f["cmd_id"], data["code"], int(data["seq"]), seconds, str(data.get("price")))
            )
        first_seq, first_time = out[0][2], out[0][3]
        return [(c, code, q - first_seq, t - first_time, p) for c, code, q, t, p in out]

    strict, varied = await pushes("strict"), await pushes("varied")
    assert strict == varied and len(strict) > 50  # same trades, times and seqs; shapes aside


async def test_same_seed_same_prices(autojump_clock: trio.abc.Clock) -> None:
    async def prices(seed: int) -> list[str]:
        async with open_simulator(seed=seed) as sim, open_probe(sim.url) as probe:
            await probe.trades("ETHUSDT")
            await probe.answer()
            return [f["data"]["price"] for f in await probe.collect(2.0)]

    first = await prices(5)
    assert first == await prices(5)
    assert first != await prices(6)


async def test_exit_with_live_clients_is_clean(autojump_clock: trio.abc.Clock) -> None:
    seen: list[str] = []
    sim_done = trio.Event()

    async def client(url: str) -> None:
        async with open_probe(url) as probe:
            await probe.trades("BTCUSDT")
            with pytest.raises(ConnectionClosed):
                while True:
                    await probe.receive()
            seen.append("closed")
            await sim_done.wait()

    async with trio.open_nursery() as nursery:
        async with open_simulator() as sim:
            nursery.start_soon(client, sim.url)
            await trio.sleep(3.0)
            assert sim.stats.connections_live == 1
        sim_done.set()
    assert seen == ["closed"]


async def test_firehose_streams_as_fast_as_read() -> None:
    config = SimConfig(firehose=True, heartbeat_timeout=None)
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT", "EURUSD", "700.HK")
        await probe.answer()
        last: dict[str, int] = defaultdict(int)
        for _ in range(3000):
            data = (await probe.next_frame())["data"]
            assert int(data["seq"]) > last[data["code"]]
            last[data["code"]] = int(data["seq"])
        assert set(last) == {"BTCUSDT", "EURUSD", "700.HK"}
        sim.faults.stall(None)
        sim.faults.resume()
    assert sum(sim.stats.ticks_sent_by_symbol.values()) >= 3000
