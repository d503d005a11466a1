"""Tradovate penalty tickets: issue them on demand, redeem the resends.

Theory of operation
-------------------
``faults.p_ticket(n, p_time, captcha)`` arms the next *n* requests. When one
of them arrives, :meth:`PenaltyBox.gate` does not let it through: it files a
ticket (a seeded random string) for the request's *fingerprint* (endpoint,
query and body with any ``"p-ticket"`` key taken out, keys sorted) and the
caller answers ``{"p-ticket": T, "p-time": P, "p-captcha": C}`` without
applying the request. A resend carrying ``"p-ticket": T`` in its JSON body:

- after ``p-time`` has passed: goes through (the ticket is used up), whatever
  else is armed;
- sooner: gets a fresh ticket with the same ``p-time`` and ``p-captcha``
  (counted as a ``penalty_ignored`` violation);
- with an unknown or used-up ticket, or for a different request: the caller
  answers 400 (the sim's pick).

Captcha tickets (``p-captcha: true``) follow the same rules; the sim cannot
check that a person solved a captcha, so waiting ``p-time`` (default 3600 s)
is what redeems them. Tickets are shared by every socket and by REST (a
resend may come on another connection). Authorize requests never get a
ticket: their body is the token, so no resend could carry one.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import trio

from ._faults import Faults
from ._hub import Hub


@attrs.frozen(slots=True)
class Issued:
    """A ticket to send instead of applying the request."""

    ticket: str
    p_time: float
    captcha: bool
    violation: bool  # True: a too-early resend


@attrs.frozen(slots=True)
class _Ticket:
    fingerprint: str
    due: float
    p_time: float
    captcha: bool


def fingerprint(endpoint: str, query: str, body: Any) -> str:
    """What makes two requests "the identical request" (see the module docstring)."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "p-ticket"}
    if body is None or body == "" or body == {}:
        body = {}  # a query-only request resent with only the ticket in its body is identical
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
    return f"{endpoint.lower()}\n{query}\n{canonical}"


class PenaltyBox:
    """Outstanding penalty tickets of one simulator."""

    def __init__(self, hub: Hub, faults: Faults) -> None:
        self._hub, self._faults = hub, faults
        self._rng = hub.rng("tradovate:tickets")
        self.tickets: dict[str, _Ticket] = {}

    def _issue(self, print_: str, p_time: float, captcha: bool, violation: bool) -> Issued:
        ticket = f"{self._rng.getrandbits(64):016x}"
        self.tickets[ticket] = _Ticket(print_, trio.current_time() + p_time, p_time, captcha)
        return Issued(ticket, p_time, captcha, violation)

    def gate(self, endpoint: str, query: str, body: Any) -> Issued | str | None:
        """None: apply the request; :class:`Issued`: answer with it; ``str``: answer 400."""
        print_ = fingerprint(endpoint, query, body)
        presented = body.get("p-ticket") if isinstance(body, dict) else None
        if presented is not None:
            filed = self.tickets.pop(str(presented), None)
            if filed is None:
                return "Unknown or used penalty ticket"
            if filed.fingerprint != print_:
                self.tickets[str(presented)] = filed
                return "Penalty ticket does not match the request"
            if trio.current_time() < filed.due:
                self._hub.stats.violations["penalty_ignored"] += 1
                return self._issue(print_, filed.p_time, filed.captcha, True)
            return None
        armed = self._faults.take_p_ticket()
        if armed is None:
            return None
        return self._issue(print_, armed[0], armed[1], False)
