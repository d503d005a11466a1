"""A session's hand-over of decoded market data: wanted items by kind, ghosts, gaps.

The reader's batch (``MarketBatch``: trades, books, quotes decoded from a run of frames)
becomes the groups the hand-off takes (``MarketQueue.put``, or the user's ``on_batch``:
``hand_off.py``): per stream kind, the items of symbols the feed wants, their symbols
stamped for the staleness monitor. Items of symbols nobody wants are ghosts: counted, and
reported to the reconciler, never delivered. What the hand-off drops for a slow consumer
is announced in ``gap`` events.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import trio

from .._core.histogram import HEARTBEAT_LATENESS_BUCKETS, Histogram
from .._core.reconciler import GhostSeen
from .._core.staleness import StalenessMonitor
from .._values import BOOK, QUOTES, TRADES, EventName, MarketData, StreamKind
from ..venues._dialect import MarketBatch
from .hand_off import MarketHandOff
from .health_bus import HealthBus
from .reconciling import Inbound

MAX_GHOST_SYMBOLS = 1024
_NOTHING_WANTED: frozenset[str] = frozenset()
_symbol_of: Callable[[MarketData], str] = operator.attrgetter("symbol")


class SessionCounters:
    """Counters that outlive one session (one per connection slot)."""

    def __init__(self) -> None:
        self.frames_received = 0
        self.frames_sent = 0
        self.ticks_delivered = 0
        self.ghost_ticks = 0
        self.decode_errors = 0
        #: Ghost ticks by symbol, for the first ``MAX_GHOST_SYMBOLS`` symbols seen (a venue
        #: inventing codes must not grow this for days); ``ghost_ticks`` counts them all.
        self.ghosts_by_symbol: dict[str, int] = {}
        #: How late the heartbeat sender woke against its grid, one per heartbeat.
        self.heartbeat_lateness = Histogram(HEARTBEAT_LATENESS_BUCKETS)


def wanted_groups(
    batch: MarketBatch,
    now: float,
    wanted_by_kind: Mapping[StreamKind, set[str]],
    monitor: StalenessMonitor,
    counters: SessionCounters,
    reconciler: trio.MemorySendChannel[Inbound],
) -> list[tuple[StreamKind, list[MarketData]]]:
    """The batch's wanted items by kind, symbols stamped; ghosts counted and reported.

    Synchronous on purpose: the hot path awaits nothing unless the queue is full.
    """
    trades = batch.trades
    if trades and not batch.books and not batch.quotes:
        # The usual batch: trades only, all wanted. One set of symbols, no per-item loop.
        symbols = set(map(_symbol_of, trades))
        if symbols <= wanted_by_kind.get(TRADES, _NOTHING_WANTED):
            monitor.symbols_seen(symbols, now)
            return [(TRADES, cast(list[MarketData], trades))]  # the batch is not reused
    seen = monitor.symbol_seen
    groups_out: list[tuple[StreamKind, list[MarketData]]] = []
    ghosts: set[tuple[StreamKind, str]] | None = None
    groups: tuple[tuple[StreamKind, Sequence[MarketData]], ...] = (
        (TRADES, trades),
        (BOOK, batch.books),
        (QUOTES, batch.quotes),
    )
    for kind, items in groups:
        if not items:
            continue
        # A kind the feed keeps no set for is wanted by nobody: all ghosts.
        wanted = wanted_by_kind.get(kind, _NOTHING_WANTED)
        symbols = set(map(_symbol_of, items))
        if symbols <= wanted:  # the usual batch: no ghost in it, no per-item loop
            groups_out.append((kind, list(items)))
            monitor.symbols_seen(symbols, now)
            continue
        out: list[MarketData] = []
        for item in items:
            symbol = item.symbol
            if symbol in wanted:
                out.append(item)
                seen(symbol, now)
            else:
                if ghosts is None:
                    ghosts = set()
                ghosts.add((kind, symbol))
                counters.ghost_ticks += 1
                by_symbol = counters.ghosts_by_symbol
                if symbol in by_symbol or len(by_symbol) < MAX_GHOST_SYMBOLS:
                    by_symbol[symbol] = by_symbol.get(symbol, 0) + 1
        if out:
            groups_out.append((kind, out))
    if ghosts:
        for kind, symbol in ghosts:
            reconciler.send_nowait(GhostSeen(kind, symbol))
    return groups_out


def report_gaps(market: MarketHandOff, health: HealthBus, connection: int, now: float) -> None:
    """Announce what the hand-off dropped for a slow consumer: at once, then once a second."""
    report = market.gap_report(now)
    if report is None:
        return
    streams: dict[str, dict[str, int]] = {}
    for key, count in report.since_last.items():
        kind, _, symbol = key.partition(":")
        streams.setdefault(kind, {})[symbol] = count
    health.emit(
        EventName.GAP,
        connection,
        f"{report.count} item(s) dropped for a slow consumer",
        dropped=report.count,
        total=report.total,
        streams=streams,
    )
