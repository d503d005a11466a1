"""A random-walk market: trades and order books for any code, repeatable from a seed.

Theory of operation
-------------------
Every code gets its own :class:`random.Random` seeded from ``(seed, code)``,
so the n-th trade of ``BTCUSDT`` is the same whatever else is subscribed and
whoever reads it. Prices are integers of *units* (one unit = one tick of
``10**-decimals``), walked in steps of about two basis points and reflected
off a floor of 100 units, so every price, bid and ask stays > 0. They leave
this module only as decimal strings.

The number of decimals and the starting price come from the shape of the code
(the sim's pick, loosely after real instruments):

- six uppercase letters (``EURUSD``, and the metals ``XAUUSD``, ``XAGUSD``):
  forex, 5 decimals (3 for ``...JPY``), ``trade_direction`` 0 and no turnover,
  as AllTick sends for forex (and, in ``_alltick_stream``, one book level
  without volumes);
- ``...USDT`` / ``...USD`` / ``...BTC``: crypto, 2 decimals, fractional volumes;
- anything else (``700.HK``, ``AAPL.US``): stocks, 2 decimals, board-lot volumes.

AllTick's books for forex, precious metals and CFDs have one level and no
volumes (``_alltick_stream``, :func:`top_of_book_only`): the six-letter
codes above, and the commodity codes AllTick's code list shows
(:data:`COMMODITIES`: ``GOLD``, ``Silver``, ``USOIL``, ...; its official Go
example subscribes ``GOLD``). Their prices stay those of their shape.

``seq`` is one counter per code, shared by trades and books, strictly
increasing and starting at ``epoch_seconds * 10**6 + 1`` like the documented
example (``1605509068000001``). No clock is read here: callers pass the
wall-clock seconds to stamp.
"""

from __future__ import annotations

import random
import re
from typing import Final

import attrs

_FOREX = re.compile(r"^[A-Z]{6}$")
_CRYPTO_SUFFIXES = ("USDT", "USD", "BTC", "ETH")
_FLOOR_UNITS = 100


def is_forex(code: str) -> bool:
    """Six uppercase letters, like ``EURUSD`` or ``XAUUSD``: forex or a metal.

    Such codes trade with no turnover and direction 0, and their books have one
    level without volumes (``SimConfig.fx_depth``)."""
    return bool(_FOREX.match(code))


#: The commodity codes of AllTick's code list (precious metals, oil, gas, base
#: metals), in its spelling: codes are case-sensitive there.
COMMODITIES: Final = frozenset(
    {
        "GOLD",
        "Silver",
        "Palladium",
        "Platinum",
        "USOIL",
        "UKOIL",
        "NGAS",
        "COPPER",
        "Aluminum",
        "Nickel",
    }
)


def top_of_book_only(code: str) -> bool:
    """Forex, metals and commodities: books of one level a side, without volumes
    (``SimConfig.fx_depth="top"``)."""
    return is_forex(code) or code in COMMODITIES


def format_units(units: int, decimals: int) -> str:
    """``format_units(65112, 2) == "651.12"``."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    units = abs(units)
    scale = 10**decimals
    return f"{sign}{units // scale}.{units % scale:0{decimals}d}"


@attrs.frozen(slots=True)
class Trade:
    """One trade, wire-ready strings for the decimal fields."""

    code: str
    seq: int
    time: float
    price: str
    volume: str
    turnover: str | None
    direction: int


@attrs.frozen(slots=True)
class Book:
    """One order-book snapshot: ``(price, volume)`` strings, best level first."""

    code: str
    seq: int
    time: float
    bids: tuple[tuple[str, str], ...]
    asks: tuple[tuple[str, str], ...]


@attrs.define(slots=True, eq=False)
class _Instrument:
    code: str
    rng: random.Random
    decimals: int
    units: int
    seq: int
    kind: str  # "forex" | "crypto" | "stock"
    volume_decimals: int

    def step(self) -> int:
        size = max(1, self.units // 5000)
        self.units += self.rng.choice((-2, -1, -1, 0, 1, 1, 2)) * size
        if self.units < _FLOOR_UNITS:
            self.units = 2 * _FLOOR_UNITS - self.units
        return self.units

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def volume_units(self) -> int:
        if self.kind == "stock":
            return self.rng.randint(1, 50) * 100
        if self.kind == "forex":
            return self.rng.randint(1, 100)
        return self.rng.randint(1, 50_000)


class Market:
    """Lazily creates one walking instrument per code; see the module docstring."""

    def __init__(self, seed: int, epoch: float) -> None:
        self._seed = seed
        self._seq_base = int(epoch) * 1_000_000
        self._instruments: dict[str, _Instrument] = {}

    def _get(self, code: str) -> _Instrument:
        inst = self._instruments.get(code)
        if inst is None:
            rng = random.Random(f"{self._seed}:market:{code}")
            if is_forex(code):
                kind, decimals, volume_decimals = "forex", 3 if code.endswith("JPY") else 5, 0
                start = rng.uniform(100.0, 160.0) if decimals == 3 else rng.uniform(0.5, 2.0)
            elif code.upper().endswith(_CRYPTO_SUFFIXES):
                kind, decimals, volume_decimals = "crypto", 2, 4
                start = rng.uniform(100.0, 60_000.0)
            else:
                kind, decimals, volume_decimals = "stock", 2, 0
                start = rng.uniform(10.0, 1_000.0)
            units = max(_FLOOR_UNITS * 10, round(start * 10**decimals))
            inst = _Instrument(code, rng, decimals, units, self._seq_base, kind, volume_decimals)
            self._instruments[code] = inst
        return inst

    def trade(self, code: str, wall_time: float) -> Trade:
        """The next trade of ``code``, stamped ``wall_time`` (seconds since the epoch)."""
        inst = self._get(code)
        units = inst.step()
        vol = inst.volume_units()
        price = format_units(units, inst.decimals)
        volume = format_units(vol, inst.volume_decimals)
        if inst.kind == "forex":
            return Trade(code, inst.next_seq(), wall_time, price, volume, None, 0)
        turnover = format_units(units * vol, inst.decimals + inst.volume_decimals)
        direction = inst.rng.choice((1, 1, 2, 2, 0))
        return Trade(code, inst.next_seq(), wall_time, price, volume, turnover, direction)

    def book(self, code: str, levels: int, wall_time: float) -> Book:
        """The next ``levels``-deep book of ``code`` around its current price."""
        inst = self._get(code)
        mid = inst.step()
        spread = max(1, mid // 10_000)
        bids = []
        asks = []
        for level in range(levels):
            bid = max(1, mid - spread - level * spread)
            ask = mid + spread + level * spread
            bids.append(
                (
                    format_units(bid, inst.decimals),
                    format_units(inst.volume_units(), inst.volume_decimals),
                )
            )
            asks.append(
                (
                    format_units(ask, inst.decimals),
                    format_units(inst.volume_units(), inst.volume_decimals),
                )
            )
        return Book(code, inst.next_seq(), wall_time, tuple(bids), tuple(asks))
