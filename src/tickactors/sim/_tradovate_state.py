"""What every part of the simulated Tradovate venue shares, besides the :class:`Hub`.

One :class:`TradovateVenue` per simulator holds the contract universe, the
users and tokens, the outstanding penalty tickets and the random stream for
error-text variants. It is reachable as ``sim.tradovate`` (``None`` on the
AllTick venue), so a test can look up ``sim.tradovate.contracts.find("ESZ6")``
or mint a token with ``sim.tradovate.accounts.issue("alice")``.
"""

from __future__ import annotations

from typing import Any

from . import _tradovate_protocol as proto
from ._faults import Faults
from ._hub import Hub
from ._tradovate_accounts import Accounts
from ._tradovate_contracts import Contracts
from ._tradovate_penalty import PenaltyBox


class TradovateVenue:
    """Shared Tradovate state (see the module docstring)."""

    def __init__(self, hub: Hub, faults: Faults) -> None:
        self.hub = hub
        self.contracts = Contracts(hub.rng("tradovate:contracts"))
        self.accounts = Accounts(hub)
        self.penalties = PenaltyBox(hub, faults)
        self._error_rng = hub.rng("tradovate:errors")
        self._next_chart_id = 0

    def error(self, request_id: int | None, status: int, text: str) -> dict[str, Any]:
        """An error answer whose text follows ``SimConfig.error_text``."""
        shown = proto.error_text(text, self.hub.config.error_text, self._error_rng)
        return proto.error(request_id, status, shown)

    def new_chart_id(self) -> int:
        self._next_chart_id += 1
        return self._next_chart_id
