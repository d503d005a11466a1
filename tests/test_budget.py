from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._core.budget import BudgetExceeded, BudgetStatistics, OutboundBudget


def test_one_frame_per_second_alltick() -> None:
    budget = OutboundBudget(frames=1, per=1.0, margin=0.05)
    assert budget.next_free(10.0) == 10.0
    budget.consume(10.0)
    assert budget.next_free(10.0) == 11.05
    assert budget.next_free(11.0) == 11.05
    assert not budget.try_consume(11.049)
    assert budget.try_consume(11.05)
    assert budget.next_free(11.05) == 11.05 + 1.05  # 12.100000000000001: exact float
    assert budget.statistics().sent == 2


def test_consume_too_early_is_a_programming_error() -> None:
    budget = OutboundBudget(frames=1, per=1.0)
    budget.consume(0.0)
    with pytest.raises(BudgetExceeded, match=r"frees only at 1\.0"):
        budget.consume(0.5)
    assert issubclass(BudgetExceeded, RuntimeError)
    assert budget.statistics().sent == 1  # the refused frame is not recorded


def test_sliding_window_of_several_frames() -> None:
    budget = OutboundBudget(frames=3, per=2.0)
    for t in (0.0, 0.5, 1.0):
        budget.consume(t)
    assert budget.next_free(1.5) == 2.0  # the oldest of the last 3 + 2 s
    budget.consume(2.0)
    assert budget.next_free(2.0) == 2.5
    budget.consume(2.5)
    assert budget.next_free(2.5) == 3.0
    budget.consume(3.0)
    assert budget.next_free(3.0) == 4.0


def test_heartbeats_count_like_any_frame() -> None:
    budget = OutboundBudget(frames=1, per=1.0)
    budget.consume(0.0)  # heartbeat
    assert budget.next_free(0.2) == 1.0  # the subscribe must wait


def test_next_deadline_only_when_someone_waits() -> None:
    budget = OutboundBudget(frames=1, per=1.0)
    assert budget.next_deadline() is None
    budget.consume(0.0)
    assert budget.next_deadline() is None  # full, but nobody is waiting
    assert budget.next_free(0.25) == 1.0
    assert budget.next_deadline() == 1.0
    budget.consume(1.0)
    assert budget.next_deadline() is None


def test_statistics_count_waits() -> None:
    budget = OutboundBudget(frames=1, per=1.0)
    budget.consume(0.0)
    assert not budget.try_consume(0.25)
    assert not budget.try_consume(0.5)
    budget.consume(1.0)
    budget.consume(5.0)  # free: no wait
    assert budget.statistics() == BudgetStatistics(
        sent=3, waited=1, waited_seconds=0.75, frames=1, per=1.0, margin=0.0
    )


def test_time_going_backwards_is_rejected() -> None:
    budget = OutboundBudget(frames=2, per=1.0)
    budget.consume(5.0)
    with pytest.raises(ValueError, match="backwards"):
        budget.consume(4.0)


@pytest.mark.parametrize(
    "kwargs", [{"frames": 0}, {"per": 0.0}, {"per": float("inf")}, {"margin": -0.1}]
)
def test_invalid_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OutboundBudget(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    frames=st.integers(1, 5),
    per=st.floats(0.01, 10.0),
    margin=st.floats(0.0, 1.0),
    steps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=60),
)
def test_no_window_holds_more_than_frames(
    frames: int, per: float, margin: float, steps: list[float]
) -> None:
    budget = OutboundBudget(frames=frames, per=per, margin=margin)
    now = 0.0
    sent: list[float] = []
    for step in steps:
        now += step
        if budget.next_free(now) <= now:
            budget.consume(now)
            sent.append(now)
        else:
            assert not budget.try_consume(now)
    # Any half-open window [t, t + per) holding frames + 1 sends would contain some
    # s[i] .. s[i + frames] with s[i + frames] < s[i] + per.
    for i in range(len(sent) - frames):
        assert sent[i + frames] >= sent[i] + per
    assert budget.statistics().sent == len(sent)


@settings(max_examples=100, deadline=None)
@given(frames=st.integers(1, 4), per=st.floats(0.01, 5.0), count=st.integers(1, 30))
def test_sending_at_next_free_is_always_allowed(frames: int, per: float, count: int) -> None:
    budget = OutboundBudget(frames=frames, per=per, margin=0.05)
    now = 0.0
    for _ in range(count):
        now = budget.next_free(now)
        budget.consume(now)
