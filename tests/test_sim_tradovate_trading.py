"""The simulated Tradovate as a trading venue: sync, orders, props, faults, keep-alive upgrade.

Driven with raw clients (the probe, h11, wsproto), never with the tickactors client.
"""

from __future__ import annotations

from typing import Any

import h11
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from tickactors.sim import open_simulator
from tickactors.sim._tradovate_probe import TradovateProbe, open_tradovate_probe, rest

SYNC_LISTS = [
    "users",
    "accounts",
    "accountRiskStatuses",
    "marginSnapshots",
    "cashBalances",
    "currencies",
    "positions",
    "fillPairs",
    "orders",
    "contracts",
    "contractMaturities",
    "products",
    "exchanges",
    "commands",
    "commandReports",
    "executionReports",
    "orderVersions",
    "fills",
    "orderStrategies",
    "orderStrategyLinks",
    "userProperties",
    "properties",
    "userPlugins",
    "userReadStatuses",
    "contractGroups",
    "orderStrategyTypes",
    "spreadDefinitions",
    "userAccountAutoLiqs",
]


async def login(sim: Any, probe: TradovateProbe, user: str = "trader") -> dict[str, Any]:
    """Authorize and sync; the sync answer's ``d``."""
    token = sim.tradovate.accounts.issue(user).access
    assert (await probe.authorize(token))["s"] == 200
    answer = await probe.call("user/syncrequest", {"users": [1]})
    assert answer["s"] == 200
    data: dict[str, Any] = answer["d"]
    return data


def props(probe: TradovateProbe) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (i["d"]["entityType"], i["d"]["eventType"], i["d"]["entity"])
        for i in probe.items
        if i.get("e") == "props"
    ]


async def until_props(probe: TradovateProbe, kind: str, **fields: Any) -> dict[str, Any]:
    """Read until a props event of ``kind`` whose entity holds ``fields``."""
    while True:
        for entity_type, _, entity in props(probe):
            if entity_type == kind and all(entity.get(k) == v for k, v in fields.items()):
                return entity
        await probe.receive()


async def test_sync_answer_has_every_list_the_examples_read() -> None:
    async with open_simulator("tradovate", seed=1) as sim, open_tradovate_probe(sim.url) as probe:
        data = await login(sim, probe)
        assert set(SYNC_LISTS) <= set(data)
        assert all(isinstance(data[name], list) for name in SYNC_LISTS)
        account = data["accounts"][0]
        assert data["cashBalances"][0]["accountId"] == account["id"]
        assert data["cashBalances"][0]["realizedPnL"] == 0.0
        assert data["accountRiskStatuses"][0]["id"] == account["id"]
        assert data["positions"] == data["orders"] == data["fills"] == data["fillPairs"] == []
        # what the official strategy example does with it
        es = sim.tradovate.contracts.find("ESZ6")
        product = next(p for p in data["products"] if es.name.startswith(p["name"]))
        assert product["name"] == "ES" and product["valuePerPoint"] == 50.0
        assert (await probe.call("product/find", "", "name=ES"))["d"] == product
        assert (await probe.call("product/find", "", "name=XX"))["s"] == 404
        maturity = next(m for m in data["contractMaturities"] if m["id"] == es.maturity_id)
        assert maturity["productId"] == product["id"]


async def test_market_order_fills_and_props_arrive_in_order(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_simulator("tradovate", seed=2) as sim,
        open_tradovate_probe(sim.url) as probe,
        open_tradovate_probe(sim.url) as peer,
        open_tradovate_probe(sim.url) as unsynced,
    ):
        data = await login(sim, probe)
        await login(sim, peer)
        token = sim.tradovate.accounts.issue("trader").access
        assert (await unsynced.authorize(token))["s"] == 200
        account = data["accounts"][0]["id"]
        es = sim.tradovate.contracts.find("ESZ6")
        body = {
            "accountSpec": data["accounts"][0]["name"],
            "accountId": account,
            "action": "Buy",
            "symbol": "ESZ6",
            "orderQty": 2,
            "orderType": "Market",
            "isAutomated": True,
        }
        rid = await probe.request("order/placeorder", body)
        answer = await probe.answer(rid)
        order_id = answer["d"]["orderId"]
        await until_props(probe, "order", id=order_id, ordStatus="Filled")
        # the answer came before any props event
        first_props = next(k for k, i in enumerate(probe.items) if i.get("e") == "props")
        assert probe.items.index(answer) < first_props
        events = props(probe)
        kinds = [(t, e) for t, e, _ in events]
        assert kinds == [
            ("order", "Created"),
            ("command", "Created"),
            ("orderVersion", "Created"),
            ("commandReport", "Created"),
            ("executionReport", "Created"),
            ("order", "Updated"),
            ("executionReport", "Created"),
            ("fill", "Created"),
            ("position", "Created"),
            ("cashBalance", "Updated"),
            ("order", "Updated"),
        ]
        entity = {t + e + str(k): ent for k, (t, e, ent) in enumerate(events)}
        command = entity["commandCreated1"]
        assert command["orderId"] == order_id and command["isAutomated"] is True
        assert entity["orderVersionCreated2"] == {
            "id": entity["orderVersionCreated2"]["id"],
            "orderId": order_id,
            "orderQty": 2,
            "orderType": "Market",
            "timeInForce": "Day",
        }
        assert entity["commandReportCreated3"]["commandId"] == command["id"]
        new, trade = entity["executionReportCreated4"], entity["executionReportCreated6"]
        assert (new["execType"], new["ordStatus"]) == ("New", "Working")
        assert (trade["execType"], trade["ordStatus"], trade["cumQty"]) == ("Trade", "Filled", 2)
        assert new["orderId"] == trade["orderId"] == order_id
        fill = entity["fillCreated7"]
        assert (fill["orderId"], fill["contractId"], fill["qty"]) == (order_id, es.id, 2)
        assert fill["price"] == trade["lastPx"] == trade["avgPx"]
        position = entity["positionCreated8"]
        assert (position["accountId"], position["contractId"]) == (account, es.id)
        assert (position["netPos"], position["netPrice"], position["bought"]) == (
            2,
            fill["price"],
            2,
        )
        assert [e["ordStatus"] for t, _, e in events if t == "order"] == [
            "PendingNew",
            "Working",
            "Filled",
        ]
        # the peer connection of the same user got the same events; the unsynced one none
        await until_props(peer, "order", id=order_id, ordStatus="Filled")
        assert props(peer) == events
        await unsynced.collect(1.0)
        assert props(unsynced) == []
        # a new sync shows the state
        data = (await probe.call("user/syncrequest", {"users": [1]}))["d"]
        assert [o["ordStatus"] for o in data["orders"]] == ["Filled"]
        assert data["positions"][0]["netPos"] == 2 and data["fills"][0]["id"] == fill["id"]


async def test_limit_order_fills_when_the_market_crosses(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", seed=4) as sim, open_tradovate_probe(sim.url) as probe:
        await login(sim, probe)
        book = sim._hub.market.book("ESZ6", 1, 0.0)
        limit = round(float(book.bids[0][0]) - 0.05, 2)
        body = {"action": "Buy", "symbol": "ESZ6", "orderQty": 1, "orderType": "Limit"}
        placed = await probe.call("order/placeorder", {**body, "price": limit})
        order_id = placed["d"]["orderId"]
        await until_props(probe, "order", id=order_id, ordStatus="Working")
        assert not [e for t, _, e in props(probe) if t == "fill"]
        with trio.fail_after(3600):
            fill = await until_props(probe, "fill", orderId=order_id)
        assert fill["price"] == limit
        await until_props(probe, "order", id=order_id, ordStatus="Filled")
        # a buy limit above the offer fills at once, at the offer
        high = round(limit * 1.5, 2)
        placed = await probe.call("order/placeorder", {**body, "price": high})
        quick = await until_props(probe, "fill", orderId=placed["d"]["orderId"])
        assert quick["price"] < high
        refused = await probe.call("order/placeorder", {**body, "price": -1})
        assert refused["d"]["failureReason"] == "InvalidPrice"


async def test_cancel_a_working_order(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", seed=5) as sim, open_tradovate_probe(sim.url) as probe:
        await login(sim, probe)
        body = {"action": "Sell", "symbol": "NQZ6", "orderQty": 1, "orderType": "Limit"}
        placed = await probe.call("order/placeorder", {**body, "price": 1_000_000})
        order_id = placed["d"]["orderId"]
        cancelled = await probe.call("order/cancelorder", {"orderId": order_id})
        command_id = cancelled["d"]["commandId"]
        await until_props(probe, "order", id=order_id, ordStatus="Canceled")
        tail = [(t, e) for t, e, _ in props(probe)][-4:]
        assert tail == [
            ("command", "Created"),
            ("commandReport", "Created"),
            ("executionReport", "Created"),
            ("order", "Updated"),
        ]
        report = await until_props(probe, "executionReport", execType="Canceled")
        assert report["commandId"] == command_id and report["orderId"] == order_id
        again = await probe.call("order/cancelorder", {"orderId": order_id})
        assert again["d"]["failureReason"] == "TooLate"
        assert (await probe.call("order/cancelorder", {"orderId": 1}))["s"] == 404
        await probe.collect(5.0)
        assert not [e for t, _, e in props(probe) if t == "fill"]


async def test_liquidate_position_flattens_and_books_the_pnl(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_simulator("tradovate", seed=6) as sim, open_tradovate_probe(sim.url) as probe:
        data = await login(sim, probe)
        account = data["accounts"][0]["id"]
        cl = sim.tradovate.contracts.find("CLF7")
        buy = {"action": "Buy", "symbol": cl.id, "orderQty": 3, "orderType": "Market"}
        first = (await probe.call("order/placeorder", buy))["d"]["orderId"]
        bought = await until_props(probe, "fill", orderId=first)
        resting = {"action": "Sell", "symbol": "CLF7", "orderQty": 1, "orderType": "Limit"}
        working = (await probe.call("order/placeorder", {**resting, "price": 99999}))["d"]
        answer = await probe.call(
            "order/liquidatePosition", {"accountId": account, "contractId": cl.id, "admin": False}
        )
        closing = answer["d"]["orderId"]
        await until_props(probe, "order", id=working["orderId"], ordStatus="Canceled")
        sold = await until_props(probe, "fill", orderId=closing)
        assert (sold["action"], sold["qty"]) == ("Sell", 3)
        pair = await until_props(probe, "fillPair", sellFillId=sold["id"])
        assert pair["buyFillId"] == bought["id"] and pair["qty"] == 3
        position = await until_props(probe, "position", netPos=0)
        assert "netPrice" not in position and position["sold"] == 3
        balance = [e for t, _, e in props(probe) if t == "cashBalance"][-1]
        pnl = round((sold["price"] - bought["price"]) * 3 * 1000.0, 6)
        assert round(balance["realizedPnL"], 6) == pnl
        pairs = (await probe.call("fillPair/list"))["d"]
        assert [p["id"] for p in pairs] == [pair["id"]]
        flat = await probe.call(
            "order/liquidateposition", {"accountId": account, "contractId": cl.id}
        )
        assert flat["d"]["failureText"] == "No position to liquidate"
        other = await probe.call("order/liquidateposition", {"accountId": 1, "contractId": cl.id})
        assert other["s"] == 403


@pytest.mark.parametrize("accepted", [False, True])
async def test_drop_after_order(autojump_clock: trio.abc.Clock, accepted: bool) -> None:
    async with open_simulator("tradovate", seed=7) as sim:
        order = {"action": "Buy", "symbol": "ESZ6", "orderQty": 1, "orderType": "Market"}
        async with open_tradovate_probe(sim.url) as probe:
            await login(sim, probe)
            sim.faults.drop_after_order(accepted=accepted)
            assert sim.faults.armed("drop_after_order") == 1
            rid = await probe.request("order/placeorder", order)
            with pytest.raises(ConnectionClosed):
                await probe.answer(rid)
            assert not [i for i in probe.items if i.get("i") == rid or i.get("e") == "props"]
        assert sim.stats.closes["drop_after_order"] == 1
        async with open_tradovate_probe(sim.url) as probe:
            data = await login(sim, probe)
            if accepted:
                assert [o["ordStatus"] for o in data["orders"]] == ["Filled"]
                assert data["positions"][0]["netPos"] == 1 and len(data["fills"]) == 1
            else:
                assert data["orders"] == data["positions"] == data["fills"] == []
            # the next order is served normally
            assert "orderId" in (await probe.call("order/placeorder", order))["d"]


async def test_start_order_strategy_places_its_entry(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", seed=8) as sim, open_tradovate_probe(sim.url) as probe:
        data = await login(sim, probe)
        params = {
            "entryVersion": {"orderQty": 1, "orderType": "Market"},
            "brackets": [{"qty": 1, "profitTarget": 5, "stopLoss": -2, "trailingStop": True}],
        }
        body = {
            "accountId": data["accounts"][0]["id"],
            "accountSpec": data["accounts"][0]["name"],
            "symbol": "MESZ6",
            "action": "Sell",
            "orderStrategyTypeId": 2,
            "params": orjson.dumps(params).decode(),
        }
        answer = await probe.call("orderStrategy/startOrderStrategy", body)
        strategy = answer["d"]["orderStrategy"]
        assert strategy["status"] == "ActiveStrategy" and strategy["action"] == "Sell"
        link = await until_props(probe, "orderStrategyLink", orderStrategyId=strategy["id"])
        fill = await until_props(probe, "fill", orderId=link["orderId"])
        assert fill["action"] == "Sell"
        await until_props(probe, "orderStrategy", id=strategy["id"], status="ExecutionFinished")
        position = await until_props(probe, "position", netPos=-1)
        assert position["sold"] == 1


async def test_rest_order_pushes_props_to_synced_sockets(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", seed=9) as sim, open_tradovate_probe(sim.url) as probe:
        await login(sim, probe, "rita")
        token = sim.tradovate.accounts.issue("rita").access
        order = {"action": "Buy", "symbol": "GCG7", "orderQty": 1, "orderType": "Market"}
        status, body = await rest(sim.port, "POST", "/v1/order/placeOrder", order, token=token)
        assert status == 200
        await until_props(probe, "order", id=body["orderId"], ordStatus="Filled")
        status, pairs = await rest(sim.port, "GET", "/v1/fillPair/list", token=token)
        assert (status, pairs) == (200, [])
        status, product = await rest(sim.port, "GET", "/v1/product/find?name=GC", token=token)
        assert status == 200 and product["valuePerPoint"] == 100.0


async def test_rest_then_upgrade_on_one_keep_alive_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_simulator("tradovate", seed=3) as sim:
        token = sim.tradovate.accounts.issue("kim").access
        stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
        with trio.fail_after(30):
            await _rest_then_upgrade(stream, sim.port, token)
        assert sim.stats.tcp_accepted == 1 and sim.stats.connections_opened == 1


async def _rest_then_upgrade(stream: trio.SocketStream, port: int, token: str) -> None:
    async with stream:
        http = h11.Connection(h11.CLIENT)
        head = [
            ("Host", f"127.0.0.1:{port}"),
            ("Authorization", f"Bearer {token}"),
            ("Connection", "keep-alive"),
        ]
        out = http.send(h11.Request(method="GET", target="/v1/account/list", headers=head))
        await stream.send_all(out + http.send(h11.EndOfMessage()))
        status, body = 0, bytearray()
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert status == 200 and orjson.loads(body)[0]["name"].startswith("DEMO")
        # the same TCP connection now asks for the WebSocket
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="127.0.0.1", target="/v1/websocket")))
        texts: list[str] = []
        accepted = False
        while not texts:
            ws.receive_data(await stream.receive_some(65536))
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, TextMessage):
                    texts.append(event.data)
        assert accepted and texts == ["o"]
