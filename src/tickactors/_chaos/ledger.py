"""The chaos soak's bookkeeping: which faults were injected, detected and recovered.

Sans-I/O like the core: the soak feeds it what happened and when (times on the
feed's clock), and it answers with figures. It never reads a clock.

A fault is **recovered** at the first *healthy point* that satisfies all of:

- it comes at or after the fault's effective end: the injection for a one-shot
  fault, the end of a standing fault's window, the moment the simulator used up
  a counted fault (the soak reports it with :meth:`Ledger.fault_ended`);
- for a fault that must cost the connection (a stall, a drop, a kick, ...), the
  feed is on a newer connection than the one live at the injection: a fault
  "recovered" on the very socket it killed was never noticed;
- for a silenced symbol still desired, a tick of that symbol is in the batch.

A healthy point is a batch of ticks delivered while the feed was converged
(every desired symbol confirmed, except those the venue rejected). Recovery
time is measured from the injection, as the issue defines it: fault -> full
desired set confirmed -> next tick delivered.

A stall is **detected** at the first ``stale`` health event after it was
injected; the soak injects a stall only while the feed is healthy and injects
nothing else until it recovered, so the stale event is the stall's own.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs


@attrs.define(slots=True)
class FaultRecord:
    """One injected fault and what became of it."""

    id: int
    kind: str
    injected: float
    connection: int  # the feed's connection number when it was injected
    needs_new_connection: bool
    ends: float | None  # None: a counted fault the simulator has not used up yet
    symbol: str | None = None  # silence_symbol: the silenced code
    detected: float | None = None
    recovered: float | None = None

    @property
    def recovery(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.injected

    @property
    def detection(self) -> float | None:
        return None if self.detected is None else self.detected - self.injected


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


class Ledger:
    """Faults, detections, recoveries and the invariants' counters of one soak."""

    def __init__(self) -> None:
        self.faults: list[FaultRecord] = []
        self._pending: list[FaultRecord] = []  # not recovered yet: what each batch checks
        self.ghost_ticks = 0
        self.ticks_delivered = 0
        self.healthy_points = 0
        self.overdue_requests: set[int] = set()
        self.user_requests_overdue = 0
        self.unhandled: list[str] = []

    # ---- faults ----------------------------------------------------------------

    def fault_injected(
        self,
        kind: str,
        now: float,
        *,
        connection: int,
        needs_new_connection: bool,
        lasts: float | None = 0.0,
        symbol: str | None = None,
    ) -> FaultRecord:
        """Record a fault; ``lasts``: its window in seconds, None while a counted one is armed."""
        ends = None if lasts is None else now + lasts
        record = FaultRecord(
            len(self.faults), kind, now, connection, needs_new_connection, ends, symbol
        )
        self.faults.append(record)
        self._pending.append(record)
        return record

    def fault_ended(self, record: FaultRecord, now: float) -> None:
        """A counted fault was used up (or disarmed) at ``now``."""
        if record.ends is None:
            record.ends = now

    def faults_stopped(self, now: float) -> None:
        """Every fault was switched off at ``now``: armed ones disarmed, windows cut short."""
        for record in self._pending:
            if record.ends is None or record.ends > now:
                record.ends = now

    def stale_detected(self, now: float) -> None:
        for record in self._pending:
            if record.kind == "stall" and record.detected is None and record.injected <= now:
                record.detected = now

    def pending(self) -> list[FaultRecord]:
        return list(self._pending)

    # ---- what the user saw -----------------------------------------------------

    def delivered(
        self,
        now: float,
        symbols: Iterable[str],
        *,
        ghosts: int,
        converged: bool,
        connection: int,
        desired: frozenset[str],
    ) -> None:
        """A batch reached the user: ``symbols`` its ticks' symbols, ``ghosts`` how many
        of them were not desired when delivered."""
        seen = frozenset(symbols)
        self.ghost_ticks += ghosts
        if not converged or not seen:
            return
        self.healthy_points += 1
        still: list[FaultRecord] = []
        for record in self._pending:
            if (
                record.ends is None
                or now < record.ends
                or (record.needs_new_connection and connection <= record.connection)
                or (
                    record.symbol is not None
                    and record.symbol in desired
                    and record.symbol not in seen
                )
            ):
                still.append(record)
            else:
                record.recovered = now
        self._pending = still

    def ticks(self, n: int) -> None:
        self.ticks_delivered += n

    def request_overdue(self, request_id: int) -> None:
        self.overdue_requests.add(request_id)

    def unhandled_exception(self, description: str) -> None:
        self.unhandled.append(description)

    # ---- figures ---------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        recoveries = [r.recovery for r in self.faults if r.recovery is not None]
        stalls = [r for r in self.faults if r.kind == "stall"]
        detections = [r.detection for r in stalls if r.detection is not None]
        by_kind: dict[str, list[float]] = {}
        for record in self.faults:
            if record.recovery is not None:
                by_kind.setdefault(record.kind, []).append(record.recovery)
        return {
            "faults_injected": len(self.faults),
            "faults_by_kind": dict(sorted(Counter(r.kind for r in self.faults).items())),
            "faults_recovered": len(recoveries),
            "faults_unrecovered": sorted(r.kind for r in self.faults if r.recovered is None),
            "stalls_undetected": sum(1 for r in stalls if r.detected is None),
            "detection_ms_p50": _ms(percentile(detections, 50)),
            "detection_ms_p99": _ms(percentile(detections, 99)),
            "recovery_ms_p50": _ms(percentile(recoveries, 50)),
            "recovery_ms_p99": _ms(percentile(recoveries, 99)),
            "recovery_ms_max_by_kind": {
                kind: _ms(max(values)) for kind, values in sorted(by_kind.items())
            },
            "ghost_ticks_delivered": self.ghost_ticks,
            "requests_past_deadline": len(self.overdue_requests) + self.user_requests_overdue,
            "unhandled_exceptions": len(self.unhandled),
            "ticks_delivered": self.ticks_delivered,
        }
