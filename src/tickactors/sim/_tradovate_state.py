"""What every part of the simulated Tradovate venue shares, besides the :class:`Hub`.

One :class:`TradovateVenue` per simulator holds the contract universe, the
users and tokens, the trade ledger of Tick charts, the outstanding penalty
tickets, the random stream for error-text variants, the accounts' entities and the order desk. It is
reachable as ``sim.tradovate`` (``None`` on the AllTick venue), so a test can
look up ``sim.tradovate.contracts.find("ESZ6")``, read a contract's trade
ledger with ``sim.tradovate.ticks.history(contract_id)``, mint a token with
``sim.tradovate.accounts.issue("alice")`` or read
``sim.tradovate.entities.all(user, "order")``.

``props`` events reach every connection of the user that did a
``user/syncrequest`` (a :class:`PropsListener` whose ``props_user`` is the
user's id): :meth:`TradovateVenue.flush_props` takes what the entities
recorded and sends each user's events, in order, in one ``a[...]`` frame per
connection. The connection calls it right after queueing an answer, REST
after answering, the desk's matcher after a fill: so the answer to an order
goes out before the events it caused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from . import _tradovate_protocol as proto
from ._faults import Faults
from ._hub import Hub
from ._tradovate_accounts import Accounts, User
from ._tradovate_contracts import USD, Contracts
from ._tradovate_entities import Entities
from ._tradovate_orders import STRATEGY_TYPES, OrderDesk, Outcome
from ._tradovate_penalty import PenaltyBox
from ._tradovate_ticks import TickLedger

# ``<entity>/list`` endpoints (lowercased) -> entity type
LISTS: Final = {
    "fillpair/list": "fillPair",
    "order/list": "order",
    "position/list": "position",
    "fill/list": "fill",
    "cashbalance/list": "cashBalance",
    "executionreport/list": "executionReport",
    "orderstrategy/list": "orderStrategy",
}
TRADING: Final = (
    "order/placeorder",
    "order/cancelorder",
    "order/liquidateposition",
    "orderstrategy/startorderstrategy",
)
# the requests that place an order (what the ``drop_after_order`` fault watches)
PLACING: Final = ("order/placeorder", "order/liquidateposition", "orderstrategy/startorderstrategy")


@runtime_checkable
class PropsListener(Protocol):
    """A connection that wants ``props`` events of user ``props_user`` (None: none)."""

    props_user: int | None

    def push_props(self, frame: bytes) -> None:
        """Queue one ``a[...]`` frame of props events."""


class TradovateVenue:
    """Shared Tradovate state (see the module docstring)."""

    def __init__(self, hub: Hub, faults: Faults) -> None:
        self.hub = hub
        self.contracts = Contracts(hub.rng("tradovate:contracts"))
        self.accounts = Accounts(hub)
        self.penalties = PenaltyBox(hub, faults)
        self._error_rng = hub.rng("tradovate:errors")
        self._next_chart_id = 0
        self.ticks = TickLedger(hub.stats)
        first_id = hub.rng("tradovate:entities").randint(10_000_000, 90_000_000)
        self.entities = Entities(first_id)
        self.desk = OrderDesk(hub, self.contracts, self.entities)
        self.desk.on_change = self.flush_props

    def error(self, request_id: int | None, status: int, text: str) -> dict[str, Any]:
        """An error answer whose text follows ``SimConfig.error_text``."""
        shown = proto.error_text(text, self.hub.config.error_text, self._error_rng)
        return proto.error(request_id, status, shown)

    def new_chart_id(self) -> int:
        self._next_chart_id += 1
        return self._next_chart_id

    def sync_json(self, user: User) -> dict[str, Any]:
        """The ``user/syncrequest`` answer: ``user``'s entities and the universe."""
        self.desk.open(user)
        return {
            "users": [self.accounts.user_json(user)],
            "accounts": self.accounts.accounts_json(user),
            **self.entities.lists(user),
            "currencies": [dict(USD)],
            "contracts": [c.to_json() for c in self.contracts],
            "contractMaturities": self.contracts.maturities_json(),
            "products": [p.to_json() for p in self.contracts.products()],
            "exchanges": self.contracts.exchanges_json(),
            "contractGroups": [{"id": 1, "name": "Futures"}],
            "orderStrategyTypes": [dict(t) for t in STRATEGY_TYPES],
            "properties": [],
            "spreadDefinitions": [],
        }

    def trading_call(self, user: User, key: str, params: Mapping[str, Any]) -> Outcome | None:
        """``(status, payload)`` of a trading or entity endpoint ``key`` (lowercased;
        WebSocket and REST alike), or None when ``key`` is none of them."""
        desk = self.desk
        if key in TRADING:
            call = {
                "order/placeorder": desk.place,
                "order/cancelorder": desk.cancel,
                "order/liquidateposition": desk.liquidate,
                "orderstrategy/startorderstrategy": desk.start_strategy,
            }[key]
            return call(user, params)
        if key in LISTS:
            return 200, [dict(e) for e in self.entities.all(user, LISTS[key])]
        if key == "product/find":
            product = self.contracts.product(params.get("name"))
            if product is None:
                return 404, f"Not found: {params.get('name')}"
            return 200, product.to_json()
        if key == "product/list":
            return 200, [p.to_json() for p in self.contracts.products()]
        return None

    def flush_props(self) -> None:
        """Send the recorded props events to the users' synced connections."""
        for user_id, events in self.entities.take():
            frame = proto.array_frame([{"e": "props", "d": event} for event in events])
            for conn in list(self.hub.connections.values()):
                if isinstance(conn, PropsListener) and conn.props_user == user_id:
                    conn.push_props(frame)
