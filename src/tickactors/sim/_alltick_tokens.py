"""AllTick's per-token rules: connections per token, and request spacing across them.

Theory of operation
-------------------
One :class:`TokenRules` per AllTick simulator. AllTick's limits by plan
(connections per token 1 / 1 / 3 / 10) and its rule "across several
connections of one token, keep 3 s between requests" come without a word on
what the venue does about a breach (``docs/venues.md``, AllTick, "Limits").
The simulator's picks:

- **Connections per token** (``SimConfig.max_connections_per_token``). A
  token's live connections are its connections in the hub that neither side
  has started to close (``closed_reason`` is None): a connection the client
  closed, or that the server is closing (kick, max age, ...), frees its slot
  at once, so a make-before-break client needs one spare slot, no more. One
  connection too many completes the WebSocket handshake (as a bad token does,
  so the refusal arrives in the venue's own words), then gets
  ``{"ret":429,"msg":"too many connections","cmd_id":0,"seq_id":0,...}`` and
  close frame 1008 "too many connections", and counts in
  ``stats.closes["connection_limit"]``. It never becomes a connection: no
  slot, no id in ``sim.connections``. The other connections are untouched
  (AllTick is not Tradovate: nobody's oldest connection is closed).
- **Token-wide spacing** (``SimConfig.token_rate_interval``). It covers the
  subscription requests, 22002, 22004 and 22006 (valid or not), and not the
  heartbeat 22000: ten connections each owing a heartbeat every 10 s could
  not otherwise keep 3 s apart. A subscription request violates it when its
  token has two or more live connections (the requester included) and the
  token's previous *counted* subscription request, on whichever connection,
  came less than the interval before. So a token with one connection only
  answers to the per-connection rule, whatever the interval. It runs after
  the per-connection rule, in the same machinery
  (``AllTickConnection._on_message``): a violation changes nothing, moves
  neither clock, is counted in ``stats.violations["token_rate"]`` and in the
  connection's ``rate_violations`` (one count for both rules), and is answered
  605, or 606 and close frame 1008 once that count reaches
  ``kick_after_violations``.
"""

from __future__ import annotations

from typing import Final

from . import _alltick_protocol as proto
from ._hub import Hub

#: The requests the token-wide spacing covers (not the heartbeat).
COUNTED: Final = frozenset((proto.SUB_DEPTH, proto.SUB_TRADES, proto.CANCEL))
#: Float noise forgiven: a request ``interval`` after the last one is on time even when
#: ``now - last`` rounds to a hair below it (``9.0957... - 6.0957...`` can).
SLACK: Final = 1e-9


def too_soon(last: float | None, now: float, interval: float) -> bool:
    """Whether ``now`` comes less than ``interval`` after ``last`` (both rate rules)."""
    return last is not None and now - last < interval - SLACK


class TokenRules:
    """Per-token state of one AllTick simulator (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._last_request: dict[str, float] = {}

    def live(self, token: str) -> int:
        """Connections of ``token`` that neither side has started to close."""
        return sum(
            1
            for conn in self._hub.connections.values()
            if conn.closed_reason is None and conn.uses_token(token)
        )

    def admits_connection(self, token: str) -> bool:
        """Whether one more connection of ``token`` fits under the per-token limit."""
        limit = self._hub.config.max_connections_per_token
        return limit is None or self.live(token) < limit

    def request_allowed(self, token: str, cmd_id: int | None, now: float) -> bool:
        """Whether a request keeps the token-wide spacing; an allowed counted one moves it."""
        interval = self._hub.config.token_rate_interval
        if interval is None or cmd_id not in COUNTED:
            return True
        if too_soon(self._last_request.get(token), now, interval) and self.live(token) >= 2:
            return False
        self._last_request[token] = now
        return True
