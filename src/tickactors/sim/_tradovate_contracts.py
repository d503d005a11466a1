"""The simulated Tradovate contract universe: futures names and their stable ids.

Theory of operation
-------------------
The universe is fixed: every product in :data:`PRODUCTS` and
:data:`TUTORIAL_PRODUCTS` with the listed month codes (``ES`` + ``Z6`` =
``ESZ6``, ...). Contract ids are drawn once, without repeats, from a random
stream derived from the seed, and handed out in name order (the tutorial's
after the others), so one seed always gives the same ``name -> id`` map (across
connections, REST and WebSocket alike) and two seeds usually differ. Any
other name is unknown: ``find`` and ``resolve`` return None and the callers
answer 404.

Lookups (names are matched case-insensitively, ids as ints or digit strings):
``find(name)``, ``item(id)``, ``resolve(symbol_or_id)`` (what ``md/*`` bodies
carry) and ``suggest(text, limit)`` (names starting with ``text``, in name
order). The JSON shape of a contract is the subset of Tradovate's
``Contract`` entity a client needs: ``id``, ``name``, ``contractMaturityId``,
``status`` and ``providerTickSize``. Prices come from the shared random walk
(``_market``), which moves in steps of 0.01, so the sim's pick for
``providerTickSize`` is 0.01 for every contract (real ES trades in 0.25s).

The rest of the universe is what ``user/syncrequest`` and ``product/find``
show: a :class:`Product` per product code (``ES``: its description,
exchange, ``valuePerPoint`` as the real product's, tick size 0.01), one
contract maturity per contract (``expirationMonth`` from the month code:
``Z6`` is December 2026), the exchanges and the one currency, USD (id 1).
Product ids are drawn from the same seeded stream, after the contract ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Final

import attrs

PRODUCTS: Final = (
    ("ES", ("Z6", "H7", "M7")),
    ("NQ", ("Z6", "H7", "M7")),
    ("YM", ("Z6", "H7")),
    ("RTY", ("Z6", "H7")),
    ("MES", ("Z6", "H7")),
    ("MNQ", ("Z6", "H7")),
    ("CL", ("F7", "G7", "H7")),
    ("GC", ("G7", "J7", "M7")),
    ("SI", ("H7", "K7")),
    ("ZB", ("Z6", "H7")),
    ("ZN", ("Z6", "H7")),
    ("6E", ("Z6", "H7")),
)
#: Products Tradovate's JavaScript tutorial asks for (``product/find`` with
#: ``name=ETH``; its inputs suggest BTC, ETH and MYM contracts). Their ids are
#: drawn after everything above, so adding them changed no earlier id.
TUTORIAL_PRODUCTS: Final = (
    ("BTC", ("Z6", "F7", "G7")),
    ("ETH", ("Z6", "F7", "G7")),
    ("MYM", ("Z6", "H7")),
)
TICK_SIZE: Final = 0.01
_ID_RANGE: Final = (1_000_000, 4_000_000)
# product code -> (description, exchange, value per point in USD)
PRODUCT_INFO: Final = {
    "ES": ("E-Mini S&P 500", "CME", 50.0),
    "NQ": ("E-Mini NASDAQ 100", "CME", 20.0),
    "YM": ("E-Mini Dow ($5)", "CBOT", 5.0),
    "RTY": ("E-Mini Russell 2000", "CME", 50.0),
    "MES": ("Micro E-Mini S&P 500", "CME", 5.0),
    "MNQ": ("Micro E-Mini NASDAQ 100", "CME", 2.0),
    "CL": ("Crude Oil", "NYMEX", 1000.0),
    "GC": ("Gold", "COMEX", 100.0),
    "SI": ("Silver", "COMEX", 5000.0),
    "ZB": ("30 Year U.S. Treasury Bond", "CBOT", 1000.0),
    "ZN": ("10 Year U.S. Treasury Note", "CBOT", 1000.0),
    "6E": ("Euro FX", "CME", 125000.0),
    "BTC": ("Bitcoin", "CME", 5.0),
    "ETH": ("Ether", "CME", 50.0),
    "MYM": ("Micro E-Mini Dow", "CBOT", 0.5),
}
EXCHANGES: Final = {"CME": 1, "CBOT": 2, "NYMEX": 3, "COMEX": 4}
USD: Final = {"id": 1, "name": "USD", "symbol": "$"}
_MONTHS: Final = "FGHJKMNQUVXZ"


@attrs.frozen(slots=True)
class Product:
    id: int
    name: str
    description: str
    exchange: str
    value_per_point: float
    months: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "currencyId": USD["id"],
            "productType": "Futures",
            "description": self.description,
            "exchangeId": EXCHANGES[self.exchange],
            "contractGroupId": 1,
            "status": "Verified",
            "months": self.months,
            "valuePerPoint": self.value_per_point,
            "priceFormatType": "Decimal",
            "priceFormat": -2,
            "tickSize": TICK_SIZE,
        }


@attrs.frozen(slots=True)
class Contract:
    id: int
    name: str
    maturity_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "contractMaturityId": self.maturity_id,
            "status": "DefinitionChecked",
            "providerTickSize": TICK_SIZE,
        }

    @property
    def product_name(self) -> str:
        """``ES`` for ``ESZ6``: the name without its month code and year digit."""
        return self.name[:-2]

    def maturity_json(self, product: Product, front: bool) -> dict[str, Any]:
        month = _MONTHS.index(self.name[-2]) + 1
        year = 2020 + int(self.name[-1])
        return {
            "id": self.maturity_id,
            "productId": product.id,
            "expirationMonth": year * 100 + month,
            "expirationDate": f"{year}-{month:02d}-15T13:30:00.000Z",
            "archived": False,
            "seqNo": 1,
            "isFront": front,
        }


def _fresh(rng: random.Random, pool: range, n: int, taken: set[int]) -> list[int]:
    """``n`` distinct values of ``pool`` none of which is in ``taken``."""
    out: list[int] = []
    for value in rng.sample(pool, n + len(taken)):
        if value not in taken:
            out.append(value)
            if len(out) == n:
                break
    return out


class Contracts:
    """The seeded universe; see the module docstring."""

    def __init__(self, rng: random.Random) -> None:
        names = sorted(f"{product}{month}" for product, months in PRODUCTS for month in months)
        ids = rng.sample(range(*_ID_RANGE), len(names))
        maturities = rng.sample(range(40_000, 60_000), len(names))
        by_name = {
            name: Contract(cid, name, mid)
            for name, cid, mid in zip(names, ids, maturities, strict=True)
        }
        product_ids = rng.sample(range(1_000, 9_000), len(PRODUCTS))
        # the tutorial's products: drawn after, avoiding every id drawn before
        extra = sorted(f"{p}{m}" for p, months in TUTORIAL_PRODUCTS for m in months)
        extra_ids = _fresh(rng, range(*_ID_RANGE), len(extra), set(ids))
        extra_maturities = _fresh(rng, range(40_000, 60_000), len(extra), set(maturities))
        for name, cid, mid in zip(extra, extra_ids, extra_maturities, strict=True):
            by_name[name] = Contract(cid, name, mid)
        extra_products = _fresh(rng, range(1_000, 9_000), len(TUTORIAL_PRODUCTS), set(product_ids))
        self._by_name = dict(sorted(by_name.items()))
        self._by_id = {c.id: c for c in self._by_name.values()}
        every = PRODUCTS + TUTORIAL_PRODUCTS
        self._products = {
            code: Product(pid, code, *PRODUCT_INFO[code], "".join(m[0] for m in months))
            for (code, months), pid in zip(every, product_ids + extra_products, strict=True)
        }
        self._front = {code: f"{code}{months[0]}" for code, months in every}

    def __iter__(self) -> Iterator[Contract]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def find(self, name: object) -> Contract | None:
        if not isinstance(name, str):
            return None
        return self._by_name.get(name.strip().upper())

    def item(self, contract_id: object) -> Contract | None:
        if isinstance(contract_id, bool):
            return None
        if isinstance(contract_id, str) and contract_id.strip().isdigit():
            contract_id = int(contract_id.strip())
        if not isinstance(contract_id, int):
            return None
        return self._by_id.get(contract_id)

    def resolve(self, symbol: object) -> Contract | None:
        """The contract a ``symbol`` field names: a name, an id, or an id as a string."""
        return self.item(symbol) or self.find(symbol)

    def suggest(self, text: object, limit: object = 10) -> list[Contract]:
        prefix = text.strip().upper() if isinstance(text, str) else ""
        try:
            count = max(0, int(str(limit)))
        except ValueError:
            count = 10
        return [c for name, c in self._by_name.items() if name.startswith(prefix)][:count]

    # ---- products, maturities, exchanges ---------------------------------------

    def products(self) -> list[Product]:
        return list(self._products.values())

    def product(self, name: object) -> Product | None:
        """The product called ``name`` (``ES``), case-insensitively."""
        return self._products.get(name.strip().upper()) if isinstance(name, str) else None

    def product_of(self, contract: Contract) -> Product:
        return self._products[contract.product_name]

    def maturities_json(self) -> list[dict[str, Any]]:
        return [
            c.maturity_json(self.product_of(c), self._front[c.product_name] == c.name) for c in self
        ]

    @staticmethod
    def exchanges_json() -> list[dict[str, Any]]:
        return [{"id": xid, "name": name} for name, xid in EXCHANGES.items()]
