"""The simulated Tradovate order desk: orders placed, filled against the market, cancelled.

Theory of operation
-------------------
One :class:`OrderDesk` per simulator. Its endpoints (WebSocket and REST
alike) take the request's parameters and return ``(status, payload)``: 200
and the answer's ``d``, or an error status and its text. Every change goes
into :class:`._tradovate_entities.Entities`, which records the ``props``
events; the venue pushes them after the answer (and calls :attr:`on_change`
after the matcher filled something).

- ``order/placeorder`` (``accountId``, ``action`` Buy/Sell, ``symbol`` name or
  id, ``orderQty``, ``orderType`` Market/Limit, ``price`` for a limit,
  ``isAutomated``, ``clOrdId``): answers ``{"orderId"}``. Events: ``order``
  Created (``PendingNew``), ``command`` Created (``New``), ``orderVersion``
  Created, ``commandReport`` Created (``RiskPassed``), ``executionReport``
  Created (``New``), ``order`` Updated (``Working``); then, if it fills at
  once, the fill events below.
- A **fill**: ``executionReport`` Created (``Trade``, ``Filled``), ``fill``
  Created, ``position`` Created or Updated, a ``fillPair`` Created for each
  lot it closes (first in, first out), ``cashBalance`` Updated
  (``realizedPnL`` and ``amount`` += what the pairs made, in USD via the
  product's ``valuePerPoint``), ``order`` Updated (``Filled``). Orders fill
  whole.
- **Prices**: each look at a contract's market takes its next book snapshot
  from the shared walk (``_market``). A market order fills at once, a buy at
  the offer, a sell at the bid. A limit order fills at once at that price if it
  is better than its limit, else it works; every ``tick_interval`` the desk
  looks at each contract with working orders (and sleeps while none works) and
  fills a buy limit whose limit the offer reached (a sell: the bid), at its
  limit price.
- ``order/cancelorder`` (``orderId``): answers ``{"commandId"}``; events
  ``command`` Created (``Cancel``), ``commandReport`` Created,
  ``executionReport`` Created (``Canceled``), ``order`` Updated (``Canceled``).
  An order that is no longer working: 200 with ``failureReason: "TooLate"``.
- ``order/liquidateposition`` (``accountId``, ``contractId``): cancels the
  working orders of that contract, then places a market order for the
  opposite of the net position; answers ``{"orderId"}`` (flat: no order,
  ``failureReason: "UnknownReason"``, ``failureText: "No position to liquidate"``).
- ``orderStrategy/startorderstrategy`` (``accountId``, ``symbol``, ``action``,
  ``orderStrategyTypeId``, ``params``: a JSON string or object holding
  ``entryVersion`` ``{orderQty, orderType, price}`` and ``brackets``): an
  ``orderStrategy`` Created (``ActiveStrategy``), its entry order as above
  with an ``orderStrategyLink`` (``Entry``); ``orderStrategy`` Updated
  (``ExecutionFinished``) once the entry fills. **The brackets are accepted and
  kept in ``params``, never placed** (the sim's minimal strategy). Answers
  ``{"orderStrategy": ...}``.

A refused order is answered 200 with ``failureReason`` and ``failureText``
(``InvalidContract``, ``InvalidPrice``, ``Unsupported`` for other order types,
``UnknownReason`` for a bad action or quantity) and creates nothing; an
``accountId`` that is not the user's is 403 ``Access is denied``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import attrs
import orjson
import trio

from . import _tradovate_protocol as proto
from ._hub import Hub
from ._tradovate_accounts import User
from ._tradovate_contracts import Contract, Contracts
from ._tradovate_entities import Entities, Entity

ORDER_TYPES: Final = ("Market", "Limit")
ACTIONS: Final = ("Buy", "Sell")
BRACKETS_TYPE: Final = 2
STRATEGY_TYPES: Final = ({"id": BRACKETS_TYPE, "name": "Brackets", "enabled": True},)

Outcome = tuple[int, Any]


@attrs.define(slots=True, eq=False)
class _Working:
    user: User
    order: Entity
    contract: Contract
    action: str
    qty: int
    order_type: str
    price: Decimal | None
    command_id: int
    strategy: Entity | None = None


@attrs.define(slots=True, eq=False)
class _Lot:
    fill_id: int
    buy: bool
    qty: int
    price: Decimal


def _failure(reason: str, text: str) -> Outcome:
    return 200, {"failureReason": reason, "failureText": text}


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() and number > 0 else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value if isinstance(value, int) else None


class OrderDesk:
    """Orders, fills and positions of every simulated account; see the module docstring."""

    def __init__(self, hub: Hub, contracts: Contracts, entities: Entities) -> None:
        self._hub, self._contracts, self.entities = hub, contracts, entities
        self._working: dict[int, _Working] = {}
        self._lots: dict[tuple[int, int], list[_Lot]] = {}  # (user id, contract id) -> open lots
        self.on_change: Callable[[], None] = lambda: None
        self._has_work = trio.Event()

    # ---- clock and market ------------------------------------------------------

    def _stamp(self) -> tuple[str, dict[str, int]]:
        wall = self._hub.wall_time()
        day = datetime.fromtimestamp(wall, tz=UTC)
        return proto.iso(wall), {"year": day.year, "month": day.month, "day": day.day}

    def _touch(self, contract: Contract) -> tuple[Decimal, Decimal]:
        """The contract's next best bid and offer (a step of the shared walk)."""
        book = self._hub.market.book(contract.name, 1, self._hub.wall_time())
        return Decimal(book.bids[0][0]), Decimal(book.asks[0][0])

    def open(self, user: User) -> None:
        stamp, day = self._stamp()
        self.entities.open(user, stamp, day)

    # ---- endpoints -------------------------------------------------------------

    def place(self, user: User, params: Mapping[str, Any]) -> Outcome:
        checked = self._check_order(user, params, params)
        if not isinstance(checked, _Order):
            return checked
        order = self._new_order(user, checked, params.get("isAutomated") is True, params)
        return 200, {"orderId": order.order["id"]}

    def cancel(self, user: User, params: Mapping[str, Any]) -> Outcome:
        order_id = _int(params.get("orderId"))
        order = self.entities.get(user, "order", order_id)
        if order is None or order_id is None:
            return 404, f"Not found: order {params.get('orderId')}"
        working = self._working.get(order_id)
        if working is None:
            return _failure("TooLate", f"Order {order_id} is {order['ordStatus']}")
        command = self._cancel(working, params.get("isAutomated") is True)
        return 200, {"commandId": command["id"]}

    def liquidate(self, user: User, params: Mapping[str, Any]) -> Outcome:
        refused = self._check_account(user, params)
        if refused is not None:
            return refused
        contract = self._contracts.item(params.get("contractId"))
        if contract is None:
            return _failure("InvalidContract", f"Unknown contract: {params.get('contractId')}")
        self.open(user)
        for working in [w for w in self._working.values() if w.user == user]:
            if working.contract == contract:
                self._cancel(working, False)
        net = sum(
            lot.qty if lot.buy else -lot.qty for lot in self._lots.get((user.id, contract.id), [])
        )
        if net == 0:
            return _failure("UnknownReason", "No position to liquidate")
        spec = _Order(contract, "Sell" if net > 0 else "Buy", abs(net), "Market", None)
        order = self._new_order(user, spec, False, {})
        return 200, {"orderId": order.order["id"]}

    def start_strategy(self, user: User, params: Mapping[str, Any]) -> Outcome:
        raw = params.get("params")
        try:
            inner = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        except orjson.JSONDecodeError:
            inner = None
        if not isinstance(inner, dict) or not isinstance(inner.get("entryVersion"), dict):
            return 400, "params must hold an entryVersion"
        type_id = params.get("orderStrategyTypeId", BRACKETS_TYPE)
        if _int(type_id) != BRACKETS_TYPE:
            return 400, f"Unknown orderStrategyTypeId: {type_id}"
        checked = self._check_order(user, params, inner["entryVersion"])
        if not isinstance(checked, _Order):
            return 400, checked[1]["failureText"] if checked[0] == 200 else checked[1]
        self.open(user)
        stamp, _ = self._stamp()
        strategy = self.entities.create(
            user,
            "orderStrategy",
            {
                "accountId": user.account_id,
                "timestamp": stamp,
                "contractId": checked.contract.id,
                "orderStrategyTypeId": BRACKETS_TYPE,
                "action": checked.action,
                "params": raw if isinstance(raw, str) else orjson.dumps(raw).decode(),
                "status": "ActiveStrategy",
            },
        )
        created = dict(strategy)  # as created: the entry may fill at once
        self._new_order(user, checked, True, {}, strategy)
        return 200, {"orderStrategy": created}

    # ---- the matcher -----------------------------------------------------------

    async def run(self) -> None:
        """Every ``tick_interval`` while orders work: fill those the market reached."""
        while True:
            if not self._working:
                await self._has_work.wait()
                self._has_work = trio.Event()
            await trio.sleep(self._hub.config.tick_interval)
            self.match()

    def match(self) -> None:
        contracts = {w.contract.id: w.contract for w in self._working.values()}
        filled = False
        for cid in sorted(contracts):
            bid, ask = self._touch(contracts[cid])
            for working in [w for w in self._working.values() if w.contract.id == cid]:
                assert working.price is not None
                if (working.action == "Buy" and ask <= working.price) or (
                    working.action == "Sell" and bid >= working.price
                ):
                    self._fill(working, working.price)
                    filled = True
        if filled:
            self.on_change()

    # ---- the order's life ------------------------------------------------------

    def _check_account(self, user: User, params: Mapping[str, Any]) -> Outcome | None:
        account = params.get("accountId")
        if account is not None and _int(account) != user.account_id:
            return 403, proto.ACCESS_DENIED
        return None

    def _check_order(
        self, user: User, params: Mapping[str, Any], version: Mapping[str, Any]
    ) -> _Order | Outcome:
        refused = self._check_account(user, params)
        if refused is not None:
            return refused
        contract = self._contracts.resolve(params.get("symbol"))
        if contract is None:
            return _failure("InvalidContract", f"Unknown symbol: {params.get('symbol')}")
        action = params.get("action")
        if action not in ACTIONS:
            return _failure("UnknownReason", f"Unknown action: {action}")
        qty = _int(version.get("orderQty"))
        if qty is None or qty <= 0:
            return _failure("UnknownReason", f"Bad orderQty: {version.get('orderQty')}")
        order_type = version.get("orderType")
        if order_type not in ORDER_TYPES:
            return _failure("Unsupported", f"Unsupported orderType: {order_type}")
        price = _decimal(version.get("price")) if order_type == "Limit" else None
        if order_type == "Limit" and price is None:
            return _failure("InvalidPrice", f"Bad price: {version.get('price')}")
        return _Order(contract, str(action), qty, str(order_type), price)

    def _new_order(
        self,
        user: User,
        spec: _Order,
        automated: bool,
        params: Mapping[str, Any],
        strategy: Entity | None = None,
    ) -> _Working:
        self.open(user)
        ents = self.entities
        stamp, _ = self._stamp()
        order = ents.create(
            user,
            "order",
            {
                "accountId": user.account_id,
                "contractId": spec.contract.id,
                "timestamp": stamp,
                "action": spec.action,
                "ordStatus": "PendingNew",
                "admin": False,
            },
        )
        command: Entity = {
            "orderId": order["id"],
            "timestamp": stamp,
            "commandType": "New",
            "commandStatus": "PendingExecution",
            "userId": user.id,
            "isAutomated": automated,
        }
        if isinstance(params.get("clOrdId"), str):
            command["clOrdId"] = params["clOrdId"]
        command = ents.create(user, "command", command)
        version: Entity = {
            "orderId": order["id"],
            "orderQty": spec.qty,
            "orderType": spec.order_type,
            "timeInForce": "Day",
        }
        if spec.price is not None:
            version["price"] = float(spec.price)
        ents.create(user, "orderVersion", version)
        if strategy is not None:
            link = {"orderStrategyId": strategy["id"], "orderId": order["id"], "label": "Entry"}
            ents.create(user, "orderStrategyLink", link)
        ents.create(
            user,
            "commandReport",
            {"commandId": command["id"], "timestamp": stamp, "commandStatus": "RiskPassed"},
        )
        working = _Working(
            user,
            order,
            spec.contract,
            spec.action,
            spec.qty,
            spec.order_type,
            spec.price,
            command["id"],
            strategy,
        )
        self._report(working, "New", "Working")
        ents.update(user, "order", order, ordStatus="Working")
        self._working[order["id"]] = working
        self._has_work.set()
        bid, ask = self._touch(spec.contract)
        at = ask if spec.action == "Buy" else bid
        if spec.price is None or (at <= spec.price if spec.action == "Buy" else at >= spec.price):
            self._fill(working, at)
        return working

    def _report(
        self, working: _Working, exec_type: str, status: str, price: Decimal | None = None
    ) -> None:
        stamp, day = self._stamp()
        filled = price is not None
        report: Entity = {
            "commandId": working.command_id,
            "accountId": working.user.account_id,
            "contractId": working.contract.id,
            "timestamp": stamp,
            "tradeDate": day,
            "orderId": working.order["id"],
            "execType": exec_type,
            "ordStatus": status,
            "action": working.action,
            "cumQty": working.qty if filled else 0,
            "avgPx": float(price) if price is not None else 0.0,
        }
        if price is not None:
            report["lastQty"], report["lastPx"] = working.qty, float(price)
        self.entities.create(working.user, "executionReport", report)

    def _cancel(self, working: _Working, automated: bool) -> Entity:
        ents, user = self.entities, working.user
        stamp, _ = self._stamp()
        del self._working[working.order["id"]]
        command = ents.create(
            user,
            "command",
            {
                "orderId": working.order["id"],
                "timestamp": stamp,
                "commandType": "Cancel",
                "commandStatus": "PendingExecution",
                "userId": user.id,
                "isAutomated": automated,
            },
        )
        ents.create(
            user,
            "commandReport",
            {"commandId": command["id"], "timestamp": stamp, "commandStatus": "RiskPassed"},
        )
        cancel = attrs.evolve(working, command_id=command["id"])
        self._report(cancel, "Canceled", "Canceled")
        ents.update(user, "order", working.order, ordStatus="Canceled")
        if working.strategy is not None:
            ents.update(user, "orderStrategy", working.strategy, status="ExecutionFinished")
        return command

    def _fill(self, working: _Working, price: Decimal) -> None:
        ents, user, contract = self.entities, working.user, working.contract
        self._working.pop(working.order["id"], None)
        stamp, day = self._stamp()
        buy = working.action == "Buy"
        self._report(working, "Trade", "Filled", price)
        fill = ents.create(
            user,
            "fill",
            {
                "orderId": working.order["id"],
                "contractId": contract.id,
                "timestamp": stamp,
                "tradeDate": day,
                "action": working.action,
                "qty": working.qty,
                "price": float(price),
                "active": True,
                "finallyPaired": 0,
            },
        )
        lots = self._lots.setdefault((user.id, contract.id), [])
        pairs: list[tuple[_Lot, int]] = []
        left = working.qty
        while left and lots and lots[0].buy != buy:
            lot = lots[0]
            qty = min(left, lot.qty)
            pairs.append((lot, qty))
            lot.qty -= qty
            left -= qty
            if not lot.qty:
                lots.pop(0)
        if left:
            lots.append(_Lot(fill["id"], buy, left, price))
        position = self._position(user, contract, working, price, stamp, day)
        value = Decimal(str(self._contracts.product_of(contract).value_per_point))
        realized = Decimal(0)
        for lot, qty in pairs:
            buy_price, sell_price = (lot.price, price) if lot.buy else (price, lot.price)
            buy_id, sell_id = (lot.fill_id, fill["id"]) if lot.buy else (fill["id"], lot.fill_id)
            ents.create(
                user,
                "fillPair",
                {
                    "positionId": position["id"],
                    "buyFillId": buy_id,
                    "sellFillId": sell_id,
                    "qty": qty,
                    "buyPrice": float(buy_price),
                    "sellPrice": float(sell_price),
                    "active": True,
                },
            )
            realized += (sell_price - buy_price) * qty * value
        balance = ents.all(user, "cashBalance")[0]
        ents.update(
            user,
            "cashBalance",
            balance,
            timestamp=stamp,
            realizedPnL=float(Decimal(str(balance["realizedPnL"])) + realized),
            weekRealizedPnL=float(Decimal(str(balance["weekRealizedPnL"])) + realized),
            amount=float(Decimal(str(balance["amount"])) + realized),
        )
        ents.update(user, "order", working.order, ordStatus="Filled")
        if working.strategy is not None:
            ents.update(user, "orderStrategy", working.strategy, status="ExecutionFinished")

    def _position(
        self,
        user: User,
        contract: Contract,
        working: _Working,
        price: Decimal,
        stamp: str,
        day: dict[str, int],
    ) -> Entity:
        lots = self._lots.get((user.id, contract.id), [])
        net = sum(lot.qty if lot.buy else -lot.qty for lot in lots)
        found = [p for p in self.entities.all(user, "position") if p["contractId"] == contract.id]
        bought = working.qty if working.action == "Buy" else 0
        sold = working.qty - bought
        if not found:
            position: Entity = {
                "accountId": user.account_id,
                "contractId": contract.id,
                "timestamp": stamp,
                "tradeDate": day,
                "netPos": net,
                "bought": bought,
                "boughtValue": float(price * bought),
                "sold": sold,
                "soldValue": float(price * sold),
                "prevPos": 0,
            }
            if net:
                position["netPrice"] = float(_average(lots))
            return self.entities.create(user, "position", position)
        position = found[0]
        changes: dict[str, Any] = {
            "timestamp": stamp,
            "netPos": net,
            "bought": position["bought"] + bought,
            "boughtValue": float(Decimal(str(position["boughtValue"])) + price * bought),
            "sold": position["sold"] + sold,
            "soldValue": float(Decimal(str(position["soldValue"])) + price * sold),
        }
        if net:
            changes["netPrice"] = float(_average(lots))
        else:
            position.pop("netPrice", None)
        return self.entities.update(user, "position", position, **changes)


@attrs.frozen(slots=True)
class _Order:
    contract: Contract
    action: str
    qty: int
    order_type: str
    price: Decimal | None


def _average(lots: list[_Lot]) -> Decimal:
    qty = sum(lot.qty for lot in lots)
    return (sum((lot.price * lot.qty for lot in lots), Decimal(0)) / qty).quantize(
        Decimal("0.0001")
    )
