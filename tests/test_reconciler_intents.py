"""``Intents``: a burst of the user's changes in one event, handled as its Want/Unwant events.

The feed hands the reconciler every subscribe/unsubscribe call made since its last step in
one ``Intents`` event. Handling it must be exactly handling the equivalent Want/Unwant
events one after the other: the same commands, the same state (desired order included),
the same counters, whatever state the machine is in (caps, culprit searches, rejections,
ghosts, rate limits, lost connections). A property test drives two reconcilers side by side,
one fed ``Intents``, the other the equivalent events, and compares everything after every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickactors._core.reconciler import (
    Acked,
    Action,
    Command,
    ConnectionLost,
    ConnectionReady,
    Event,
    GhostSeen,
    IntentChange,
    Intents,
    RateLimited,
    Reconciler,
    Refresh,
    Rejected,
    Semantics,
    SendRequest,
    TimedOut,
    Unwant,
    Want,
)
from tickactors._values import StreamKind

T, B = StreamKind.TRADES, StreamKind.BOOK
UNIVERSE = ("A", "B", "C", "D", "E", "F", "G")
BAD = frozenset({"C", "F"})


@dataclass(frozen=True)
class Change:
    kind: StreamKind
    symbols: tuple[str, ...]
    wanted: bool


@dataclass(frozen=True)
class Answer:
    how: str  # "ack" (or a rejection when a bad symbol is in it), "timeout", "limit", "refuse"
    name: bool
    retry_after: float | None


@dataclass(frozen=True)
class Other:
    event: Event


kinds = st.sampled_from([T, T, B])
changes = st.builds(
    Change,
    kinds,
    st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=3, unique=True).map(tuple),
    st.booleans(),
)
answers = st.builds(
    Answer,
    st.sampled_from(["ack", "ack", "timeout", "limit", "refuse"]),
    st.booleans(),
    st.sampled_from([None, 0.2]),
)
others = st.one_of(
    st.just(Other(ConnectionLost())),
    st.just(Other(ConnectionReady())),
    st.builds(lambda k, s: Other(GhostSeen(k, s)), kinds, st.sampled_from(UNIVERSE)),
    st.builds(
        lambda k, s: Other(Refresh(k, frozenset(s))),
        kinds,
        st.frozensets(st.sampled_from(UNIVERSE), min_size=1, max_size=2),
    ),
)
items = st.one_of(changes, changes, changes, answers, others)
steps = st.lists(
    st.tuples(st.sampled_from([0.0, 0.1, 0.6, 1.2]), st.lists(items, min_size=1, max_size=8)),
    min_size=1,
    max_size=30,
)


def answer(request: SendRequest, how: Answer) -> Event:
    if how.how == "timeout":
        return TimedOut(request.ref)
    if how.how == "limit":
        return RateLimited(request.ref, how.retry_after)
    if how.how == "refuse":
        return Rejected(request.ref, 600, "refused", None)
    offenders = set(request.symbols) & BAD
    if request.action in (Action.REPLACE, Action.SUBSCRIBE) and offenders:
        return Rejected(
            request.ref, 600, "code invalid", frozenset(offenders) if how.name else None
        )
    return Acked(request.ref)


def snapshot(r: Reconciler) -> object:
    return (
        {
            kind: (
                list(r.wanted_view(kind)),  # the order wanted matters (caps, resubscribes)
                dict(r.rejected(kind)),
                r.confirmed(kind),
                r.in_flight(kind),
            )
            for kind in r.kinds
        },
        r.statistics(),
        r.next_deadline(),
        r.is_converged(),
    )


def events_of(batch: list[object], live: list[SendRequest]) -> tuple[list[Event], list[Event]]:
    """The batch as events: runs of changes in one Intents each, or as Want/Unwant events."""
    with_intents: list[Event] = []
    with_events: list[Event] = []
    pending: list[IntentChange] = []
    for item in batch:
        if isinstance(item, Change):
            pending.append((item.kind, item.symbols, item.wanted))
            event_type = Want if item.wanted else Unwant
            with_events.append(event_type(item.kind, frozenset(item.symbols)))
            continue
        if pending:
            with_intents.append(Intents(tuple(pending)))
            pending = []
        if isinstance(item, Answer):
            if not live:
                continue
            event = answer(live.pop(0), item)
        else:
            assert isinstance(item, Other)
            event = item.event
            if isinstance(event, ConnectionLost | ConnectionReady):
                live.clear()
        with_intents.append(event)
        with_events.append(event)
    if pending:
        with_intents.append(Intents(tuple(pending)))
    return with_intents, with_events


def check_active(r: Reconciler) -> None:
    """The kept-up-to-date active set is desired minus rejected (white box)."""
    for state in r._kinds.values():
        assert state.active == {s for s in state.desired if s not in state.rejected}


def run_both(
    semantics: Semantics, cap: int | None, spacing: float, script: list[tuple[float, list[object]]]
) -> None:
    def make() -> Reconciler:
        return Reconciler(
            semantics,
            [T, B],
            request_spacing=spacing,
            retry_delay=0.5,
            ghost_grace=1.0,
            ghost_threshold=2,
            max_symbols=cap,
        )

    burst, one_by_one = make(), make()
    live: list[SendRequest] = []
    now = 0.0
    for dt, batch in script:
        now += dt
        with_intents, with_events = events_of(batch, live)
        out: list[Command] = burst.handle_all(with_intents, now)
        assert out == one_by_one.handle_all(with_events, now)
        deadline = burst.next_deadline()
        if deadline is not None and deadline <= now + 0.5:
            now = max(now, deadline)
            polled = burst.poll(now)
            assert polled == one_by_one.poll(now)
            out += polled
        live += [c for c in out if isinstance(c, SendRequest)]
        assert snapshot(burst) == snapshot(one_by_one)
        check_active(burst)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    semantics=st.sampled_from(list(Semantics)),
    cap=st.sampled_from([None, None, 3]),
    spacing=st.sampled_from([0.0, 1.05]),
    script=steps,
)
def test_intents_are_handled_exactly_as_their_want_and_unwant_events(
    semantics: Semantics, cap: int | None, spacing: float, script: list[tuple[float, list[object]]]
) -> None:
    run_both(semantics, cap, spacing, script)


def test_a_burst_of_single_symbol_changes_coalesces_into_one_request() -> None:
    r = Reconciler(Semantics.REPLACE_ALL, [T], request_spacing=1.05)
    r.handle(ConnectionReady(), 0.0)
    burst: list[IntentChange] = []
    wanted: set[str] = set()
    for i in range(300):
        symbol = f"S{i % 40:02d}"
        burst.append((T, (symbol,), symbol not in wanted))
        wanted ^= {symbol}
    commands = r.handle(Intents(tuple(burst)), 0.0)
    assert commands == [SendRequest(1, T, Action.REPLACE, tuple(sorted(wanted)))]
    assert r.statistics()["coalesced"] == 300 - 1


def test_intents_keep_the_order_wanted_and_the_cap_first_come_first_served() -> None:
    r = Reconciler(Semantics.INCREMENTAL, [T], max_symbols=2)
    r.handle(ConnectionReady(), 0.0)
    commands = r.handle(
        Intents(((T, ("Z",), True), (T, ("A",), True), (T, ("Z",), False), (T, ("M", "B"), True))),
        0.0,
    )
    # Z came and went; A, then B (a multi-symbol change is sorted), then M over the cap.
    assert list(r.wanted_view(T)) == ["A", "B", "M"]
    assert dict(r.rejected(T)) == {"M": (603, "over the per-connection symbol cap")}
    assert [c.symbols for c in commands if isinstance(c, SendRequest)] == [("A",), ("B",)]


def test_an_unwant_and_want_in_one_burst_still_clears_a_rejection() -> None:
    r = Reconciler(Semantics.REPLACE_ALL, [T])
    r.handle(ConnectionReady(), 0.0)
    (request,) = r.handle(Want(T, frozenset({"X"})), 0.0)
    assert isinstance(request, SendRequest)
    r.handle(Rejected(request.ref, 600, "code invalid", frozenset({"X"})), 0.1)
    assert "X" in r.rejected(T)
    commands = r.handle(Intents(((T, ("X",), False), (T, ("X",), True))), 0.2)
    assert not r.rejected(T)
    assert [c.symbols for c in commands if isinstance(c, SendRequest)] == [("X",)]


def test_an_empty_symbol_in_intents_is_refused_as_in_want() -> None:
    for changes in (((T, ("",), True),), ((T, ("A", ""), True),)):
        r = Reconciler(Semantics.REPLACE_ALL, [T])
        try:
            r.handle(Intents(changes), 0.0)
        except ValueError as error:
            assert "empty symbol" in str(error)
        else:
            raise AssertionError("an empty symbol was accepted")
