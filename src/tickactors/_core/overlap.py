"""Make-before-break, sans-I/O: when to replace a connection, and each tick once meanwhile.

A connection is replaced before the venue cuts it (Binance-style 24 h limits, AllTick's
"no visible cause at all") or when the venue announces a shutdown: a replacement opens,
subscribes the same symbols and proves itself with first data for every one of them;
only then does the old one close. Three small pieces here, the actors do the rest:

:func:`rotation_due`
    when a connection opened at ``opened_at`` should be replaced: ``max_age`` shortened by
    up to ``jitter`` of itself, so that connections opened together do not all rotate at
    once. The caller draws ``uniform`` (0 <= u < 1) from its seeded random source.
:class:`Handover`
    the replacement's proof: the symbols (per kind) still waiting for their first data,
    and the deadline after which the handover goes ahead anyway (a symbol that does not
    trade must not keep two connections open forever); ``missing`` says which ones never
    showed, and ``shortfall`` why the handover went ahead without them (the patience ran
    out, or the old connection closed first), for the event that reports it.
:class:`OverlapFilter`
    while both connections stream, every item is delivered once. Items are keyed by the
    venue's sequence number where they carry one, else by their content (all fields but
    ``received_at`` and ``fields``). Counting, not a set: when one connection has seen a
    key ``n`` times, the user has it ``n`` times, never more, so two real trades that look
    alike are both kept when either connection carried both. Memory is bounded: the
    oldest keys are forgotten first.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import attrs

from .._values import BookSnapshot, MarketData, Quote, StreamKind, Tick


def rotation_due(opened_at: float, max_age: float, jitter: float, uniform: float) -> float:
    """When to start replacing a connection opened at ``opened_at``."""
    if not max_age > 0 or not 0 <= jitter < 1 or not 0 <= uniform < 1:
        raise ValueError("max_age > 0, 0 <= jitter < 1 and 0 <= uniform < 1")
    return opened_at + max_age * (1.0 - jitter * uniform)


@attrs.frozen
class RotationPolicy:
    """When a feed replaces its connections, and how long a replacement may take to prove itself.

    ``max_age``: no connection reaches this age (None: rotate only on a venue's shutdown
    notice). A rotation can take up to ``lead`` = ``connect_timeout + patience`` (connect,
    then first data for every symbol), so it starts at :func:`rotation_due` for
    ``max_age - lead`` with ``jitter``: between ``(1 - jitter)`` and all of it. A failed
    rotation (no spare connection, a refused connect, a replacement that died) is tried
    again after :meth:`retry_after`.
    """

    max_age: float | None
    jitter: float = 0.1
    patience: float = 30.0
    connect_timeout: float = 10.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ValueError(f"rotation jitter is in [0, 1), got {self.jitter!r}")
        if not (math.isfinite(self.patience) and self.patience > 0):
            raise ValueError(f"rotation patience is a number of seconds > 0, got {self.patience!r}")
        if self.max_age is not None and not (
            math.isfinite(self.max_age) and self.max_age > self.lead
        ):
            raise ValueError(
                f"max_connection_age must be longer than connect_timeout + rotation_patience "
                f"({self.lead:g} s: the longest a rotation may take), got {self.max_age!r}"
            )

    @property
    def lead(self) -> float:
        return self.connect_timeout + self.patience

    def due(self, opened_at: float, uniform: float) -> float:
        """When to start replacing a connection opened at ``opened_at`` (inf: never)."""
        if self.max_age is None:
            return math.inf
        return rotation_due(opened_at, self.max_age - self.lead, self.jitter, uniform)

    def retry_after(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` failed rotations in a row."""
        return min(60.0, 3.0 * 2.0 ** max(failures - 1, 0))


class HandoverCut(enum.Enum):
    """Why a handover went ahead before the replacement had data for every symbol."""

    #: ``rotation_patience`` seconds passed
    PATIENCE = "patience"
    #: the old connection ended first (the venue closed it after a shutdown notice, a drop,
    #: a stale socket): there was nothing left to wait for
    OLD_CLOSED = "old_closed"


@attrs.frozen
class Shortfall:
    """A handover that went ahead without data for ``missing``: ``cut`` says why, ``waited``
    how long the replacement had (seconds)."""

    missing: dict[StreamKind, frozenset[str]]
    cut: HandoverCut
    waited: float
    patience: float

    @property
    def count(self) -> int:
        return sum(map(len, self.missing.values()))

    def message(self, old: int, new: int, old_end: str = "") -> str:
        """The event's text: what happened, in the words of what really did.

        ``old``/``new``: the connection numbers; ``old_end``: how the old one ended (only
        said when it closed first), such as ``closed by the peer (code 3000, ...)``.
        """
        if self.cut is HandoverCut.PATIENCE:
            return (
                f"no data for {self.count} symbol(s) within {self.patience:g} s; "
                f"closing connection {old} anyway"
            )
        how = f" ({old_end})" if old_end else ""
        return (
            f"connection {old} ended {self.waited:.1f} s into the handover{how}, before "
            f"connection {new} had data for {self.count} symbol(s); it takes over at once"
        )


class Handover:
    """A replacement connection proving itself: first data for every symbol it carries."""

    def __init__(
        self, symbols: Mapping[StreamKind, AbstractSet[str]], *, started_at: float, patience: float
    ) -> None:
        self._waiting = {kind: set(s) for kind, s in symbols.items() if s}
        self.started_at = started_at
        self.patience = patience
        self.deadline = started_at + patience

    def seen(self, items: Iterable[MarketData]) -> None:
        """The replacement delivered ``items``."""
        waiting = self._waiting
        if not waiting:
            return
        for item in items:
            symbols = waiting.get(item.kind)
            if symbols is not None:
                symbols.discard(item.symbol)
                if not symbols:
                    del waiting[item.kind]
                    if not waiting:
                        return

    def ready(self, now: float) -> bool:
        """Whether the old connection may close: every symbol showed, or patience ran out."""
        return not self._waiting or now >= self.deadline

    def missing(self) -> dict[StreamKind, frozenset[str]]:
        """The symbols that have not shown yet, per kind."""
        return {kind: frozenset(s) for kind, s in self._waiting.items()}

    def shortfall(self, now: float, *, old_closed: bool) -> Shortfall | None:
        """The handover ends at ``now``: None if every symbol showed, else what is missing
        and why it went ahead without it.

        ``old_closed``: the old connection had already ended. The patience counts only
        once it really ran out; an old connection that ended earlier is what cut the wait.
        """
        if not self._waiting:
            return None
        if now >= self.deadline:
            cut = HandoverCut.PATIENCE
        elif old_closed:
            cut = HandoverCut.OLD_CLOSED
        else:
            raise ValueError("the handover is not over: symbols missing, patience left, old open")
        return Shortfall(
            self.missing(), cut, waited=max(0.0, now - self.started_at), patience=self.patience
        )


def _key(item: MarketData) -> tuple[Any, ...]:
    if isinstance(item, Tick):
        if item.seq is not None:
            return (0, item.symbol, item.seq)
        return (1, item.symbol, item.price, item.volume, item.exchange_time)
    if isinstance(item, BookSnapshot):
        if item.seq is not None:
            return (2, item.symbol, item.seq)
        return (3, item.symbol, item.bids, item.asks, item.exchange_time)
    assert isinstance(item, Quote)
    return (
        4,
        item.symbol,
        item.bid,
        item.bid_size,
        item.offer,
        item.offer_size,
        item.last,
        item.last_size,
        item.total_volume,
        item.exchange_time,
    )


class OverlapFilter:
    """Every item once while two connections (or more) carry the same subscriptions."""

    def __init__(self, memory: int = 65_536) -> None:
        if memory < 1:
            raise ValueError("memory is at least 1 key")
        self.memory = memory
        # key -> [times delivered, times seen per connection...] as {connection: n}
        self._keys: OrderedDict[tuple[Any, ...], dict[int, int]] = OrderedDict()
        self.duplicates = 0
        self.forgotten = 0

    def admit(self, items: Sequence[MarketData], connection: int) -> list[MarketData]:
        """The items of ``connection``'s batch the user has not had yet, in order."""
        keys = self._keys
        out: list[MarketData] = []
        for item in items:
            key = _key(item)
            counts = keys.get(key)
            if counts is None:
                keys[key] = {connection: 1, -1: 1}  # -1: times delivered
                out.append(item)
                continue
            seen = counts.get(connection, 0) + 1
            counts[connection] = seen
            if seen > counts[-1]:
                counts[-1] = seen
                out.append(item)
            else:
                self.duplicates += 1
        while len(keys) > self.memory:
            keys.popitem(last=False)
            self.forgotten += 1
        return out

    def clear(self) -> None:
        """The overlap is over: forget every key."""
        self._keys.clear()
