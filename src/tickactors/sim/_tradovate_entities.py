"""The simulated Tradovate accounts' entities: what ``user/syncrequest`` lists and ``props`` tell.

Theory of operation
-------------------
Every user has one store of entities by Tradovate's entity type
(``order``, ``command``, ``orderVersion``, ``commandReport``,
``executionReport``, ``fill``, ``fillPair``, ``position``, ``cashBalance``,
``orderStrategy``, ``orderStrategyLink``, ...), each a JSON-ready dict with an
``id`` unique across the simulator (one counter, from a seeded start).
:meth:`Entities.create` and :meth:`Entities.update` change the store and record
the change as a ``props`` event payload, ``{"entityType", "eventType":
"Created"|"Updated", "entity"}``, in an outbox per user; whoever pushes events
(``TradovateVenue.flush_props``) takes the outbox with :meth:`Entities.take`.
An ``update`` records the whole entity, as Tradovate sends it.

A user's store is created on first use with its account's ``cashBalance``
(50,000 USD, the sim's pick), ``accountRiskStatus`` and ``marginSnapshot``
(margins 0: the sim keeps no margin). :meth:`Entities.lists` is the user's
part of the ``user/syncrequest`` answer: one list per entity type, by the
plural names Tradovate's example clients read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

from ._tradovate_accounts import User

START_BALANCE: Final = 50_000.0
# entity type -> its list in the user/syncrequest answer
LISTS: Final = {
    "accountRiskStatus": "accountRiskStatuses",
    "marginSnapshot": "marginSnapshots",
    "cashBalance": "cashBalances",
    "position": "positions",
    "fillPair": "fillPairs",
    "order": "orders",
    "command": "commands",
    "commandReport": "commandReports",
    "executionReport": "executionReports",
    "orderVersion": "orderVersions",
    "fill": "fills",
    "orderStrategy": "orderStrategies",
    "orderStrategyLink": "orderStrategyLinks",
    "userProperty": "userProperties",
    "userPlugin": "userPlugins",
    "userReadStatus": "userReadStatuses",
    "userAccountAutoLiq": "userAccountAutoLiqs",
}

Entity = dict[str, Any]
Event = dict[str, Any]


class Entities:
    """Every user's entities and their outboxes of ``props`` payloads."""

    def __init__(self, first_id: int) -> None:
        self._next_id = first_id
        self._stores: dict[int, defaultdict[str, dict[int, Entity]]] = {}
        self._outbox: defaultdict[int, list[Event]] = defaultdict(list)

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _store(
        self, user: User, stamp: str, trade_date: dict[str, int]
    ) -> dict[str, dict[int, Entity]]:
        store = self._stores.get(user.id)
        if store is None:
            store = self._stores[user.id] = defaultdict(dict)
            account = user.account_id
            store["cashBalance"][self.new_id()] = {
                "accountId": account,
                "timestamp": stamp,
                "tradeDate": trade_date,
                "currencyId": 1,
                "amount": START_BALANCE,
                "realizedPnL": 0.0,
                "weekRealizedPnL": 0.0,
                "amountSOD": START_BALANCE,
            }
            store["accountRiskStatus"][account] = {"userTriggeredLiqOnly": False}
            store["marginSnapshot"][account] = {
                "timestamp": stamp,
                "riskTimePeriodId": 1,
                "initialMargin": 0.0,
                "maintenanceMargin": 0.0,
                "autoLiqLevel": 0.0,
                "liqOnlyLevel": 0.0,
                "totalUsedMargin": 0.0,
                "fullInitialMargin": 0.0,
            }
            for kind in ("cashBalance", "accountRiskStatus", "marginSnapshot"):
                for eid, entity in store[kind].items():
                    entity["id"] = eid
        return store

    def open(self, user: User, stamp: str, trade_date: dict[str, int]) -> None:
        """Make sure ``user``'s store exists (with its account's standing entities)."""
        self._store(user, stamp, trade_date)

    def create(self, user: User, kind: str, entity: Entity) -> Entity:
        """Store a new ``kind`` entity under a fresh id; record ``Created``. Returns it."""
        store = self._stores[user.id]
        entity = {"id": self.new_id(), **entity}
        store[kind][entity["id"]] = entity
        self._outbox[user.id].append(_event(kind, "Created", entity))
        return entity

    def update(self, user: User, kind: str, entity: Entity, **changes: Any) -> Entity:
        """Apply ``changes`` to a stored entity; record ``Updated`` with the whole entity."""
        entity.update(changes)
        self._outbox[user.id].append(_event(kind, "Updated", entity))
        return entity

    def get(self, user: User, kind: str, entity_id: object) -> Entity | None:
        store = self._stores.get(user.id)
        if store is None or not isinstance(entity_id, int) or isinstance(entity_id, bool):
            return None
        return store[kind].get(entity_id)

    def all(self, user: User, kind: str) -> list[Entity]:
        store = self._stores.get(user.id)
        return [] if store is None else list(store[kind].values())

    def lists(self, user: User) -> dict[str, list[Entity]]:
        """The user's entity lists, by their ``user/syncrequest`` names."""
        return {name: [dict(e) for e in self.all(user, kind)] for kind, name in LISTS.items()}

    def take(self) -> list[tuple[int, list[Event]]]:
        """The recorded ``props`` payloads, per user id, and an empty outbox."""
        taken = [(uid, events) for uid, events in self._outbox.items() if events]
        self._outbox.clear()
        return taken


def _event(kind: str, event_type: str, entity: Entity) -> Event:
    return {"entityType": kind, "eventType": event_type, "entity": dict(entity)}
