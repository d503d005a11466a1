"""The simulated Tradovate venue's WebSocket over real loopback sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_probe import TradovateProbe, open_tradovate_probe

PLAIN = SimConfig(error_text="plain")


def quotes(frames: list[tuple[float, str | bytes]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, frame in frames:
        if isinstance(frame, str) and frame.startswith("a"):
            for item in orjson.loads(frame[1:]):
                out.extend(item.get("d", {}).get("quotes", []) if item.get("e") == "md" else [])
    return out


async def authorized(sim: Any, probe: TradovateProbe, user: str = "alice") -> str:
    token = str(sim.tradovate.accounts.issue(user).access)
    assert (await probe.authorize(token)) == {"i": 0, "s": 200}
    return token


async def test_open_frame_then_idle_heartbeats_every_2_5_s(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim, open_tradovate_probe(sim.url) as probe:
        assert probe.frames == [(0.0, "o")]
        frames = await probe.collect(8.0)
        assert frames == [(2.5, "h"), (5.0, "h"), (7.5, "h")]
        assert sim.stats.server_heartbeats == 3


async def test_no_server_heartbeat_while_streaming(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim, open_tradovate_probe(sim.url) as probe:
        await authorized(sim, probe)
        assert (await probe.call("md/subscribeQuote", {"symbol": "ESZ6"}))["s"] == 200
        frames = await probe.collect(6.0)
        assert "h" not in [f for _, f in frames]
        assert len(quotes(frames)) > 20
        await probe.call("md/unsubscribeQuote", {"symbol": "ESZ6"})
        last = probe.frames[-1][0]
        frames = await probe.collect(6.0)
        assert [f for _, f in frames if f != "h"] == []  # quotes stop, heartbeats resume
        assert frames[0] == (last + 2.5, "h")


@pytest.mark.parametrize("style", ["raw", "quoted", "object"])
async def test_authorize_token_styles(style: str) -> None:
    async with open_simulator("tradovate") as sim, open_tradovate_probe(sim.url) as probe:
        token = sim.tradovate.accounts.issue("bob").access
        body = {"raw": token, "quoted": f'"{token}"', "object": orjson.dumps({"token": token})}
        text = body[style] if isinstance(body[style], str) else body[style].decode()
        await probe.request("authorize", text, id=0)
        assert await probe.answer(0) == {"i": 0, "s": 200}
        (conn,) = sim.connections
        assert conn.user.name == "bob" and conn.uses_token(token)
        assert token not in repr(conn) and token not in conn.token_masked


async def test_requests_before_authorize_and_bad_tokens_are_denied() -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            assert await probe.call("md/subscribeQuote", {"symbol": "ESZ6"}, id=5) == {
                "i": 5,
                "s": 401,
                "d": "Access is denied",
            }
            assert await probe.authorize("never-issued", id=6) == {
                "i": 6,
                "s": 401,
                "d": "Access is denied",
            }
            await authorized(sim, probe)
            assert (await probe.call("contract/find", "", "name=ESZ6"))["s"] == 200
            (conn,) = sim.connections
            assert conn.violations == {"unauthorized": 1}
        assert sim.stats.violations["unauthorized"] == 1


async def test_expired_token_is_refused_but_open_sockets_survive(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(token_lifetime=100.0, error_text="plain")
    async with open_simulator("tradovate", config=config) as sim:
        async with open_tradovate_probe(sim.url) as early:
            token = await authorized(sim, early)
            for _ in range(40):
                await trio.sleep(2.5)
                await early.heartbeat()
            async with open_tradovate_probe(sim.url) as late:
                assert await late.authorize(token) == {
                    "i": 0,
                    "s": 401,
                    "d": "Expired Access Token",
                }
            assert (await early.call("contract/find", "", "name=ESZ6"))["s"] == 200


async def test_duplicate_ids_and_the_tutorials_double_authorize() -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            token = await authorized(sim, probe)
            assert await probe.authorize(token) == {"i": 0, "s": 200}  # identical repeat: fine
            await probe.call("contract/find", "", "name=ESZ6", id=7)
            assert await probe.call("contract/find", "", "name=NQZ6", id=7) == {
                "i": 7,
                "s": 400,
                "d": "Duplicate request id 7",
            }
            assert sim.connections[0].violations == {"duplicate_id": 1}


async def test_subscribe_by_name_and_by_id_incrementally(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        es = sim.tradovate.contracts.find("ESZ6").id
        nq = sim.tradovate.contracts.find("NQZ6").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            answer = await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            assert answer["d"] == {"subscriptionId": es}
            assert (await probe.call("md/subscribeQuote", {"symbol": nq}))["s"] == 200
            assert {q["contractId"] for q in quotes(await probe.collect(2.0))} == {es, nq}
            (conn,) = sim.connections
            assert conn.quote_symbols == ("ESZ6", "NQZ6") and conn.quote_ids == (es, nq)
            assert (await probe.call("md/unsubscribeQuote", {"symbol": str(es)}))["s"] == 200
            await probe.collect(0.5)
            assert {q["contractId"] for q in quotes(await probe.collect(2.0))} == {nq}
            assert await probe.call("md/unsubscribeQuote", {"symbol": "ESZ6"}, id=50) == {
                "i": 50,
                "s": 400,
                "d": "Not subscribed: ESZ6",
            }
            assert await probe.call("md/subscribeQuote", {"symbol": "ESZ9"}, id=51) == {
                "i": 51,
                "s": 404,
                "d": "Unknown symbol: ESZ9",
            }


@pytest.mark.parametrize("variants", ["mixed", "documented"])
async def test_quote_entries_sometimes_missing(
    autojump_clock: trio.abc.Clock, variants: Any
) -> None:
    config = SimConfig(wire_variants=variants, tick_interval=0.05)
    async with open_simulator("tradovate", config=config, seed=3) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            await probe.call("md/subscribeQuote", {"symbol": "CLF7"})
            got = quotes(await probe.collect(10.0))
    full = {"Bid", "Offer", "Trade", "TotalTradeVolume", "HighPrice", "LowPrice"}
    full |= {"OpeningPrice", "SettlementPrice", "OpenInterest"}  # the documented nine
    assert len(got) > 100
    assert all(set(q) == {"timestamp", "id", "contractId", "entries"} for q in got)
    assert all(q["timestamp"].endswith("Z") and "T" in q["timestamp"] for q in got)
    partial = [q for q in got if set(q["entries"]) != full]
    priced = ("Offer", "Trade")  # entries with both a price and a size
    inner = [q for q in got if any(len(e) < 2 for k, e in q["entries"].items() if k in priced)]
    if variants == "documented":
        assert partial == [] and all(len(q["entries"]["Trade"]) == 2 for q in got)
    else:
        assert 0 < len(partial) < len(got) and inner
    sizes = [
        q["entries"]["TotalTradeVolume"]["size"] for q in got if "TotalTradeVolume" in q["entries"]
    ]
    assert sizes == sorted(sizes)


async def test_dom_histogram_and_chart(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        gc = sim.tradovate.contracts.find("GCG7").id
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            assert (await probe.call("md/subscribeDOM", {"symbol": "GCG7"}))["d"] == {
                "subscriptionId": gc
            }
            dom = (await probe.event("md"))["d"]["doms"][0]
            assert dom["contractId"] == gc and len(dom["bids"]) == len(dom["offers"]) == 10
            assert dom["bids"][0]["price"] < dom["offers"][0]["price"]
            assert sim.connections[0].dom_symbols == ("GCG7",)
            assert (await probe.call("md/unsubscribeDOM", {"symbol": "GCG7"}))["s"] == 200
            assert (await probe.call("md/subscribeHistogram", {"symbol": "GCG7"}))["s"] == 200
            body = {
                "symbol": "GCG7",
                "chartDescription": {"underlyingType": "MinuteBar", "elementSize": 15},
                "timeRange": {"asMuchAsElements": 5},
            }
            answer = await probe.call("md/getChart", body)
            chart_id = answer["d"]["historicalId"]
            charts = (await probe.event("chart"))["d"]["charts"]
            assert charts[1] == {"id": chart_id, "eoh": True}
            bars = charts[0]["bars"]
            assert len(bars) == 5 and {"open", "high", "low", "close", "upVolume"} <= set(bars[0])
            assert all(b["low"] <= min(b["open"], b["close"]) for b in bars)
            assert (await probe.call("md/cancelChart", {"subscriptionId": chart_id}))["s"] == 200
            assert (await probe.call("md/cancelChart", {"subscriptionId": chart_id}))["s"] == 400


async def test_contracts_accounts_and_sync_over_the_socket() -> None:
    async with open_simulator("tradovate", config=PLAIN, seed=9) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe, "carol")
            # the literal "undefined" query/body of the JavaScript examples
            found = await probe.call("contract/find", "undefined", "name=ESZ6")
            assert found["d"]["name"] == "ESZ6"
            assert (await probe.call("contract/item", "", f"id={found['d']['id']}"))["d"] == found[
                "d"
            ]
            assert (await probe.call("Contract/Find", {"name": "NOPE"}))["s"] == 404
            names = [c["name"] for c in (await probe.call("contract/suggest", "", "t=NQ&l=2"))["d"]]
            assert names == ["NQH7", "NQM7"]
            accounts = (await probe.call("account/list", "undefined", "undefined"))["d"]
            sync = (await probe.call("user/syncrequest", {"accounts": []}))["d"]
            assert sync["accounts"] == accounts and sync["users"][0]["name"] == "carol"
            refused = await probe.call("order/placeorder", {})
            assert refused["s"] == 200 and refused["d"]["failureReason"] == "InvalidContract"
            assert (await probe.call("nope/nothing", {}))["s"] == 404
            assert (await probe.call("replay/initializeClock", {}))["s"] == 404
            await probe.send_raw("garbage-without-lines")
            bad = await _next_item(probe)
            assert bad == {
                "s": 400,
                "d": "Bad request: expected the lines endpoint, id, query, body",
            }
            assert sim.stats.violations["bad_request"] == 1


async def _next_item(probe: TradovateProbe) -> dict[str, Any]:
    seen = len(probe.items)
    while len(probe.items) == seen:
        await probe.receive()
    return probe.items[seen]


async def test_silent_client_is_dropped_without_close_frame(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            for _ in range(10):  # [] every 2.5 s keeps it alive
                await trio.sleep(2.5)
                await probe.heartbeat()
            await trio.sleep(44.9)
            assert sim.stats.connections_live == 1
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await probe.receive()
            assert trio.current_time() == pytest.approx(25.0 + 45.0)
            assert info.value.reason.code == 1006  # no close frame
        assert sim.stats.heartbeats == 10
        assert sim.stats.closes["heartbeat_timeout"] == 1
        assert sim.stats.violations["heartbeat_timeout"] == 1


async def test_quota_closes_the_oldest_and_revokes_its_token(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(max_connections_per_user=2, error_text="plain")
    async with open_simulator("tradovate", config=config) as sim:
        first = sim.tradovate.accounts.issue("dave").access
        second = sim.tradovate.accounts.issue("dave").access
        async with (
            open_tradovate_probe(sim.url) as a,
            open_tradovate_probe(sim.url) as b,
            open_tradovate_probe(sim.url) as c,
        ):
            await a.authorize(first)
            await trio.sleep(1.0)
            await b.authorize(second)
            await trio.sleep(1.0)
            await c.authorize(second)
            shutdown = await a.event("shutdown")
            assert shutdown["d"]["reasonCode"] == "ConnectionQuotaReached"
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await a.receive()
            assert a.frames[-1][1] == 'c[3000,"Connection quota reached"]'
            assert info.value.reason.code == 3000
            assert sim.tradovate.accounts.check(first) == "Access is denied"
            assert (await b.call("contract/find", "", "name=ESZ6"))["s"] == 200
        assert sim.stats.closes["connection_quota"] == 1


async def test_unknown_path_is_404_and_replay_path_is_served() -> None:
    async with open_simulator("tradovate") as sim:
        stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
        async with stream:
            await stream.send_all(
                b"GET /v2/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 404")
        async with open_tradovate_probe(sim.replay_url) as probe:
            await authorized(sim, probe)
            assert sim.connections[0].is_replay
