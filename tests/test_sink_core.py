"""The sinks' pure decisions: what to drop, when to cut a file, when to report a loss."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._core.loss_report import LossReporter
from tickactors._core.sink_buffer import DropOldestBuffer
from tickactors._core.sink_rotation import Cut, RotationPolicy

# -- DropOldestBuffer ------------------------------------------------------------------


def kind(item: int) -> str:
    return "even" if item % 2 == 0 else "odd"


def test_the_oldest_go_first_and_are_counted_by_kind():
    buffer = DropOldestBuffer(5, kind)
    assert buffer.put([1, 2, 3]) == 0
    assert buffer.put([4, 5, 6, 7]) == 2  # 1 and 2 go
    assert buffer.dropped == {"odd": 1, "even": 1}
    assert buffer.take(2) == [3, 4]
    assert buffer.take(10) == [5, 6, 7]
    assert len(buffer) == 0 and buffer.accepted == 7


def test_put_back_returns_items_to_the_front_where_they_are_dropped_first():
    buffer = DropOldestBuffer(4, kind)
    buffer.put([1, 2, 3])
    taken = buffer.take(2)
    buffer.put([4, 5])
    assert buffer.put_back(taken) == 1  # five waiting, bound four: the oldest (1) goes
    assert buffer.take(10) == [2, 3, 4, 5]
    assert buffer.dropped == {"odd": 1}
    assert buffer.accepted == 5  # a put-back is not a new entry


def test_discard_all_counts_what_was_left():
    buffer = DropOldestBuffer(10, kind)
    buffer.put([1, 2, 3])
    buffer.take(1)
    assert buffer.discard_all() == 2
    assert buffer.dropped == {"even": 1, "odd": 1} and len(buffer) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        DropOldestBuffer(0, kind)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 12),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.integers(0, 8)),
            st.tuples(st.just("take"), st.integers(0, 8)),
            st.tuples(st.just("back"), st.integers(0, 8)),
        ),
        max_size=40,
    ),
)
def test_the_buffer_behaves_like_a_bounded_list(capacity: int, steps: list[tuple[str, int]]):
    buffer = DropOldestBuffer(capacity, kind)
    model: list[int] = []
    dropped: list[int] = []
    taken: list[int] = []
    counter = 0
    for op, n in steps:
        if op == "put":
            batch = list(range(counter, counter + n))
            counter += n
            buffer.put(batch)
            model.extend(batch)
        elif op == "take":
            got = buffer.take(n)
            assert got == model[:n]
            model = model[n:]
            taken = got
        else:
            back, taken = taken[:n], []
            buffer.put_back(back)
            model[:0] = back
        excess = max(0, len(model) - capacity)
        dropped.extend(model[:excess])
        model = model[excess:]
        assert len(buffer) == len(model) <= capacity
    assert buffer.dropped_total == len(dropped)
    assert buffer.dropped == {
        k: sum(1 for d in dropped if kind(d) == k) for k in {*map(kind, dropped)}
    }
    assert buffer.take(1_000) == model


# -- RotationPolicy --------------------------------------------------------------------


def test_size_cuts_keep_every_file_within_the_limit():
    policy = RotationPolicy(max_bytes=100)
    policy.started(0.0)
    assert policy.cuts([40, 40], 1.0) == []
    assert policy.cuts([30, 50, 60, 10], 2.0) == [Cut(0, "size"), Cut(2, "size")]
    assert policy.size == 70  # 60 + 10 in the newest file


def test_a_line_longer_than_the_limit_gets_a_file_of_its_own():
    policy = RotationPolicy(max_bytes=100)
    policy.started(0.0)
    assert policy.cuts([10, 500, 10], 1.0) == [Cut(1, "size"), Cut(2, "size")]
    assert policy.cuts([500], 1.0) == [Cut(0, "size")]


def test_time_periods_are_aligned_to_the_clock():
    policy = RotationPolicy(max_seconds=3600)
    policy.started(1_000_000_123.0)  # 01:48:43 UTC (2001-09-09)
    assert policy.next_deadline() == 1_000_000_800.0  # 02:00:00, the next top of the hour
    assert policy.cuts([10], 1_000_000_799.9) == []
    assert policy.cuts([10], 1_000_000_800.0) == [Cut(0, "time")]
    assert policy.next_deadline() == 1_000_004_400.0


def test_an_idle_file_is_cut_when_its_period_ends_and_an_empty_one_is_not():
    policy = RotationPolicy(max_seconds=10)
    policy.started(3.0)
    assert policy.due(9.9) is False
    policy.cuts([5], 4.0)
    assert policy.due(10.0) is True
    assert policy.next_deadline() == 20.0  # a new, empty file from 10.0 on
    assert policy.due(20.0) is False  # empty: no cut; its period moves on
    assert policy.next_deadline() == 30.0


def test_size_and_time_together():
    policy = RotationPolicy(max_bytes=10, max_seconds=60)
    policy.started(0.0)
    assert policy.cuts([6, 6], 1.0) == [Cut(1, "size")]
    assert policy.cuts([1], 60.0) == [Cut(0, "time")]
    assert policy.size == 1


def test_no_limit_never_cuts():
    policy = RotationPolicy()
    policy.started(0.0)
    assert policy.cuts([10**9] * 3, 10**9) == []
    assert policy.next_deadline() is None and policy.due(10**12) is False


@pytest.mark.parametrize("options", [{"max_bytes": 0}, {"max_seconds": 0}, {"max_seconds": -1}])
def test_limits_must_be_positive(options):
    with pytest.raises(ValueError):
        RotationPolicy(**options)


# -- LossReporter ----------------------------------------------------------------------


def test_the_first_loss_is_reported_at_once_then_at_most_once_per_interval():
    reporter = LossReporter(interval=1.0)
    assert reporter.observe({}, 0.0) is None
    first = reporter.observe({"tick": 3}, 0.5)
    assert first is not None and first.since_last == {"tick": 3} and first.count == 3
    assert reporter.observe({"tick": 10}, 1.2) is None  # within the interval
    assert reporter.next_deadline() == 1.5
    second = reporter.observe({"tick": 12, "status": 1}, 1.5)
    assert second is not None
    assert second.since_last == {"tick": 9, "status": 1}
    assert second.totals == {"tick": 12, "status": 1} and second.total == 13
    assert reporter.observe({"tick": 12, "status": 1}, 10.0) is None  # nothing new


def test_the_final_report_ignores_the_interval():
    reporter = LossReporter(interval=60.0)
    reporter.observe({"tick": 1}, 0.0)
    final = reporter.final({"tick": 5})
    assert final is not None and final.since_last == {"tick": 4}
    assert reporter.final({"tick": 5}) is None
