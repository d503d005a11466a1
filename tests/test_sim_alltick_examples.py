"""What AllTick's official example clients (Python, Go) rely on, pinned on the simulator.

Each test sends what an example sends, in its order and timing, and checks what the
example needs back; none needs the examples themselves (``docs/venues.md``, AllTick,
"What official example clients rely on", lists them).
"""

from __future__ import annotations

import ast
from typing import Any

import orjson
import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._market import COMMODITIES, top_of_book_only
from tickactors.sim._probe import Probe, open_probe

# the Go example's list, sent with depth_level 5 to both 22002 and 22004
GO_CODES = ("GOLD", "AAPL.US", "700.HK", "USDJPY")


def _request(cmd_id: int, trace: str, codes: tuple[str, ...]) -> str:
    entries = [{"code": c, "depth_level": 5} for c in codes]
    body = {"cmd_id": cmd_id, "seq_id": 123, "trace": trace, "data": {"symbol_list": entries}}
    return orjson.dumps(body).decode()


async def _answers(probe: Probe, n: int) -> list[dict[str, Any]]:
    return [await probe.answer() for _ in range(n)]


async def test_go_example_depth_and_trades_back_to_back(autojump_clock: trio.abc.Clock) -> None:
    # 22002 and 22004 written one after the other, same seq_id and trace: two data APIs,
    # so both are accepted under the default rate_scope="api"
    async with open_simulator(seed=4) as sim, open_probe(sim.url) as probe:
        await probe.send_raw(_request(22002, "go-uuid", GO_CODES))
        await probe.send_raw(_request(22004, "go-uuid", GO_CODES))
        answers = await _answers(probe, 2)
        assert [(a["ret"], a["cmd_id"], a["seq_id"], a["trace"]) for a in answers] == [
            (200, 22003, 123, "go-uuid"),
            (200, 22005, 123, "go-uuid"),
        ]
        await trio.sleep(10.0)  # its heartbeat: every 10 s, data {"symbol_list": null}
        await probe.send_raw(
            '{"cmd_id":22000,"seq_id":123,"trace":"hb","data":{"symbol_list":null}}'
        )
        heartbeat = await probe.answer()
        assert (heartbeat["ret"], heartbeat["cmd_id"], heartbeat["trace"]) == (200, 22001, "hb")
        await probe.collect(3.0)
    trades = {p["data"]["code"] for p in probe.pushes if p["cmd_id"] == 22998}
    books = [p["data"] for p in probe.pushes if p["cmd_id"] == 22999]
    assert trades == {b["code"] for b in books} == set(GO_CODES)
    for book in books:  # GOLD (a commodity) and USDJPY (forex): one level, no volume
        top = book["code"] in ("GOLD", "USDJPY")
        assert len(book["bids"]) == len(book["asks"]) == (1 if top else 5)
        assert all(("volume" in level) != top for level in book["bids"] + book["asks"])
    assert sim.stats.violations["rate"] == 0


async def test_go_example_under_the_strict_reading_gets_605(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(rate_scope="connection")
    async with open_simulator(config=config) as sim, open_probe(sim.url) as probe:
        await probe.send_raw(_request(22002, "t", GO_CODES))
        await probe.send_raw(_request(22004, "t", GO_CODES))
        answers = await _answers(probe, 2)
        assert [(a["ret"], a["cmd_id"]) for a in answers] == [(200, 22003), (605, 22005)]
        assert await probe.codes_for(2.0) == set()  # no trades, as the example then sees
    assert sim.stats.violations["rate"] == 1


async def test_one_api_is_still_one_request_a_second(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator() as sim, open_probe(sim.url) as probe:
        await probe.trades("BTCUSDT")
        await probe.depth("BTCUSDT")
        await probe.trades("ETHUSDT")  # the trade API again, within the second
        answers = await _answers(probe, 3)
        assert [a["ret"] for a in answers] == [200, 200, 605]
        await trio.sleep(1.0)
        await probe.trades("ETHUSDT")
        assert (await probe.answer())["ret"] == 200
    assert sim.stats.violations["rate"] == 1


async def test_python_example_stock_path_and_eval(autojump_clock: trio.abc.Clock) -> None:
    # the stock URL with ?token=, a 22002 sent on open, every frame read with eval()
    async with open_simulator(seed=2) as sim:
        url = sim.url_for("/quote-stock-b-ws-api")
        async with open_probe(url, "testtoken") as probe:
            trace = "3baaa938-f92c-4a74-a228-fd49d5e2f8bc-1678419657806"
            await probe.send_raw(_request(22002, trace, ("700.HK", "UNH.US")))
            await probe.collect(3.0)
    frames = [f for f in probe.raw if isinstance(f, str)]
    parsed = [eval(f, {"__builtins__": {}}) for f in frames]  # as the example does
    assert parsed == [ast.literal_eval(f) for f in frames]
    assert parsed[0] == {
        "ret": 200,
        "msg": "ok",
        "cmd_id": 22003,
        "seq_id": 123,
        "trace": trace,
        "data": {},
    }
    codes = {p["data"]["code"] for p in parsed[1:] if p["cmd_id"] == 22999}
    assert codes == {"700.HK", "UNH.US"}
    assert all(len(p["data"]["bids"]) == 5 for p in parsed[1:])


async def test_commodity_books_have_one_level_without_volume(
    autojump_clock: trio.abc.Clock,
) -> None:
    codes = ("GOLD", "Silver", "USOIL", "AAPL.US")
    assert all(top_of_book_only(c) for c in codes[:3]) and "GOLD" in COMMODITIES
    assert not top_of_book_only("gold") and not top_of_book_only("AAPL.US")  # case-sensitive
    for fx_depth, deep in (("top", 1), ("full", 5)):
        async with open_simulator(config=SimConfig(fx_depth=fx_depth)) as sim:
            async with open_probe(sim.url) as probe:
                await probe.depth(*codes, level=5)
                assert (await probe.answer())["ret"] == 200
                await probe.collect(2.0)
        books = [p["data"] for p in probe.pushes if p["cmd_id"] == 22999]
        assert {b["code"] for b in books} == set(codes)
        for book in books:
            top = book["code"] != "AAPL.US"
            levels = book["bids"] + book["asks"]
            assert len(book["bids"]) == (deep if top else 5)
            assert all("volume" in level for level in levels) == (not top or fx_depth == "full")
