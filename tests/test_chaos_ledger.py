"""The chaos soak's pure parts: what counts as recovered, detected, lost; the fault plan."""

from __future__ import annotations

import random

import pytest

from tickactors._chaos.ledger import Ledger, percentile
from tickactors._chaos.plan import COMMON_KINDS, COUNTED, TRADOVATE_KINDS, FaultPlan, kinds_for

HEALTHY = {"ghosts": 0, "converged": True, "connection": 1, "desired": frozenset({"A", "B"})}


def test_a_one_shot_fault_recovers_at_the_next_healthy_batch() -> None:
    ledger = Ledger()
    fault = ledger.fault_injected("malformed", 10.0, connection=1, needs_new_connection=False)
    ledger.delivered(10.5, ["A"], **HEALTHY)
    assert fault.recovery == pytest.approx(0.5)
    assert ledger.summary()["faults_recovered"] == 1


def test_a_batch_while_not_converged_is_no_recovery() -> None:
    ledger = Ledger()
    fault = ledger.fault_injected("lose_acks", 1.0, connection=1, needs_new_connection=False)
    ledger.delivered(2.0, ["A"], **{**HEALTHY, "converged": False})
    assert fault.recovered is None
    assert ledger.summary()["faults_unrecovered"] == ["lose_acks"]


def test_a_fault_that_must_cost_the_connection_needs_a_newer_one() -> None:
    ledger = Ledger()
    stall = ledger.fault_injected("stall", 5.0, connection=3, needs_new_connection=True, lasts=4.0)
    ledger.delivered(10.0, ["A"], **{**HEALTHY, "connection": 3})  # same socket: never noticed
    assert stall.recovered is None
    ledger.delivered(11.0, ["A"], **{**HEALTHY, "connection": 4})
    assert stall.recovery == pytest.approx(6.0)


def test_a_standing_fault_recovers_only_after_its_window() -> None:
    ledger = Ledger()
    fault = ledger.fault_injected("ghost", 0.0, connection=1, needs_new_connection=False, lasts=3)
    ledger.delivered(2.9, ["A"], **HEALTHY)
    assert fault.recovered is None
    ledger.delivered(3.1, ["A"], **HEALTHY)
    assert fault.recovered == 3.1


def test_a_counted_fault_recovers_only_once_used_up() -> None:
    ledger = Ledger()
    fault = ledger.fault_injected(
        "drop_requests", 0.0, connection=1, needs_new_connection=False, lasts=None
    )
    ledger.delivered(1.0, ["A"], **HEALTHY)
    assert fault.recovered is None and ledger.pending() == [fault]
    ledger.fault_ended(fault, 2.0)
    ledger.delivered(2.5, ["A"], **HEALTHY)
    assert fault.recovery == 2.5


def test_a_silenced_symbol_needs_its_own_tick_while_desired() -> None:
    ledger = Ledger()
    fault = ledger.fault_injected(
        "silence_symbol", 0.0, connection=1, needs_new_connection=False, lasts=1.0, symbol="B"
    )
    ledger.delivered(2.0, ["A"], **HEALTHY)
    assert fault.recovered is None
    ledger.delivered(3.0, ["A", "B"], **HEALTHY)
    assert fault.recovered == 3.0
    other = ledger.fault_injected(
        "silence_symbol", 4.0, connection=1, needs_new_connection=False, lasts=1.0, symbol="C"
    )
    ledger.delivered(5.5, ["A"], **HEALTHY)  # C is no longer desired: any tick will do
    assert other.recovered == 5.5


def test_stall_detection_and_ghost_ticks_are_counted() -> None:
    ledger = Ledger()
    stall = ledger.fault_injected("stall", 1.0, connection=1, needs_new_connection=True, lasts=6.0)
    ledger.stale_detected(0.5)  # before the stall: not its detection
    assert stall.detected is None
    ledger.stale_detected(5.0)
    ledger.stale_detected(6.0)
    ledger.delivered(6.5, ["A", "Z"], **{**HEALTHY, "ghosts": 1})
    summary = ledger.summary()
    assert summary["detection_ms_p50"] == 4000.0
    assert summary["stalls_undetected"] == 0
    assert summary["ghost_ticks_delivered"] == 1


def test_overdue_requests_count_once_each() -> None:
    ledger = Ledger()
    for request_id in (7, 7, 9):
        ledger.request_overdue(request_id)
    ledger.user_requests_overdue = 1
    assert ledger.summary()["requests_past_deadline"] == 3


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
def test_the_first_deck_holds_every_kind_once(venue: str) -> None:
    kinds = kinds_for(venue)
    plan = FaultPlan(random.Random(1), kinds, stale_after=4.0, request_timeout=2.0)
    first = [plan.next_kind() for _ in kinds]
    assert sorted(first) == sorted(kinds)
    assert (
        set(TRADOVATE_KINDS) <= set(kinds)
        if venue == "tradovate"
        else set(kinds) == set(COMMON_KINDS)
    )


def test_every_kind_has_parameters_and_stalls_outlast_stale_after() -> None:
    plan = FaultPlan(random.Random(2), kinds_for("tradovate"), stale_after=4.0, request_timeout=2.0)
    for _ in range(200):
        for kind in kinds_for("tradovate"):
            spec = plan.draw(kind, ["A", "B"])
            assert (spec.lasts is None) == (kind in COUNTED)
            if kind == "stall":
                assert spec.params["duration"] > 4.0 * 1.29
    with pytest.raises(ValueError, match="no chaos plan"):
        plan.draw("captcha", [])


def test_the_same_seed_draws_the_same_faults_whatever_the_candidates() -> None:
    def draws(candidates: list[str]) -> list[tuple[str, float | None]]:
        plan = FaultPlan(
            random.Random(5), kinds_for("alltick"), stale_after=4.0, request_timeout=2.0
        )
        return [
            (spec.kind, spec.lasts)
            for spec in (plan.draw(plan.next_kind(), candidates) for _ in range(40))
        ]

    assert draws([]) == draws(["A", "B", "C"])


def test_stopping_the_faults_ends_every_window_and_armed_fault_now() -> None:
    ledger = Ledger()
    armed = ledger.fault_injected(
        "lose_acks", 1.0, connection=1, needs_new_connection=False, lasts=None
    )
    window = ledger.fault_injected("max_age", 2.0, connection=1, needs_new_connection=True, lasts=9)
    done = ledger.fault_injected("malformed", 3.0, connection=1, needs_new_connection=False)
    ledger.faults_stopped(5.0)
    assert (armed.ends, window.ends, done.ends) == (5.0, 5.0, 3.0)
