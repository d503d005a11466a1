"""The overlap of a make-before-break rotation, as the two sessions see it.

While a slot's old connection and its replacement both stream the same subscriptions,
both readers pass their batches through one :class:`Overlap`: the pure
:class:`~tickactors._core.overlap.OverlapFilter` lets each item through once (by the
venue's sequence number, else by content), and the replacement's items feed the
:class:`~tickactors._core.overlap.Handover` that proves it (first data for every
symbol). The supervisor waits for :attr:`Overlap.proved` before it closes the old one.

Only sessions of a slot in the middle of a rotation hold an ``Overlap``: the reader's
hot path pays one attribute test per batch otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from .._core.overlap import Handover, OverlapFilter
from .._values import MarketData, StreamKind

Groups = list[tuple[StreamKind, list[MarketData]]]


class Overlap:
    """Each item once across the sessions of one rotation, and the replacement's proof."""

    def __init__(self, memory: int = 65_536) -> None:
        self.filter = OverlapFilter(memory)
        self.handover: Handover | None = None
        self.replacement = 0  # the connection whose items prove it (0: none yet)
        self.proved = trio.Event()

    def prove(self, connection: int, handover: Handover) -> None:
        """``connection`` replaces the old one once ``handover`` is satisfied."""
        self.replacement = connection
        self.handover = handover
        if handover.ready(handover.started_at):
            self.proved.set()

    def admit(
        self, groups: Sequence[tuple[StreamKind, list[MarketData]]], connection: int, now: float
    ) -> Groups:
        """The items of ``groups`` (one reader's batch, by kind) the user has not had yet."""
        handover = self.handover
        if connection == self.replacement and handover is not None and not self.proved.is_set():
            for _, items in groups:
                handover.seen(items)
            if handover.ready(now):
                self.proved.set()
        out: Groups = []
        admit = self.filter.admit
        for kind, items in groups:
            kept = admit(items, connection)
            if kept:
                out.append((kind, kept))
        return out
