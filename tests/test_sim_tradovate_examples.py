"""What Tradovate's official example clients rely on, pinned on the simulator.

The JavaScript tutorial (``tradovate/example-api-js``, browser apps) and the trading
robot (``tradovate/example-api-trading-strategy``, Node.js) were run against the
simulator; each test here replays what one of them sends and checks what it needs back,
without them (``docs/venues.md``, "What official example clients rely on").
"""

from __future__ import annotations

from typing import Any

import orjson
import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_probe import TradovateProbe, open_tradovate_probe, rest_response

CONFIG = SimConfig(error_text="plain", tick_interval=0.05)
NINE = {"Bid", "Offer", "Trade", "TotalTradeVolume", "HighPrice", "LowPrice", "OpenInterest"}
NINE |= {"OpeningPrice", "SettlementPrice"}


async def authorized(sim: Any, probe: TradovateProbe, user: str = "alice") -> None:
    token = str(sim.tradovate.accounts.issue(user).access)
    assert (await probe.authorize(token)) == {"i": 0, "s": 200}  # no "d": as documented


async def test_cors_preflight_and_allow_origin(autojump_clock: trio.abc.Clock) -> None:
    # the tutorial runs in a browser page of another origin: fetch() with JSON and a bearer
    # token makes the browser ask OPTIONS first, and read the answer only if allowed
    async with open_simulator("tradovate", config=CONFIG) as sim:
        asked = [
            ("Origin", "http://127.0.0.1:8090"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "accept,content-type"),
        ]
        path = "/v1/auth/accesstokenrequest"
        status, headers, body = await rest_response(sim.port, "OPTIONS", path, headers=asked)
        assert (status, body) == (204, None)
        assert headers["access-control-allow-origin"] == "*"
        assert "POST" in headers["access-control-allow-methods"]
        assert headers["access-control-allow-headers"] == "accept,content-type"
        creds = {"name": "alice", "password": "pw", "appId": "Sample App", "cid": 0}
        origin = [("Origin", "http://127.0.0.1:8090")]
        status, headers, body = await rest_response(sim.port, "POST", path, creds, headers=origin)
        assert status == 200 and headers["access-control-allow-origin"] == "*"
        token = body["accessToken"]
        bearer = [("Access-Control-Request-Headers", "authorization")]
        preflight = await rest_response(sim.port, "OPTIONS", "/v1/account/list", headers=bearer)
        assert preflight[1]["access-control-allow-headers"] == "authorization"
        status, headers, _ = await rest_response(sim.port, "GET", "/v1/account/list", token=token)
        assert status == 200 and headers["access-control-allow-origin"] == "*"
        missing = await rest_response(sim.port, "GET", "/v1/nothing", token=token)
        assert missing[0] == 404 and missing[1]["access-control-allow-origin"] == "*"
    assert sim.stats.rest_calls["OPTIONS /v1/auth/accesstokenrequest"] == 1


async def test_the_tutorial_products_exist(autojump_clock: trio.abc.Clock) -> None:
    # EX-07 asks product/find name=ETH; the apps' inputs suggest BTC, ETH and MYM contracts
    async with open_simulator("tradovate", config=CONFIG, seed=1) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            eth = await probe.call("product/find", query="name=ETH")
            assert eth["s"] == 200 and eth["d"]["name"] == "ETH"
            assert eth["d"]["valuePerPoint"] == 50.0
            found = await probe.call("contract/suggest", query="t=ETH&l=10")
            assert [c["name"] for c in found["d"]] == ["ETHF7", "ETHG7", "ETHZ6"]
            for name in ("BTCZ6", "MYMZ6"):
                assert (await probe.call("contract/find", query=f"name={name}"))["s"] == 200
    # the tutorial's products came after the others: the older contracts kept their ids
    again = [c.id for c in sim.tradovate.contracts if c.product_name in ("ES", "NQ", "CL")]
    async with open_simulator("tradovate", config=CONFIG, seed=1) as other:
        assert [
            c.id for c in other.tradovate.contracts if c.product_name in ("ES", "NQ", "CL")
        ] == again
        assert len({c.id for c in other.tradovate.contracts}) == len(other.tradovate.contracts)


async def test_answers_without_payload_carry_an_empty_d(autojump_clock: trio.abc.Clock) -> None:
    # the tutorial's listeners read item.d.quotes (doms, charts, histograms) of every item
    async with open_simulator("tradovate", config=CONFIG) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            for kind in ("Quote", "DOM", "Histogram"):
                assert (await probe.call(f"md/subscribe{kind}", {"symbol": "ESZ6"}))["s"] == 200
                gone = await probe.call(f"md/unsubscribe{kind}", {"symbol": "ESZ6"})
                assert (gone["s"], gone["d"]) == (200, {})
            chart = await probe.call("md/getChart", {"symbol": "ESZ6", "chartDescription": {}})
            cancel = await probe.call(
                "md/cancelChart", {"subscriptionId": chart["d"]["realtimeId"]}
            )
            assert (cancel["s"], cancel["d"]) == (200, {})
            items = [item for item in probe.items if "e" not in item]
            assert all("d" in item for item in items if item["i"] != 0)


async def test_chart_history_comes_after_the_answer(autojump_clock: trio.abc.Clock) -> None:
    # the tutorial installs its chart listener after the answer and a REST round trip
    body = {
        "symbol": "NQZ6",
        "chartDescription": {"underlyingType": "MinuteBar", "elementSize": 1},
        "timeRange": {"asMuchAsElements": 20},
    }
    for delay in (0.25, 0.0):
        config = SimConfig(error_text="plain", tradovate_history_delay=delay)
        async with open_simulator("tradovate", config=config) as sim:
            async with open_tradovate_probe(sim.url) as probe:
                await authorized(sim, probe)
                answer = await probe.call("md/getChart", body)
                asked = trio.current_time()
                chart = answer["d"]["realtimeId"]
                await probe.collect(1.0)
                times = [t for t, raw in probe.frames if isinstance(raw, str) and '"chart"' in raw]
                assert times[0] == asked + delay  # the history, then live bars
                first = next(i for i in probe.items if i.get("e") == "chart")
                assert len(first["d"]["charts"][0]["bars"]) == 20
                # cancelled before its history is out: nothing ever comes
                late = await probe.call("md/getChart", body)
                cancel = {"subscriptionId": late["d"]["realtimeId"]}
                assert (await probe.call("md/cancelChart", cancel))["s"] == 200
                seen = len(probe.items)
                await probe.collect(1.0)
                ids = {
                    c["id"]
                    for i in probe.items[seen:]
                    if i.get("e") == "chart"
                    for c in i["d"]["charts"]
                }
                assert ids <= {chart}


async def test_quotes_carry_the_nine_documented_entries(autojump_clock: trio.abc.Clock) -> None:
    # the tutorial renders Bid, HighPrice, LowPrice, Offer, OpenInterest, OpeningPrice,
    # SettlementPrice, TotalTradeVolume and Trade of every quote; the robot's P&L reads Trade
    async with open_simulator("tradovate", config=CONFIG, seed=4) as sim:
        async with open_tradovate_probe(sim.url) as probe:
            await authorized(sim, probe)
            await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            await probe.collect(2.0)
    quotes = [q for i in probe.items if i.get("e") == "md" for q in i["d"]["quotes"]]
    assert len(quotes) > 20 and all(set(q["entries"]) == NINE for q in quotes)
    for q in quotes:
        e = {k: v.get("price") for k, v in q["entries"].items()}
        assert e["LowPrice"] <= e["Trade"] <= e["HighPrice"]
        assert e["LowPrice"] <= e["OpeningPrice"] <= e["HighPrice"]
        assert set(q["entries"]["OpenInterest"]) == {"size"}
    highs = [q["entries"]["HighPrice"]["price"] for q in quotes]
    assert (
        highs == sorted(highs)
        and quotes[0]["entries"]["OpeningPrice"] == quotes[-1]["entries"]["OpeningPrice"]
    )


async def test_the_robot_replay_session(autojump_clock: trio.abc.Clock) -> None:
    # the trading robot's back-test: replay socket, authorize on "o" with the token raw,
    # checkReplaySession, initializeClock at speed 400, account/list (the active one),
    # user/syncrequest, md subscriptions and a Tick chart on that socket, clock events until
    # its period's stop, then a new socket for the next period, and fillPair/list at the end
    start, stop = "2021-07-28T22:30:00.000Z", "2021-07-28T22:31:00.000Z"
    async with open_simulator("tradovate", config=CONFIG, seed=2) as sim:
        for period in range(2):
            async with open_tradovate_probe(sim.replay_url) as probe:
                await authorized(sim, probe, "robot")
                check = await probe.call("replay/checkReplaySession", {"startTimestamp": start})
                assert check["d"]["checkStatus"] == "OK"
                clock = {"startTimestamp": start, "speed": 400, "initialBalance": 50000}
                assert (await probe.call("replay/initializeClock", clock))["s"] == 200
                accounts = (await probe.call("account/list", "undefined", "undefined"))["d"]
                account = next(a for a in accounts if a["active"])
                sync = await probe.call("user/syncrequest", {"accounts": [account["id"]]})
                assert sync["d"]["users"] and "products" in sync["d"]
                for endpoint in ("md/subscribeDOM", "md/subscribeQuote"):
                    assert (await probe.call(endpoint, {"symbol": "ESZ6"}))["s"] == 200
                chart = {
                    "symbol": "ESZ6",
                    "chartDescription": {"underlyingType": "Tick", "elementSize": 1},
                    "timeRange": {"asMuchAsElements": 20},
                }
                assert (await probe.call("md/getChart", chart))["s"] == 200
                await probe.collect(17.0)  # past 60 replay seconds at 400 %
                ticks = [e for e in probe.items if e.get("e") == "clock"]
                last = orjson.loads(ticks[-1]["d"])  # d is a JSON string
                assert last["t"] > stop and last["s"] == 400
                charts = [e for e in probe.items if e.get("e") == "chart"]
                assert any("tks" in c for e in charts for c in e["d"]["charts"])
            if period == 1:
                async with open_tradovate_probe(sim.replay_url) as probe:
                    await authorized(sim, probe, "robot")
                    fills = await probe.call("fillPair/list")
                    assert (fills["s"], fills["d"]) == (200, [])
