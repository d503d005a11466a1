from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tickactors._core.requests import (
    Outcome,
    RequestStatistics,
    RequestTable,
    Resolution,
)


def test_open_and_answer() -> None:
    table: RequestTable[str] = RequestTable()
    rid = table.open("subscribe", now=1.0, timeout=5.0, connection=7)
    assert rid == 1
    assert table.open_count == 1
    assert table.next_deadline() == 6.0
    resolution = table.answer(rid, {"ret": 200}, now=2.5)
    assert resolution == Resolution(
        request_id=1,
        meta="subscribe",
        outcome=Outcome.ANSWERED,
        answer={"ret": 200},
        opened_at=1.0,
        resolved_at=2.5,
    )
    assert table.open_count == 0
    assert table.next_deadline() is None
    assert table.poll(100.0) == []


def test_ids_are_unique_and_sequential() -> None:
    table: RequestTable[None] = RequestTable(first_id=10)
    ids = [table.open(None, now=0.0, timeout=1.0, connection=1) for _ in range(5)]
    assert ids == [10, 11, 12, 13, 14]
    table.answer(12, None, now=0.1)
    assert table.open(None, now=0.2, timeout=1.0, connection=1) == 15  # 12 is not reused


def test_late_and_unknown_answers_are_counted() -> None:
    table: RequestTable[str] = RequestTable()
    rid = table.open("a", now=0.0, timeout=1.0, connection=1)
    assert [r.outcome for r in table.poll(1.0)] == [Outcome.TIMED_OUT]
    assert table.answer(rid, "too late", now=1.5) is None
    assert table.answer(rid, "again", now=1.6) is None
    assert table.answer(999, "never sent", now=1.7) is None
    assert table.answer(0, "below first_id", now=1.7) is None
    stats = table.statistics()
    assert (stats.late_answers, stats.unknown_answers) == (2, 2)


def test_poll_times_out_in_deadline_order_at_exact_deadline() -> None:
    table: RequestTable[str] = RequestTable()
    a = table.open("a", now=0.0, timeout=3.0, connection=1)
    b = table.open("b", now=0.5, timeout=1.0, connection=1)
    c = table.open("c", now=1.0, timeout=0.5, connection=2)
    d = table.open("d", now=1.0, timeout=2.0, connection=2)
    assert table.next_deadline() == 1.5
    assert table.poll(1.499) == []
    timed_out = table.poll(1.5)
    assert [(r.request_id, r.outcome, r.resolved_at) for r in timed_out] == [
        (b, Outcome.TIMED_OUT, 1.5),
        (c, Outcome.TIMED_OUT, 1.5),
    ]
    assert table.next_deadline() == 3.0
    assert [r.request_id for r in table.poll(10.0)] == [a, d]  # both 3.0: opened order


def test_connection_lost_fails_at_once_not_at_deadline() -> None:
    table: RequestTable[str] = RequestTable()
    a = table.open("a", now=0.0, timeout=30.0, connection=1)
    b = table.open("b", now=0.0, timeout=10.0, connection=2)
    c = table.open("c", now=1.0, timeout=30.0, connection=1)
    lost = table.connection_lost(1, now=2.0)
    assert [(r.request_id, r.outcome, r.resolved_at) for r in lost] == [
        (a, Outcome.CONNECTION_LOST, 2.0),
        (c, Outcome.CONNECTION_LOST, 2.0),
    ]
    assert table.connection_lost(1, now=3.0) == []
    assert table.next_deadline() == 10.0
    assert table.answer(a, "late", now=4.0) is None
    assert [r.request_id for r in table.close(5.0)] == [b]


def test_close_fails_everything_and_table_stays_usable() -> None:
    table: RequestTable[int] = RequestTable()
    for i in range(3):
        table.open(i, now=0.0, timeout=1.0, connection=i)
    closed = table.close(0.5)
    assert [(r.meta, r.outcome) for r in closed] == [(i, Outcome.CLOSED) for i in range(3)]
    assert table.next_deadline() is None
    assert table.poll(2.0) == []
    assert table.open(9, now=3.0, timeout=1.0, connection=0) == 4
    assert table.statistics() == RequestStatistics(
        opened=4,
        answered=0,
        timed_out=0,
        connection_lost=0,
        closed=3,
        late_answers=0,
        unknown_answers=0,
        open=1,
    )


def test_wraparound_skips_open_ids() -> None:
    table: RequestTable[None] = RequestTable(first_id=1, max_id=4)
    ids = [table.open(None, now=0.0, timeout=10.0, connection=1) for _ in range(4)]
    assert ids == [1, 2, 3, 4]
    table.answer(2, None, now=1.0)
    assert table.open(None, now=1.0, timeout=10.0, connection=1) == 2  # 1 is still open
    with pytest.raises(RuntimeError, match="full"):
        table.open(None, now=1.0, timeout=10.0, connection=1)
    table.answer(4, None, now=2.0)
    assert table.open(None, now=2.0, timeout=10.0, connection=1) == 4
    assert table.answer(99, None, now=3.0) is None
    assert table.statistics().unknown_answers == 1


def test_reused_id_does_not_match_a_stale_heap_entry() -> None:
    table: RequestTable[str] = RequestTable(first_id=1, max_id=1)
    assert table.open("old", now=0.0, timeout=1.0, connection=1) == 1
    table.answer(1, None, now=0.5)
    assert table.open("new", now=0.5, timeout=5.0, connection=1) == 1
    assert table.next_deadline() == 5.5
    assert table.poll(1.0) == []  # the old entry's deadline must not time out "new"
    assert [r.meta for r in table.poll(5.5)] == ["new"]


def test_heap_is_compacted_when_answers_leave_stale_entries() -> None:
    table: RequestTable[None] = RequestTable()
    for _ in range(10_000):
        rid = table.open(None, now=0.0, timeout=60.0, connection=1)
        table.answer(rid, None, now=0.0)
    assert len(table._heap) <= 130  # bounded, not 10 000 stale entries
    assert table.next_deadline() is None


@pytest.mark.parametrize("timeout", [-1.0, float("inf"), float("nan")])
def test_invalid_timeout(timeout: float) -> None:
    with pytest.raises(ValueError):
        RequestTable[None]().open(None, now=0.0, timeout=timeout, connection=1)


class RequestTableMachine(RuleBasedStateMachine):
    """Every opened request resolves exactly once, whatever happens in between."""

    max_id = 2**32 - 1

    def __init__(self) -> None:
        super().__init__()
        self.table: RequestTable[int] = RequestTable(first_id=1, max_id=self.max_id)
        self.now = 0.0
        self.serial = 0
        # serial (the meta) -> (request_id, deadline, connection) for open requests
        self.model: dict[int, tuple[int, float, int]] = {}
        self.opened_ids: list[int] = []
        self.resolved: list[Resolution[int]] = []
        self.issued: set[int] = set()
        self.answered_once: list[int] = []

    def _record(self, resolutions: list[Resolution[int]]) -> None:
        for resolution in resolutions:
            # Each open request resolves once: its serial leaves the model exactly once.
            assert resolution.meta in self.model, resolution
            request_id, deadline, _ = self.model.pop(resolution.meta)
            assert resolution.request_id == request_id
            assert resolution.resolved_at == self.now
            if resolution.outcome is Outcome.TIMED_OUT:
                assert deadline <= self.now
            else:  # time only advances together with a poll
                assert self.now <= deadline
            self.resolved.append(resolution)

    def _open_ids(self) -> dict[int, int]:
        return {rid: serial for serial, (rid, _, _) in self.model.items()}

    @rule(timeout=st.floats(0.0, 10.0), connection=st.integers(0, 3))
    def open(self, timeout: float, connection: int) -> None:
        self.serial += 1
        rid = self.table.open(self.serial, now=self.now, timeout=timeout, connection=connection)
        assert rid not in self._open_ids()  # never two open requests with one id
        if self.max_id == 2**32 - 1:
            assert rid not in self.issued  # no wrap: never handed out before
        self.issued.add(rid)
        self.opened_ids.append(rid)
        self.model[self.serial] = (rid, self.now + timeout, connection)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def answer_open(self, data: st.DataObject) -> None:
        serial = data.draw(st.sampled_from(sorted(self.model)))
        rid = self.model[serial][0]
        resolution = self.table.answer(rid, ("answer", rid), now=self.now)
        assert resolution is not None
        assert resolution.outcome is Outcome.ANSWERED
        assert resolution.answer == ("answer", rid)
        self._record([resolution])

    @precondition(lambda self: bool(self.issued - set(self._open_ids())))
    @rule(data=st.data())
    def answer_duplicate(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.issued - set(self._open_ids()))))
        before = self.table.statistics().late_answers
        assert self.table.answer(rid, "duplicate", now=self.now) is None
        assert self.table.statistics().late_answers == before + 1

    @rule(rid=st.integers(-5, 2**33))
    def answer_unknown(self, rid: int) -> None:
        if rid in self._open_ids():
            return
        before = self.table.statistics()
        assert self.table.answer(rid, "stray", now=self.now) is None
        after = self.table.statistics()
        # Handed out before (and resolved): late. Never handed out: unknown.
        late = rid in self.issued
        assert after.late_answers == before.late_answers + late
        assert after.unknown_answers == before.unknown_answers + (not late)

    @rule(dt=st.floats(0.0, 5.0))
    def advance_and_poll(self, dt: float) -> None:
        self.now += dt
        resolutions = self.table.poll(self.now)
        assert all(r.outcome is Outcome.TIMED_OUT for r in resolutions)
        deadlines = [self.model[r.meta][1] for r in resolutions]
        assert deadlines == sorted(deadlines)
        self._record(resolutions)
        # Nothing is open past its deadline after a poll.
        assert all(deadline > self.now for _, deadline, _ in self.model.values())

    @rule(connection=st.integers(0, 3))
    def lose_connection(self, connection: int) -> None:
        expected = sorted(s for s, (_, _, c) in self.model.items() if c == connection)
        resolutions = self.table.connection_lost(connection, now=self.now)
        assert [r.meta for r in resolutions] == expected
        assert all(r.outcome is Outcome.CONNECTION_LOST for r in resolutions)
        self._record(resolutions)

    @rule()
    def close(self) -> None:
        resolutions = self.table.close(self.now)
        assert sorted(r.meta for r in resolutions) == sorted(self.model)
        assert all(r.outcome is Outcome.CLOSED for r in resolutions)
        self._record(resolutions)
        assert not self.model

    @invariant()
    def table_matches_model(self) -> None:
        assert self.table.open_count == len(self.model)
        deadlines = [deadline for _, deadline, _ in self.model.values()]
        assert self.table.next_deadline() == (min(deadlines) if deadlines else None)
        stats = self.table.statistics()
        assert stats.opened == len(self.opened_ids)
        assert stats.open == len(self.model)
        assert stats.answered + stats.timed_out + stats.connection_lost + stats.closed == len(
            self.resolved
        )

    def teardown(self) -> None:
        self._record(self.table.close(self.now))
        # The multiset of resolved ids equals the multiset of opened ids: each exactly once.
        assert Counter(r.request_id for r in self.resolved) == Counter(self.opened_ids)
        assert sorted(r.meta for r in self.resolved) == list(range(1, self.serial + 1))


class WrappingRequestTableMachine(RequestTableMachine):
    """The same, with a tiny id space so the counter wraps and ids get reused."""

    max_id = 6

    @precondition(lambda self: len(self.model) < 6)
    @rule(timeout=st.floats(0.0, 10.0), connection=st.integers(0, 3))
    def open(self, timeout: float, connection: int) -> None:
        super().open(timeout, connection)


TestRequestTable = RequestTableMachine.TestCase
TestRequestTable.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestWrappingRequestTable = WrappingRequestTableMachine.TestCase
TestWrappingRequestTable.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)


def test_hold_stops_a_connections_clocks_and_release_adds_the_time_held():
    table: RequestTable[str] = RequestTable()
    early = table.open("early", now=0.0, timeout=5.0, connection=1)
    other = table.open("other", now=0.0, timeout=5.0, connection=2)
    table.hold(1, now=2.0)
    late = table.open("late", now=3.0, timeout=5.0, connection=1)  # opened while held
    assert [r.request_id for r in table.poll(10.0)] == [other]  # only connection 2 runs
    assert table.overdue(10.0) == [] and table.next_deadline() is None
    table.hold(1, now=4.0)  # idempotent: held since 2.0
    table.release(1, now=12.0)  # held 10 s
    assert table.next_deadline() == 15.0  # early: 5 + 10
    assert [r.request_id for r in table.poll(15.0)] == [early]
    assert table.poll(16.9) == []
    assert [r.request_id for r in table.poll(17.0)] == [late]  # its 5 s ran from the release
    table.hold(1, now=20.0)
    lost = table.open("lost", now=21.0, timeout=1.0, connection=1)
    assert [r.request_id for r in table.connection_lost(1, now=22.0)] == [lost]
    again = table.open("again", now=23.0, timeout=1.0, connection=1)  # the hold went with it
    assert [r.request_id for r in table.poll(24.0)] == [again]
