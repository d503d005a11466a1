"""``intents_due``: changes of intent kept back until they could matter change nothing.

While handling a change could send nothing and report nothing (not connected, or the request
spacing, a rate limit or the token's gate holds every request back, and no cap to announce),
the reconciler actor keeps the user's changes back and hands them over at its next step or
when ``intents_due()`` comes, whichever is first. A property test drives two machines side by
side: one handles every change at once, the other is fed the way the actor feeds it. Every
command comes out at the same instant from both, and they end in the same state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickactors._core.reconciler import (
    Acked,
    Command,
    ConnectionLost,
    ConnectionReady,
    Event,
    GhostSeen,
    IntentChange,
    Intents,
    RateLimited,
    Reconciler,
    Rejected,
    Semantics,
    SendRequest,
    TimedOut,
)
from tickactors._core.spacing import SpacingGate
from tickactors._values import StreamKind

T, B = StreamKind.TRADES, StreamKind.BOOK
UNIVERSE = ("A", "B", "C", "D", "E")


@dataclass(frozen=True)
class Change:
    change: IntentChange


@dataclass(frozen=True)
class Answer:
    how: str


@dataclass(frozen=True)
class Other:
    event: Event


changes = st.builds(
    lambda kind, symbols, wanted: Change((kind, symbols, wanted)),
    st.sampled_from([T, T, B]),
    st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=2, unique=True).map(tuple),
    st.booleans(),
)
items = st.one_of(
    changes,
    changes,
    changes,
    st.sampled_from([Answer("ack"), Answer("ack"), Answer("timeout"), Answer("limit")]),
    st.sampled_from([Answer("refuse")]),
    st.just(Other(ConnectionLost())),
    st.just(Other(ConnectionReady())),
    st.builds(lambda s: Other(GhostSeen(T, s)), st.sampled_from(UNIVERSE)),
)
script = st.lists(
    st.tuples(st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.2, 3.5]), items), min_size=1, max_size=60
)


def answer(request: SendRequest, how: str) -> Event:
    if how == "timeout":
        return TimedOut(request.ref)
    if how == "limit":
        return RateLimited(request.ref, 0.4)
    if how == "refuse":
        return Rejected(request.ref, 600, "refused", frozenset(request.symbols[:1]))
    return Acked(request.ref)


class Kept:
    """A machine fed as the actor feeds it: changes kept back while not due."""

    def __init__(self, machine: Reconciler) -> None:
        self.machine = machine
        self.pending: list[IntentChange] = []
        self.kept = 0  # changes that were kept back at least once

    def step(self, events: list[Event], now: float, poll: bool = False) -> list[Command]:
        if self.pending:
            events = [Intents(tuple(self.pending)), *events]
            self.pending = []
        out = self.machine.handle_all(events, now)
        return out + self.machine.poll(now) if poll else out

    def change(self, change: IntentChange, now: float) -> list[Command]:
        if self.machine.intents_due() <= now:
            return self.step([Intents((change,))], now)
        self.pending.append(change)
        self.kept += 1
        return []

    def deadline(self) -> float:
        deadline = self.machine.next_deadline()
        due = self.machine.intents_due() if self.pending else math.inf
        return min(math.inf if deadline is None else deadline, due)


def state(r: Reconciler) -> object:
    return {
        kind: (list(r.wanted_view(kind)), dict(r.rejected(kind)), r.confirmed(kind))
        for kind in r.kinds
    }


def run(semantics: Semantics, spacing: float, cap: int | None, gated: bool, steps: list) -> int:
    def make() -> Reconciler:
        gate = None
        if gated:
            gate = SpacingGate(2.0)
            gate.opened()
            gate.opened()  # two live connections: the rule is on
        return Reconciler(
            semantics, [T, B], request_spacing=spacing, retry_delay=0.5, max_symbols=cap, gate=gate
        )

    prompt, kept = make(), Kept(make())
    live: list[SendRequest] = []
    logs: tuple[list[object], list[object]] = ([], [])
    now = 0.0

    def record(a: list[Command], b: list[Command]) -> None:
        # Each machine polls at its own deadlines only: whatever one sent by now, so did
        # the other (a change kept back too long shows here).
        logs[0].extend((now, c) for c in a)
        logs[1].extend((now, c) for c in b)
        assert logs[0] == logs[1]
        live.extend(c for c in a if isinstance(c, SendRequest))

    for dt, item in steps:
        until = now + dt
        while True:  # every deadline on the way, each machine's own
            due_prompt, due_kept = _at(prompt.next_deadline()), kept.deadline()
            if min(due_prompt, due_kept) > until:
                break
            now = max(now, min(due_prompt, due_kept))
            record(
                prompt.poll(now) if due_prompt <= now else [],
                kept.step([], now, poll=True) if due_kept <= now else [],
            )
        now = until
        if isinstance(item, Change):
            record(prompt.handle_all([Intents((item.change,))], now), kept.change(item.change, now))
            continue
        if isinstance(item, Answer):
            if not live:
                continue
            event = answer(live.pop(0), item.how)
        else:
            event = item.event
            if isinstance(event, ConnectionLost | ConnectionReady):
                live.clear()
        record(prompt.handle_all([event], now), kept.step([event], now))
    now += 100.0
    record(prompt.poll(now), kept.step([], now, poll=True))
    assert state(prompt) == state(kept.machine)
    return kept.kept


def _at(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    semantics=st.sampled_from(list(Semantics)),
    spacing=st.sampled_from([0.0, 1.05, 1.05]),
    cap=st.sampled_from([None, None, None, 2]),
    gated=st.booleans(),
    steps=script,
)
def test_changes_kept_back_until_due_send_and_report_exactly_the_same(
    semantics: Semantics, spacing: float, cap: int | None, gated: bool, steps: list
) -> None:
    run(semantics, spacing, cap, gated, steps)


def test_the_property_keeps_changes_back_at_all() -> None:
    """The driver above is not vacuous: under the spacing, changes are kept back."""
    steps = [(0.0, Other(ConnectionReady())), (0.0, Change((T, ("A",), True)))]
    steps += [(0.05, Change((T, (s,), True))) for s in "BCDE"]
    steps += [(0.0, Answer("ack")), (2.0, Answer("ack"))]
    assert run(Semantics.REPLACE_ALL, 1.05, None, False, steps) == 4


def test_intents_due() -> None:
    r = Reconciler(Semantics.REPLACE_ALL, [T], request_spacing=1.05)
    assert r.intents_due() == math.inf  # not connected: nothing goes before ConnectionReady
    r.handle(ConnectionReady(), 10.0)
    assert r.intents_due() < 10.0  # nothing sent yet: at once
    (request,) = r.handle(Intents(((T, ("A",), True),)), 10.0)
    assert r.intents_due() == 10.0 + 1.05  # the spacing holds the next request back
    assert isinstance(request, SendRequest)
    r.handle(RateLimited(request.ref, 5.0), 10.5)
    assert r.intents_due() == 15.5  # so does a rate limit
    capped = Reconciler(Semantics.REPLACE_ALL, [T], request_spacing=1.05, max_symbols=3)
    assert capped.intents_due() == -math.inf  # a cap to announce: always at once
    gate = SpacingGate(3.0)
    gate.opened()
    gate.opened()  # two connections of one token: the rule is on
    gated = Reconciler(Semantics.REPLACE_ALL, [T], gate=gate)
    gated.handle(ConnectionReady(), 0.0)
    gate.decided(4.0)  # another connection of the token sent
    assert gated.intents_due() == gate.next_free() == 7.0
