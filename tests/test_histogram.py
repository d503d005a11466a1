"""The bucketed durations of ``_core/histogram.py``: Prometheus' ``le`` buckets, exactly."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickactors._core.histogram import (
    HEARTBEAT_LATENESS_BUCKETS,
    REQUEST_LATENCY_BUCKETS,
    Histogram,
)


def test_a_value_goes_in_the_first_bucket_whose_bound_holds_it():
    h = Histogram((0.1, 1.0))
    for value in (0.0, 0.1, 0.10001, 1.0, 1.5, -2.0, math.nan):
        h.observe(value)
    # le 0.1: 0.0, 0.1, -2.0 (counted as 0); le 1.0: 0.10001, 1.0; past: 1.5; NaN: nowhere
    assert h.statistics() == {
        "bounds": [0.1, 1.0],
        "counts": [3, 2, 1],
        "sum": pytest.approx(0.1 + 0.10001 + 1.0 + 1.5),
        "count": 6,
    }


@pytest.mark.parametrize(
    "bounds", [(), (1.0, 1.0), (2.0, 1.0), (0.1, math.inf), (math.nan,)], ids=repr
)
def test_bad_bounds_are_refused(bounds):
    with pytest.raises(ValueError):
        Histogram(bounds)


def test_the_feeds_buckets_are_valid():
    for bounds in (REQUEST_LATENCY_BUCKETS, HEARTBEAT_LATENESS_BUCKETS):
        assert Histogram(bounds).bounds == bounds


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False)))
def test_counts_add_up_and_agree_with_le(values):
    bounds = (0.01, 0.5, 3.0, 50.0)
    h = Histogram(bounds)
    for value in values:
        h.observe(value)
    assert h.count == len(values) == sum(h.counts)
    assert h.sum == pytest.approx(sum(values))
    cumulative = 0
    for bound, count in zip(bounds, h.counts, strict=False):
        cumulative += count
        assert cumulative == sum(1 for v in values if v <= bound)
