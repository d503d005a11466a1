"""The shard plan (``_core/sharding.py``): caps, few moves, all-or-nothing, typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tickactors import BOOK, TRADES, CapacityError
from tickactors._core.sharding import ShardPlan


def syms(n: int, prefix: str = "S") -> set[str]:
    return {f"{prefix}{i:05d}" for i in range(n)}


def test_no_cap_keeps_everything_on_slot_zero():
    plan = ShardPlan(None, 10)
    placement = plan.place({TRADES: syms(5000)})
    assert plan.slots == (0,) and placement.opened == ()
    assert len(plan.assignment(0)[TRADES]) == 5000


def test_fills_evenly_and_opens_only_when_full():
    plan = ShardPlan(3, 3)
    first = plan.place({TRADES: syms(3)})
    assert plan.slots == (0,) and first.opened == ()
    second = plan.place({TRADES: syms(7)})
    assert second.opened == (1, 2)
    assert [len(plan.assignment(s)[TRADES]) for s in plan.slots] == [3, 3, 1]
    assert second.moved == 0


def test_thirty_thousand_over_ten_connections_of_three_thousand():
    plan = ShardPlan(3000, 10)
    placement = plan.place({TRADES: syms(30_000)})
    assert plan.slots == tuple(range(10)) and placement.opened == tuple(range(1, 10))
    assert all(len(plan.assignment(s)[TRADES]) == 3000 for s in plan.slots)
    with pytest.raises(CapacityError) as info:
        plan.place({TRADES: syms(30_001)})
    assert info.value.symbols == ("S30000 (trades)",)
    assert all(len(plan.assignment(s)[TRADES]) == 3000 for s in plan.slots)  # nothing applied


def test_capacity_error_names_every_misfit_and_changes_nothing():
    plan = ShardPlan(2, 2)
    plan.place({TRADES: {"A", "B"}})
    before = {s: plan.assignment(s) for s in plan.slots}
    with pytest.raises(CapacityError) as info:
        plan.place({TRADES: {"A", "B", "C", "D", "E", "F"}})
    assert len(info.value.symbols) == 2 and "do not fit 2 connection(s)" in str(info.value)
    assert {s: plan.assignment(s) for s in plan.slots} == before
    assert isinstance(info.value, ValueError)


def test_kinds_have_their_own_caps_on_one_connection():
    plan = ShardPlan(2, 1)
    plan.place({TRADES: {"A", "B"}, BOOK: {"A", "B"}})
    assert plan.assignment(0) == {TRADES: {"A", "B"}, BOOK: {"A", "B"}}


def test_removing_frees_room_and_empty_slots_close_but_slot_zero_stays():
    plan = ShardPlan(2, 3)
    plan.place({TRADES: syms(6)})
    assert plan.slots == (0, 1, 2)
    placement = plan.place({TRADES: set()})
    assert placement.closed == (1, 2) and plan.slots == (0,)
    again = plan.place({TRADES: {"X"}})
    assert again.added == {0: {TRADES: frozenset({"X"})}} and again.opened == ()


def test_a_swap_refills_the_room_it_frees_without_opening():
    plan = ShardPlan(2, 2)
    plan.place({TRADES: {"A", "B", "C", "D"}})
    where_c = plan.slot_of(TRADES, "C")
    placement = plan.place({TRADES: {"A", "B", "D", "E"}})
    assert placement.opened == () and placement.closed == ()
    assert plan.slot_of(TRADES, "E") == where_c
    assert placement.moved == 0


class PlanMachine(RuleBasedStateMachine):
    """Random changes of the desired set keep every rule of the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.cap, self.most = 4, 3
        self.plan = ShardPlan(self.cap, self.most)
        self.desired: dict = {TRADES: set(), BOOK: set()}

    @rule(
        trades=st.sets(st.sampled_from(sorted(syms(16))), max_size=16),
        book=st.sets(st.sampled_from(sorted(syms(16))), max_size=16),
    )
    def change(self, trades, book):
        before = {key: self.plan.slot_of(*key) for key in self._keys(self.desired)}
        wanted = {TRADES: trades, BOOK: book}
        fits = all(len(s) <= self.cap * self.most for s in wanted.values())
        try:
            placement = self.plan.place(wanted)
        except CapacityError as exc:
            assert not fits or exc.symbols  # raised only when something truly did not fit
            assert {k: self.plan.slot_of(*k) for k in before} == before
            return
        self.desired = wanted
        for key, slot in before.items():
            if key in self._keys(wanted):
                assert self.plan.slot_of(*key) == slot  # nothing moved
        assert placement.moved == 0

    @staticmethod
    def _keys(desired):
        return {(k, s) for k, ss in desired.items() for s in ss}

    @invariant()
    def carries_exactly_the_desired_set_within_the_caps(self):
        carried = set()
        assert 0 in self.plan.slots and len(self.plan.slots) <= self.most
        for slot in self.plan.slots:
            for kind, symbols in self.plan.assignment(slot).items():
                assert len(symbols) <= self.cap
                for s in symbols:
                    assert (kind, s) not in carried
                    carried.add((kind, s))
        assert carried == self._keys(self.desired)


TestPlanMachine = PlanMachine.TestCase
TestPlanMachine.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)


def test_change_is_place_for_one_kind_at_the_cost_of_the_change():
    plan = ShardPlan(2, 3)
    first = plan.change(TRADES, add={"A", "B", "C"})
    assert first.opened == (1,) and plan.assignment(0) == {TRADES: {"A", "B"}}
    plan.change(BOOK, add={"A"})
    assert plan.assignment(0) == {TRADES: {"A", "B"}, BOOK: {"A"}}
    with pytest.raises(CapacityError) as info:
        plan.change(TRADES, add=syms(4))  # 3 + 4 > 2 * 3
    assert info.value.symbols == ("S00003 (trades)",)
    assert plan.assignment(1) == {TRADES: {"C"}}  # nothing applied
    swap = plan.change(TRADES, add={"D"}, remove={"A"})
    assert swap.removed == {0: {TRADES: frozenset({"A"})}}
    assert swap.added == {0: {TRADES: frozenset({"D"})}}  # refills the room it freed
    gone = plan.change(TRADES, remove={"C", "never-placed"})
    assert gone.closed == (1,) and plan.slots == (0,)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([TRADES, BOOK]),
            st.sets(st.sampled_from(sorted(syms(12))), max_size=6),
            st.sets(st.sampled_from(sorted(syms(12))), max_size=6),
        ),
        max_size=12,
    )
)
def test_change_ends_where_place_ends(steps):
    by_change, by_place = ShardPlan(3, 3), ShardPlan(3, 3)
    desired: dict = {TRADES: set(), BOOK: set()}
    for kind, add, remove in steps:
        add = add - remove
        wanted = {**desired, kind: (desired[kind] - remove) | add}
        try:
            by_place.place(wanted)
        except CapacityError:
            with pytest.raises(CapacityError):
                by_change.change(kind, add=add, remove=remove)
            continue
        by_change.change(kind, add=add, remove=remove)
        desired = wanted
        assert by_change.slots == by_place.slots
        for slot in by_place.slots:
            assert by_change.assignment(slot) == by_place.assignment(slot)
