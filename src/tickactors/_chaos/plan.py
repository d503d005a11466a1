"""What the chaos soak injects: every fault the simulator knows, drawn from a shuffled deck.

Pure like the core: a :class:`FaultPlan` takes a random stream (``random.Random``) the caller
seeded and answers :class:`FaultSpec` values; the soak applies them to
``sim.faults``. A deck holds every kind once in a random order, so the first
``len(kinds)`` faults of a run cover every kind; the next deck follows.

Parameters are scaled to the feed's timings: a stall lasts 1.3-2x ``stale_after``
(shorter ones are not failures: the stream resumes before anyone may call it
dead); delayed answers come 0.3-1.5x ``request_timeout`` late (the slow ones
cross the deadline); windows (silence, ghost, maximum age) last a few seconds.

Left out on purpose, because a feed *must* stop on them rather than recover:
Tradovate's captcha tickets (``CaptchaRequiredError``: a human has to act) and
the quota shutdowns (``ConnectionQuotaReached``, ``IPQuotaReached``:
``VenueShutdownError``). Tests in tests/test_e2e_tradovate.py cover those.
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import Any, Final, Protocol

import attrs

#: Faults every venue's simulator knows.
COMMON_KINDS: Final = (
    "stall",
    "drop",
    "silence_symbol",
    "ghost",
    "lose_acks",
    "drop_requests",
    "delay_acks",
    "kick",
    "malformed",
    "accept_then_close",
    "hang_upgrade",
    "expire_token",
    "max_age",
)
TRADOVATE_KINDS: Final = ("p_ticket", "rate_limit_429", "shutdown", "close_frame_keep_open")

#: Faults that must cost the feed its connection (recovery needs a newer one).
NEEDS_NEW_CONNECTION: Final = frozenset(
    {
        "stall",
        "drop",
        "kick",
        "accept_then_close",
        "hang_upgrade",
        "expire_token",
        "max_age",
        "shutdown",
        "close_frame_keep_open",
    }
)
#: Faults armed for the next occurrences (requests, connections): they end when used up.
COUNTED: Final = frozenset(
    {
        "lose_acks",
        "drop_requests",
        "delay_acks",
        "accept_then_close",
        "hang_upgrade",
        "p_ticket",
        "rate_limit_429",
    }
)


def kinds_for(venue: str) -> tuple[str, ...]:
    return COMMON_KINDS + TRADOVATE_KINDS if venue == "tradovate" else COMMON_KINDS


@attrs.frozen(slots=True)
class FaultSpec:
    """One fault to inject: ``kind``, its parameters, and how long its window lasts.

    ``lasts``: seconds the fault holds (0 for one-shot faults), None for a counted
    fault (it ends when the simulator used it up).
    """

    kind: str
    params: dict[str, Any]
    lasts: float | None

    @property
    def needs_new_connection(self) -> bool:
        return self.kind in NEEDS_NEW_CONNECTION


class Draws(Protocol):
    """The part of ``random.Random`` a plan uses (the caller seeds it)."""

    def random(self) -> float: ...
    def uniform(self, a: float, b: float) -> float: ...
    def randint(self, a: int, b: int) -> int: ...
    def expovariate(self, lambd: float) -> float: ...
    def shuffle(self, x: MutableSequence[Any]) -> None: ...


class FaultPlan:
    """Draws the soak's faults from shuffled decks of ``kinds``."""

    def __init__(
        self,
        rng: Draws,
        kinds: tuple[str, ...],
        *,
        stale_after: float,
        request_timeout: float,
    ) -> None:
        if not kinds:
            raise ValueError("a fault plan needs at least one kind")
        self._rng = rng
        self._kinds = kinds
        self._deck: list[str] = []
        self._stale_after = stale_after
        self._request_timeout = request_timeout

    def next_kind(self) -> str:
        if not self._deck:
            self._deck = list(self._kinds)
            self._rng.shuffle(self._deck)
        return self._deck.pop()

    def gap(self, mean: float) -> float:
        """Seconds to wait before the next fault."""
        return self._rng.expovariate(1.0 / mean) if mean > 0 else 0.0

    def draw(self, kind: str, candidates: list[str]) -> FaultSpec:
        """The parameters of one ``kind`` fault; ``candidates``: symbols it may target."""
        rng = self._rng
        uniform = rng.uniform
        if kind == "stall":
            seconds = round(uniform(1.3, 2.0) * self._stale_after, 3)
            return FaultSpec(kind, {"duration": seconds}, seconds)
        # Always one draw for the symbol, so later draws do not depend on the candidates.
        pick = rng.random()
        symbol = sorted(candidates)[int(pick * len(candidates))] if candidates else None
        if kind == "silence_symbol":
            seconds = round(uniform(1.5, 3.0), 3)
            return FaultSpec(kind, {"symbol": symbol, "duration": seconds}, seconds)
        if kind == "ghost":
            duration, armed = round(uniform(1.0, 3.0), 3), round(uniform(1.0, 2.0), 3)
            params = {"symbol": symbol, "duration": duration, "armed_for": armed}
            return FaultSpec(kind, params, duration + armed)
        if kind == "max_age":
            window = round(uniform(4.0, 6.0), 3)
            return FaultSpec(kind, {"seconds": round(uniform(1.5, 3.0), 3)}, window)
        if kind == "delay_acks":
            seconds = round(uniform(0.3, 1.5) * self._request_timeout, 3)
            return FaultSpec(kind, {"seconds": seconds, "n": rng.randint(1, 2)}, None)
        if kind == "p_ticket":
            return FaultSpec(kind, {"n": 1, "p_time": round(uniform(1.0, 4.0), 3)}, None)
        if kind == "malformed":
            return FaultSpec(kind, {"n": rng.randint(1, 5)}, 0.0)
        if kind in ("lose_acks", "accept_then_close", "rate_limit_429"):
            return FaultSpec(kind, {"n": rng.randint(1, 2)}, None)
        if kind in ("drop_requests", "hang_upgrade"):
            return FaultSpec(kind, {"n": 1}, None)
        if kind == "shutdown":
            return FaultSpec(kind, {"reason_code": "Maintenance"}, 0.0)
        if kind == "close_frame_keep_open":
            return FaultSpec(kind, {"code": 3000, "reason": "Session closed"}, 0.0)
        if kind in ("drop", "kick", "expire_token"):
            return FaultSpec(kind, {}, 0.0)
        raise ValueError(f"no chaos plan for fault {kind!r}")
