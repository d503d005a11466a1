"""What waits for a slow consumer, per stream kind: the hand-off's policies, sans-I/O.

The feed's readers hand market data to the user through one bounded hand-off. A user
slower than the venue must never make the feed grow without bound, and must not make it
stop reading either unless they asked for that. So each stream kind has its own lane
with an explicit policy:

``block`` (the default for trades)
    a FIFO lane of at most ``capacity`` items; when it is full the reader waits
    (backpressure: nothing is lost, the venue may drop a connection that stops reading,
    and the feed says so). One batch may overshoot the bound, never more.
``conflate`` (the default for books and quotes)
    the latest value per symbol: a newer item replaces the waiting one of its symbol in
    place, so the lane holds at most one item per symbol and the reader never waits.
    Every replaced item is counted as dropped for its symbol.
``drop-oldest``
    a FIFO lane of at most ``capacity`` items; the oldest are dropped to make room, the
    reader never waits. Every dropped item is counted for its symbol.

:class:`Lanes` keeps the lanes and the drop counts (``drops``: totals per
``"<kind>:<symbol>"``, the keys a ``LossReporter`` takes to announce gaps). The consumer
takes everything waiting in one call, lane by lane (trades, then books, then quotes):
within a kind the order is the venue's; across kinds each item carries ``received_at``.
A consumer of one kind takes that kind's lane alone (:meth:`Lanes.take_kind`) and leaves
the others to their own consumers.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

from .._values import BOOK, QUOTES, TRADES, MarketData, StreamKind


class Policy(enum.Enum):
    """What a lane does when its consumer is slow. See the module docstring."""

    BLOCK = "block"
    CONFLATE = "conflate"
    DROP_OLDEST = "drop-oldest"


DEFAULT_POLICIES: Mapping[StreamKind, Policy] = {
    TRADES: Policy.BLOCK,
    BOOK: Policy.CONFLATE,
    QUOTES: Policy.CONFLATE,
}


def parse_policies(text: str) -> dict[StreamKind, Policy]:
    """``"trades=block,book=conflate"`` (the runner's ``--policy``); kinds left out keep
    their default. ``ValueError`` names what it cannot read."""
    out = dict(DEFAULT_POLICIES)
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind_text, sep, policy_text = part.partition("=")
        try:
            kind = StreamKind(kind_text.strip())
            policy = Policy(policy_text.strip())
        except ValueError:
            raise ValueError(
                f"a policy is KIND=POLICY with KIND in {[k.value for k in StreamKind]} and "
                f"POLICY in {[p.value for p in Policy]}, not {part[:40]!r}"
            ) from None
        if not sep:
            raise ValueError(f"a policy is KIND=POLICY, not {part[:40]!r}")
        out[kind] = policy
    return out


class _Fifo:
    __slots__ = ("items", "policy")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.items: deque[MarketData] = deque()

    def __len__(self) -> int:
        return len(self.items)


class _Latest:
    __slots__ = ("items", "policy")

    def __init__(self) -> None:
        self.policy = Policy.CONFLATE
        self.items: dict[str, MarketData] = {}

    def __len__(self) -> int:
        return len(self.items)


class Lanes:
    """One lane per stream kind, each with its policy; drop counts per kind and symbol."""

    def __init__(
        self, capacity: int, policies: Mapping[StreamKind, Policy] = DEFAULT_POLICIES
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity is at least 1")
        self.capacity = capacity
        self.policies = {**DEFAULT_POLICIES, **policies}
        self._lanes: dict[StreamKind, _Fifo | _Latest] = {
            kind: _Latest() if policy is Policy.CONFLATE else _Fifo(policy)
            for kind, policy in self.policies.items()
        }
        #: Items dropped so far, by ``"<kind>:<symbol>"`` (only grows).
        self.drops: dict[str, int] = {}
        self.dropped = 0
        self.put_count = 0

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def __bool__(self) -> bool:
        for lane in self._lanes.values():  # noqa: SIM110 (no generator: asked every batch)
            if lane.items:
                return True
        return False

    def full(self, kinds: Iterable[StreamKind]) -> bool:
        """Whether a reader holding items of ``kinds`` must wait: a ``block`` lane is full."""
        lanes = self._lanes
        for kind in kinds:
            lane = lanes[kind]
            if lane.policy is Policy.BLOCK and len(lane) >= self.capacity:
                return True
        return False

    def put(self, kind: StreamKind, items: Sequence[MarketData]) -> int:
        """Add ``items`` (all of ``kind``) by its lane's policy; returns how many were dropped."""
        if not items:
            return 0
        self.put_count += len(items)
        lane = self._lanes[kind]
        if isinstance(lane, _Latest):
            latest = lane.items
            dropped = 0
            for item in items:
                symbol = item.symbol
                if symbol in latest:
                    dropped += 1
                    self._drop(kind, symbol)
                latest[symbol] = item  # a replaced key keeps its place
            return dropped
        fifo = lane.items
        fifo.extend(items)
        if lane.policy is Policy.BLOCK:
            return 0
        dropped = 0
        while len(fifo) > self.capacity:
            self._drop(kind, fifo.popleft().symbol)
            dropped += 1
        return dropped

    def _drop(self, kind: StreamKind, symbol: str) -> None:
        key = f"{kind.value}:{symbol}"
        self.drops[key] = self.drops.get(key, 0) + 1
        self.dropped += 1

    def take(self, max_items: int | None = None) -> list[MarketData]:
        """Everything waiting (at most ``max_items``), lane by lane, oldest first."""
        out: list[MarketData] = []
        for lane in self._lanes.values():
            room = None if max_items is None else max_items - len(out)
            if room == 0:
                break
            if isinstance(lane, _Latest):
                if room is None or len(lane.items) <= room:
                    out += lane.items.values()
                    lane.items.clear()
                else:
                    for symbol in list(lane.items)[:room]:
                        out.append(lane.items.pop(symbol))
            elif room is None or len(lane.items) <= room:
                out += lane.items
                lane.items.clear()
            else:
                out += (lane.items.popleft() for _ in range(room))
        return out

    def lane(self, kind: StreamKind) -> Sized:
        """What waits in ``kind``'s lane (true while anything does)."""
        return self._lanes[kind]

    def take_kind(self, kind: StreamKind, max_items: int | None = None) -> list[MarketData]:
        """Everything waiting in ``kind``'s lane (at most ``max_items``), oldest first."""
        lane = self._lanes[kind]
        if isinstance(lane, _Latest):
            latest = lane.items
            if max_items is None or len(latest) <= max_items:
                out = list(latest.values())
                latest.clear()
                return out
            return [latest.pop(symbol) for symbol in list(latest)[:max_items]]
        fifo = lane.items
        if max_items is None or len(fifo) <= max_items:
            out = list(fifo)
            fifo.clear()
            return out
        return [fifo.popleft() for _ in range(max_items)]

    def statistics(self) -> dict[str, Any]:
        """Counters, and per kind what waits and what was dropped (added up from
        ``drops`` here, once per call, so that a drop costs no more than it did)."""
        dropped_by_kind = dict.fromkeys((kind.value for kind in self._lanes), 0)
        for key, count in self.drops.items():
            kind = key.partition(":")[0]
            dropped_by_kind[kind] = dropped_by_kind.get(kind, 0) + count
        return {
            "waiting": len(self),
            "capacity": self.capacity,
            "policies": {kind.value: policy.value for kind, policy in self.policies.items()},
            "put": self.put_count,
            "dropped": self.dropped,
            "waiting_by_kind": {kind.value: len(lane) for kind, lane in self._lanes.items()},
            "dropped_by_kind": dropped_by_kind,
        }
