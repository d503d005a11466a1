"""The simulated Tradovate contract universe: futures names and their stable ids.

Theory of operation
-------------------
The universe is fixed: every product in :data:`PRODUCTS` with the listed
month codes (``ES`` + ``Z6`` = ``ESZ6``, ...). Contract ids are drawn once,
without repeats, from a random stream derived from the seed, and handed out
in name order, so one seed always gives the same ``name -> id`` map (across
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
TICK_SIZE: Final = 0.01
_ID_RANGE: Final = (1_000_000, 4_000_000)


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


class Contracts:
    """The seeded universe; see the module docstring."""

    def __init__(self, rng: random.Random) -> None:
        names = sorted(f"{product}{month}" for product, months in PRODUCTS for month in months)
        ids = rng.sample(range(*_ID_RANGE), len(names))
        maturities = rng.sample(range(40_000, 60_000), len(names))
        self._by_name = {
            name: Contract(cid, name, mid)
            for name, cid, mid in zip(names, ids, maturities, strict=True)
        }
        self._by_id = {c.id: c for c in self._by_name.values()}

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
