"""The Parquet sink's cutting rules (``_core/part_rotation.py``): date, rows, time."""

from __future__ import annotations

import pytest

from tickactors._core.part_rotation import DAY, Cut, PartPolicy, next_boundary

D = 20_000  # a UTC day number (2024-10-04)
T = D * DAY + 3_600.0  # 01:00 on that day


def test_rows_cut_so_that_no_file_holds_more_than_max_rows():
    policy = PartPolicy(max_rows=3)
    policy.started(T)
    assert policy.cuts([D, D], T) == []
    assert policy.cuts([D, D, D, D, D], T) == [Cut(1, "rows"), Cut(4, "rows")]
    assert policy.rows == 1  # the newest file holds the last row


def test_each_day_gets_its_own_file_even_out_of_order():
    policy = PartPolicy(max_rows=100)
    policy.started(T)
    assert policy.cuts([D, D, D + 1, D + 1, D, D + 1], T) == [
        Cut(2, "date"),
        Cut(4, "date"),
        Cut(5, "date"),
    ]
    assert policy.day == D + 1 and policy.rows == 1
    assert policy.cuts([D + 1], T) == []  # the same day: the same file


def test_the_fast_path_and_the_slow_path_agree():
    fast = PartPolicy(max_rows=10)
    slow = PartPolicy(max_rows=10)
    fast.started(T)
    slow.started(T)
    for batch in ([D] * 4, [D] * 6, [D] * 3, [D, D + 1], [D + 1] * 9):
        cuts = fast.cuts(batch, T)
        # one row at a time: never the fast path's batch shape
        expected = []
        for index, day in enumerate(batch):
            expected += [Cut(index, c.reason) for c in slow.cuts([day], T)]
        assert cuts == expected
        assert (fast.rows, fast.day) == (slow.rows, slow.day)


def test_time_periods_are_aligned_and_cut_before_the_first_row_after_them():
    policy = PartPolicy(max_rows=100, max_seconds=300)
    policy.started(T + 10)  # 01:00:10: this period ends at 01:05:00
    assert policy.cuts([D], T + 299.9) == []
    assert policy.cuts([D, D], T + 300) == [Cut(0, "time")]
    assert policy.rows == 2
    assert policy.cuts([D], T + 600) == [Cut(0, "time")]


def test_an_idle_file_is_due_when_its_period_ends_or_its_day_does_and_an_empty_one_never():
    policy = PartPolicy(max_rows=100, max_seconds=7_000)  # periods that do not divide a day
    policy.started(T)
    assert policy.due(T + 1) is None
    policy.cuts([D], T + 1)
    midnight = (D + 1) * DAY
    assert next_boundary(midnight - 5, 7_000) == midnight  # the timer comes at midnight
    assert policy.due(midnight) in ("time", "date")
    assert policy.due(midnight + 1) is None  # a new, empty file
    policy.cuts([D + 1], midnight + 2)
    assert policy.due(midnight + 3) is None

    empty = PartPolicy(max_rows=100, max_seconds=60)
    empty.started(T)
    assert empty.due(T + 60) is None and empty.due(T + 3 * DAY) is None


def test_the_date_alone_makes_a_file_due_after_midnight():
    policy = PartPolicy(max_rows=100, max_seconds=None)
    policy.started(T)
    policy.cuts([D], T)
    assert policy.due((D + 1) * DAY - 0.001) is None
    assert policy.due((D + 1) * DAY) == "date"


def test_next_boundary_is_the_period_end_or_midnight_whichever_comes_first():
    assert next_boundary(T, 300) == T + 300
    assert next_boundary(T, None) == (D + 1) * DAY
    assert next_boundary((D + 1) * DAY - 1, 3 * DAY) == (D + 1) * DAY


@pytest.mark.parametrize(
    "options",
    [{"max_rows": 0}, {"max_rows": 1, "max_seconds": 0}, {"max_rows": 1, "max_seconds": -1}],
)
def test_limits_must_be_positive(options):
    with pytest.raises(ValueError):
        PartPolicy(**options)
