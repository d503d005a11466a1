"""The penalty box, with exact times."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._core.penalties import PenaltyBox


def test_items_come_out_exactly_when_due_in_due_order():
    box: PenaltyBox[str] = PenaltyBox()
    assert box.hold("a", ticket="t1", connection=1, now=10.0, wait=60.0) == 70.0
    assert box.hold("b", ticket="t2", connection=1, now=11.0, wait=5.0) == 16.0
    assert box.next_deadline() == 16.0
    assert box.poll(15.999) == []
    (b,) = box.poll(16.0)
    assert (b.item, b.ticket, b.due) == ("b", "t2", 16.0)
    assert box.next_deadline() == 70.0
    assert [d.item for d in box.poll(100.0)] == ["a"]
    assert box.next_deadline() is None
    assert box.statistics() == {"waiting": 0, "held": 2, "released": 2, "dropped": 0}


def test_a_lost_connection_empties_its_part_only():
    box: PenaltyBox[str] = PenaltyBox()
    box.hold("a", ticket="t", connection=1, now=0.0, wait=5.0)
    box.hold("b", ticket="t", connection=2, now=0.0, wait=6.0)
    assert box.connection_lost(1) == ["a"]
    assert box.statistics()["dropped"] == 1
    assert [d.item for d in box.poll(10.0)] == ["b"]


def test_nonsense_waits_count_as_zero():
    box: PenaltyBox[str] = PenaltyBox()
    assert box.hold("a", ticket="t", connection=1, now=3.0, wait=-5.0) == 3.0
    assert box.hold("b", ticket="t", connection=1, now=3.0, wait=math.nan) == 3.0
    assert len(box.poll(3.0)) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e4)), max_size=30), st.floats(0, 2e6))
def test_nothing_is_released_early_or_lost(holds, now):
    box: PenaltyBox[int] = PenaltyBox()
    for index, (start, wait) in enumerate(holds):
        box.hold(index, ticket="t", connection=1, now=start, wait=wait)
    released = box.poll(now)
    assert all(d.due <= now for d in released)
    assert [d.due for d in released] == sorted(d.due for d in released)
    assert len(released) + len(box) == len(holds)


def test_clear_gives_back_everything_held_in_hold_order():
    box: PenaltyBox[str] = PenaltyBox()
    box.hold("b", ticket="t", connection=1, now=0.0, wait=5.0)
    box.hold("a", ticket="t", connection=2, now=0.0, wait=1.0)
    box.hold("c", ticket="t", connection=1, now=0.0, wait=5.0)
    assert box.clear() == ["a", "b", "c"]  # due first, then in the order held
    assert len(box) == 0 and box.next_deadline() is None and box.dropped == 3
    assert box.clear() == []
