"""The token-wide spacing gate (``_core/spacing.py``) and the reconcilers that share it."""

from __future__ import annotations

import math

import pytest

from tickactors._core.reconciler import (
    Acked,
    ConnectionReady,
    Reconciler,
    Rejected,
    Semantics,
    SendRequest,
    Want,
)
from tickactors._core.spacing import SpacingGate
from tickactors._values import StreamKind

T, B = StreamKind.TRADES, StreamKind.BOOK


def machine(gate: SpacingGate, now: float = 0.0) -> Reconciler:
    r = Reconciler(Semantics.REPLACE_ALL, request_spacing=1.2, gate=gate)
    r.handle(ConnectionReady(), now)
    return r


def sent(commands: list) -> list[SendRequest]:
    return [c for c in commands if isinstance(c, SendRequest)]


def test_the_rule_holds_only_while_two_connections_or_more_live():
    gate = SpacingGate(3.0)
    assert gate.next_free() == -math.inf
    gate.opened()
    gate.decided(10.0)
    assert gate.next_free() == -math.inf  # a lone connection answers to its own rule
    gate.opened()
    assert gate.next_free() == 13.0
    gate.taken(10.5)  # the frame left later than decided: the later stamp wins
    gate.taken(10.2)
    assert gate.next_free() == 13.5
    gate.closed()
    assert gate.next_free() == -math.inf
    stats = gate.statistics()
    assert (stats.live, stats.requests, stats.last_request_at) == (1, 1, 10.5)
    gate.closed()
    with pytest.raises(ValueError):
        gate.closed()
    with pytest.raises(ValueError):
        SpacingGate(0.0)


def test_reconcilers_sharing_a_gate_take_turns():
    gate = SpacingGate(3.0)
    gate.opened()
    gate.opened()
    a, b = machine(gate), machine(gate)
    first = sent(a.handle(Want(T, frozenset({"A"})), 0.0))
    assert [r.symbols for r in first] == [("A",)]
    assert sent(b.handle(Want(T, frozenset({"B"})), 0.5)) == []  # a's request holds b back
    assert b.next_deadline() == 3.0
    assert sent(b.poll(2.9)) == []
    assert [r.symbols for r in sent(b.poll(3.0))] == [("B",)]
    # a's own next request waits for the gate too, not only for its 1.2 s spacing
    a.handle(Acked(first[0].ref), 1.0)
    a.handle(Want(T, frozenset({"C"})), 1.5)
    assert a.next_deadline() == 6.0
    assert [r.symbols for r in sent(a.poll(6.0))] == [("A", "C")]
    assert gate.statistics().requests == 3


def test_successor_copies_what_is_desired_and_rejected_but_nothing_else():
    gate = SpacingGate(3.0)
    old = Reconciler(Semantics.REPLACE_ALL, (T, B), request_spacing=1.0, gate=gate)
    old.handle(ConnectionReady(), 0.0)
    (request,) = sent(old.handle(Want(T, frozenset({"B", "A", "X"})), 0.0))
    old.handle(Rejected(request.ref, 600, "code invalid", frozenset({"X"})), 0.5)
    old.handle(Want(B, frozenset({"A"})), 1.0)
    heir = old.successor()
    assert heir.gate is gate and not heir.ready
    assert heir.desired(T) == {"A", "B", "X"} and heir.desired(B) == {"A"}
    assert dict(heir.rejected(T)) == {"X": (600, "code invalid")}
    assert heir.confirmed(T) == frozenset() and heir.in_flight(T) == ()
    assert heir.statistics()["requests_sent"] == 0
    replay = sent(heir.handle(ConnectionReady(), 5.0))
    assert [(r.kind, r.symbols) for r in replay] == [(T, ("A", "B"))]  # never X again
    assert old.desired(T) == {"A", "B", "X"}  # the old machine is untouched


def test_successor_keeps_the_order_a_cap_serves_in():
    old = Reconciler(Semantics.REPLACE_ALL, (T,), max_symbols=2)
    for symbol in ("Z", "Y", "X"):
        old.handle(Want(T, frozenset({symbol})), 0.0)
    heir = old.successor()
    assert set(heir.rejected(T)) == {"X"} == set(old.rejected(T))
