"""Make-before-break's pure parts (``_core/overlap.py``): due times, handover, each tick once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickactors import BOOK, TRADES, BookSnapshot, Quote, Tick
from tickactors._core.overlap import (
    Handover,
    HandoverCut,
    OverlapFilter,
    RotationPolicy,
    rotation_due,
)


def tick(symbol: str, seq: int | None, price: str = "1", at: float = 0.0) -> Tick:
    return Tick(symbol, Decimal(price), Decimal(1), 100.0, seq, at)


def test_rotation_due_is_jittered_below_max_age():
    assert rotation_due(10.0, 100.0, 0.2, 0.0) == 110.0
    assert rotation_due(10.0, 100.0, 0.2, 0.5) == 100.0
    assert 90.0 < rotation_due(10.0, 100.0, 0.2, 0.999) < 91.0
    for bad in ((0.0, 0.1, 0.5), (100.0, 1.0, 0.5), (100.0, 0.1, 1.0)):
        with pytest.raises(ValueError):
            rotation_due(0.0, *bad)


def test_handover_waits_for_every_symbol_or_its_patience():
    handover = Handover({TRADES: {"A", "B"}, BOOK: {"A"}}, started_at=5.0, patience=10.0)
    handover.seen([tick("A", 1)])
    assert not handover.ready(6.0)
    assert handover.missing() == {TRADES: {"B"}, BOOK: {"A"}}
    handover.seen([tick("B", 2)])
    assert not handover.ready(14.9) and handover.ready(15.0)  # the book never showed
    assert handover.missing() == {BOOK: {"A"}}
    assert Handover({TRADES: set()}, started_at=0.0, patience=1.0).ready(0.0)


def test_a_handover_says_whether_its_patience_ran_out_or_the_old_connection_closed():
    handover = Handover({TRADES: {"A", "B"}, BOOK: {"A"}}, started_at=5.0, patience=30.0)
    handover.seen([tick("A", 1)])
    closed = handover.shortfall(5.5, old_closed=True)  # the venue closed it after 0.5 s
    assert closed is not None and closed.cut is HandoverCut.OLD_CLOSED
    assert (closed.waited, closed.count) == (0.5, 2)
    text = closed.message(3, 4, "closed by the peer (code 3000, Server shutdown: Maintenance)")
    assert text == (
        "connection 3 ended 0.5 s into the handover (closed by the peer (code 3000, Server "
        "shutdown: Maintenance)), before connection 4 had data for 2 symbol(s); it takes "
        "over at once"
    )
    late = handover.shortfall(35.0, old_closed=False)  # 30 s did pass
    assert late is not None and late.cut is HandoverCut.PATIENCE
    assert late.message(3, 4) == "no data for 2 symbol(s) within 30 s; closing connection 3 anyway"
    # the patience counts once it really ran out, whether or not the old one is gone by then
    assert getattr(handover.shortfall(35.0, old_closed=True), "cut", None) is HandoverCut.PATIENCE
    with pytest.raises(ValueError):
        handover.shortfall(6.0, old_closed=False)  # nothing ended the wait yet
    handover.seen([tick("B", 2), BookSnapshot("A", (), ())])
    assert handover.shortfall(6.0, old_closed=True) is None  # nothing missing: no event


def test_overlap_delivers_each_sequence_number_once():
    f = OverlapFilter()
    old = [tick("A", n) for n in range(1, 6)]
    new = [tick("A", n, at=1.0) for n in range(3, 9)]  # another received_at: the same ticks
    assert [t.seq for t in f.admit(old, 1)] == [1, 2, 3, 4, 5]
    assert [t.seq for t in f.admit(new, 2)] == [6, 7, 8]
    assert f.admit([tick("A", 9)], 1) == [tick("A", 9)]
    assert f.duplicates == 3


def test_content_keys_keep_lookalike_trades_that_one_connection_saw_twice():
    f = OverlapFilter()
    same = tick("A", None, "2")
    assert len(f.admit([same, same], 1)) == 2  # two real trades, alike
    assert f.admit([same], 2) == []  # the second connection's copy of the first
    assert f.admit([same, same], 2) == [same]  # ... and now it has seen three
    q = Quote("ESZ6", 1, bid=Decimal(5))
    assert (
        f.admit([q], 1) == [q]
        and f.admit([Quote("ESZ6", 1, bid=Decimal(5), received_at=9)], 2) == []
    )


def test_memory_is_bounded():
    f = OverlapFilter(memory=100)
    f.admit([tick("A", n) for n in range(1000)], 1)
    assert len(f._keys) == 100 and f.forgotten == 900
    f.clear()
    assert f.admit([tick("A", 1)], 2) == [tick("A", 1)]


@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=60),
    st.integers(0, 60),
    st.integers(0, 60),
    st.randoms(use_true_random=False),
)
def test_two_views_of_one_stream_deliver_it_exactly_once(stream, start, stop, rng):
    """Old carries seqs up to ``stop``, new from ``start``: the union, once, by seq."""
    seqs = sorted(set(stream))
    old = [tick("A", s) for s in seqs if s <= stop]
    new = [tick("A", s, at=1.0) for s in seqs if s >= start]
    f = OverlapFilter()
    got: list[Tick] = []
    # Interleave the two connections' batches at random, each in its own order.
    i = j = 0
    while i < len(old) or j < len(new):
        if j >= len(new) or (i < len(old) and rng.random() < 0.5):
            got += f.admit(old[i : i + 3], 1)
            i += 3
        else:
            got += f.admit(new[j : j + 3], 2)
            j += 3
    expected = {s for s in seqs if s <= stop or s >= start}
    assert sorted(t.seq for t in got) == sorted(expected)


def test_rotation_policy_starts_early_enough_for_the_longest_rotation():
    policy = RotationPolicy(100.0, jitter=0.1, patience=5.0, connect_timeout=5.0)
    assert policy.lead == 10.0
    assert policy.due(50.0, 0.0) == 140.0  # 100 - (5 + 5) after opening
    assert policy.due(50.0, 0.999) == pytest.approx(50.0 + 90.0 * (1 - 0.0999))
    assert RotationPolicy(None).due(50.0, 0.5) == float("inf")  # only a shutdown notice
    assert [policy.retry_after(n) for n in (1, 2, 3, 6, 7, 30)] == [3, 6, 12, 60, 60, 60]
    for bad in (
        dict(max_age=10.0, patience=5.0, connect_timeout=5.0),  # no time left to rotate
        dict(max_age=100.0, jitter=1.0),
        dict(max_age=100.0, patience=0.0),
        dict(max_age=float("inf")),
    ):
        with pytest.raises(ValueError):
            RotationPolicy(**bad)
