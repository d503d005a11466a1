"""Unit tests of the subscription reconciler, rule by rule, with exact times and commands."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import attrs
import pytest

from tickactors._core.reconciler import (
    Acked,
    Action,
    Command,
    Confirmed,
    ConnectionLost,
    ConnectionReady,
    Event,
    GhostPersisting,
    GhostSeen,
    RateLimited,
    Reconciler,
    Refresh,
    Rejected,
    Semantics,
    SendRequest,
    SymbolsRejected,
    TimedOut,
    Unwant,
    Want,
)
from tickactors._values import StreamKind

T = StreamKind.TRADES
B = StreamKind.BOOK
RA = Semantics.REPLACE_ALL
INC = Semantics.INCREMENTAL
REPLACE, CANCEL = Action.REPLACE, Action.CANCEL
SUB, UNSUB = Action.SUBSCRIBE, Action.UNSUBSCRIBE
CAP_REASON = "over the per-connection symbol cap"


def fs(*symbols: str) -> frozenset[str]:
    return frozenset(symbols)


def sends(commands: Iterable[Command]) -> list[SendRequest]:
    return [c for c in commands if isinstance(c, SendRequest)]


def ready(semantics: Semantics, now: float = 0.0, **kwargs: object) -> Reconciler:
    r = Reconciler(semantics, **kwargs)  # type: ignore[arg-type]
    assert r.handle(ConnectionReady(), now) == []
    return r


class AllTickVenue:
    """A REPLACE_ALL venue: refuses a whole set holding a bad symbol, or too many."""

    def __init__(self, bad: Iterable[str] = (), cap: int | None = None, code: int = 600) -> None:
        self.bad = set(bad)
        self.cap = cap
        self.code = code
        self.state: dict[StreamKind, set[str]] = {T: set(), B: set()}

    def answer(self, request: SendRequest) -> Event:
        symbols = set(request.symbols)
        if symbols & self.bad:
            return Rejected(request.ref, self.code, "code invalid")
        if self.cap is not None and len(symbols) > self.cap:
            return Rejected(request.ref, 603, "plan too small")
        self.state[request.kind] = symbols
        return Acked(request.ref)


def run(
    r: Reconciler, venue: AllTickVenue, commands: Sequence[Command], now: float
) -> tuple[list[Command], list[float]]:
    """Answer every request at once, poll at every deadline, until nothing is left.

    Returns every command, and the time of every request sent.
    """
    log = list(commands)
    queue = sends(commands)
    times = [now] * len(queue)
    for _ in range(1000):
        while queue:
            new = r.handle(venue.answer(queue.pop(0)), now)
            log += new
            queue += sends(new)
            times += [now] * len(sends(new))
        deadline = r.next_deadline()
        if deadline is None:
            return log, times
        assert deadline >= now
        now = deadline
        new = r.poll(now)
        log += new
        queue += sends(new)
        times += [now] * len(sends(new))
    raise AssertionError("did not settle")


# ---------------------------------------------------------------- connection life


@pytest.mark.parametrize("semantics", [RA, INC])
def test_nothing_is_sent_before_the_first_connection(semantics: Semantics) -> None:
    r = Reconciler(semantics)
    assert r.handle(Want(T, fs("A", "B")), 1.0) == []
    assert r.next_deadline() is None
    assert r.poll(5.0) == []
    assert r.desired(T) == fs("A", "B")
    assert r.confirmed(T) == fs()
    assert not r.is_converged()


def test_replace_all_sends_the_whole_set_on_ready() -> None:
    r = Reconciler(RA)
    r.handle(Want(T, fs("B", "A")), 0.0)
    r.handle(Want(B, fs("X")), 0.0)
    assert r.handle(ConnectionReady(), 2.0) == [
        SendRequest(1, T, REPLACE, ("A", "B")),
        SendRequest(2, B, REPLACE, ("X",)),
    ]
    assert r.in_flight(T) == (SendRequest(1, T, REPLACE, ("A", "B")),)
    assert r.handle(Acked(1), 2.5) == [Confirmed(T, fs("A", "B"))]
    assert not r.is_converged()
    assert r.handle(Acked(2), 2.6) == [Confirmed(B, fs("X"))]
    assert r.is_converged()
    assert r.next_deadline() is None


def test_incremental_subscribes_each_symbol_on_ready() -> None:
    r = Reconciler(INC, kinds=[T])
    r.handle(Want(T, fs("B", "A")), 0.0)
    assert r.handle(ConnectionReady(), 1.0) == [
        SendRequest(1, T, SUB, ("A",)),
        SendRequest(2, T, SUB, ("B",)),
    ]
    assert r.handle(Acked(2), 1.1) == [Confirmed(T, fs("B"))]
    assert r.handle(Acked(1), 1.2) == [Confirmed(T, fs("A", "B"))]
    assert r.is_converged()


@pytest.mark.parametrize("semantics", [RA, INC])
def test_connection_lost_clears_confirmed_silently_and_voids_in_flight(
    semantics: Semantics,
) -> None:
    r = ready(semantics, kinds=[T])
    [first] = sends(r.handle(Want(T, fs("A")), 0.0))
    assert r.handle(Acked(first.ref), 0.1) == [Confirmed(T, fs("A"))]
    [second] = sends(r.handle(Want(T, fs("B")), 0.2))
    assert r.handle(ConnectionLost(), 0.3) == []
    assert r.confirmed(T) == fs()
    assert r.in_flight(T) == ()
    assert r.handle(Want(T, fs("C")), 0.4) == []  # not ready: nothing goes out
    assert r.handle(Acked(second.ref), 0.5) == []  # late answer of the dead connection
    assert r.confirmed(T) == fs()
    resent = sends(r.handle(ConnectionReady(), 1.0))
    if semantics is RA:
        assert resent == [SendRequest(3, T, REPLACE, ("A", "B", "C"))]
    else:
        assert resent == [SendRequest(3 + i, T, SUB, (s,)) for i, s in enumerate("ABC")]
    stats = r.statistics()
    assert stats["stale_answers"] == 1
    assert stats["voided"] == 1


@pytest.mark.parametrize("semantics", [RA, INC])
def test_connection_lost_cancels_retry_timers(semantics: Semantics) -> None:
    r = ready(semantics, kinds=[T], retry_delay=5.0)
    [request] = sends(r.handle(Want(T, fs("A")), 0.0))
    assert r.handle(TimedOut(request.ref), 3.0) == []
    assert r.next_deadline() == 8.0
    r.handle(ConnectionLost(), 4.0)
    assert r.next_deadline() is None
    assert sends(r.handle(ConnectionReady(), 4.5)) == [
        SendRequest(2, T, REPLACE if semantics is RA else SUB, ("A",))
    ]


def test_ready_twice_acts_as_lost_then_ready() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(ConnectionReady(), 1.0) == [SendRequest(2, T, REPLACE, ("A",))]
    assert r.statistics()["voided"] == 0
    assert r.confirmed(T) == fs()


def test_refs_are_never_reused() -> None:
    r = ready(INC, kinds=[T])
    refs: list[int] = []
    for i in range(5):
        refs += [s.ref for s in sends(r.handle(Want(T, fs(f"S{i}")), float(i)))]
        r.handle(ConnectionLost(), i + 0.5)
        refs += [s.ref for s in sends(r.handle(ConnectionReady(), i + 0.6))]
    assert refs == list(range(1, len(refs) + 1))


# ------------------------------------------------------------ minimal requests


def test_replace_all_request_is_sorted_and_duplicate_free() -> None:
    r = ready(RA, kinds=[T])
    assert r.handle(Want(T, fs("c", "a", "b")), 0.0) == [
        SendRequest(1, T, REPLACE, ("a", "b", "c"))
    ]


@pytest.mark.parametrize("semantics", [RA, INC])
def test_nothing_sent_when_the_known_state_already_matches(semantics: Semantics) -> None:
    r = ready(semantics, kinds=[T])
    [request] = sends(r.handle(Want(T, fs("A")), 0.0))
    r.handle(Acked(request.ref), 0.1)
    assert r.handle(Want(T, fs("A")), 0.2) == []
    assert r.handle(Unwant(T, fs("Z")), 0.3) == []
    assert r.handle(Want(T, fs()), 0.4) == []
    assert r.statistics()["requests_sent"] == 1


def test_replace_all_one_request_in_flight_and_changes_coalesce() -> None:
    r = ready(RA, kinds=[T])
    assert sends(r.handle(Want(T, fs("A")), 0.0)) == [SendRequest(1, T, REPLACE, ("A",))]
    assert r.handle(Want(T, fs("B", "C")), 0.1) == []
    assert r.handle(Unwant(T, fs("B")), 0.2) == []
    assert r.handle(Acked(1), 0.3) == [
        Confirmed(T, fs("A")),
        SendRequest(2, T, REPLACE, ("A", "C")),
    ]
    assert r.statistics()["coalesced"] == 2  # B, C, -B travelled in one request


def test_replace_all_drops_to_empty_with_a_cancel() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A", "B")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(Unwant(T, fs("A")), 0.2) == [SendRequest(2, T, REPLACE, ("B",))]
    r.handle(Acked(2), 0.3)
    assert r.handle(Unwant(T, fs("B")), 0.4) == [SendRequest(3, T, CANCEL, ())]
    assert r.handle(Acked(3), 0.5) == [Confirmed(T, fs())]
    assert r.is_converged()


def test_replace_all_no_cancel_when_the_venue_holds_nothing() -> None:
    # Wanted and unwanted before the connection: never sent, so nothing to cancel.
    r2 = Reconciler(RA, kinds=[T])
    r2.handle(Want(T, fs("A")), 0.0)
    r2.handle(Unwant(T, fs("A")), 0.0)
    assert r2.handle(ConnectionReady(), 1.0) == []
    assert r2.is_converged()
    # The only request was refused: the venue holds nothing, unwanting sends nothing.
    r3 = ready(RA, kinds=[T])
    r3.handle(Want(T, fs("BAD")), 0.0)
    assert r3.handle(Rejected(1, 600, "code invalid"), 0.1) == [
        SymbolsRejected(T, fs("BAD"), 600, "code invalid")
    ]
    assert r3.handle(Unwant(T, fs("BAD")), 0.2) == []
    assert r3.is_converged()


def test_replace_all_cancel_after_unwant_while_in_flight() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A")), 0.0)
    assert r.handle(Unwant(T, fs("A")), 0.1) == []
    assert r.handle(Acked(1), 0.2) == [Confirmed(T, fs("A")), SendRequest(2, T, CANCEL, ())]


def test_kinds_are_independent() -> None:
    r = ready(RA)
    assert r.handle(Want(T, fs("A")), 0.0) == [SendRequest(1, T, REPLACE, ("A",))]
    assert r.handle(Want(B, fs("A")), 0.1) == [SendRequest(2, B, REPLACE, ("A",))]


def test_incremental_coalesces_changes_while_in_flight() -> None:
    r = ready(INC, kinds=[T])
    assert r.handle(Want(T, fs("A")), 0.0) == [SendRequest(1, T, SUB, ("A",))]
    assert r.handle(Unwant(T, fs("A")), 0.1) == []
    assert r.handle(Want(T, fs("A")), 0.2) == []
    assert r.handle(Acked(1), 0.3) == [Confirmed(T, fs("A"))]
    assert r.is_converged()
    stats = r.statistics()
    assert stats["requests_sent"] == 1
    assert stats["coalesced"] == 2


def test_incremental_unsubscribes_after_ack_when_unwanted_meanwhile() -> None:
    r = ready(INC, kinds=[T])
    r.handle(Want(T, fs("A", "B")), 0.0)
    r.handle(Unwant(T, fs("A")), 0.1)
    assert r.handle(Acked(1), 0.2) == [Confirmed(T, fs("A")), SendRequest(3, T, UNSUB, ("A",))]
    assert r.handle(Acked(3), 0.3) == [Confirmed(T, fs())]
    r.handle(Acked(2), 0.4)
    assert r.confirmed(T) == fs("B")
    assert r.is_converged()


# ------------------------------------------------------------------- spacing


def test_spacing_holds_the_next_request_and_deadline_says_when() -> None:
    r = ready(RA, request_spacing=1.05)
    assert r.handle(Want(T, fs("A")), 0.0) == [SendRequest(1, T, REPLACE, ("A",))]
    assert r.handle(Want(B, fs("X")), 0.1) == []
    assert r.next_deadline() == 1.05
    assert r.poll(1.0) == []
    assert r.poll(1.05) == [SendRequest(2, B, REPLACE, ("X",))]
    r.handle(Acked(1), 1.1)
    assert r.handle(Want(T, fs("B")), 1.2) == []
    assert r.next_deadline() == 1.05 + 1.05
    assert r.poll(2.1) == [SendRequest(3, T, REPLACE, ("A", "B"))]
    assert r.next_deadline() is None


def test_spacing_composes_the_request_at_send_time() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Want(T, fs("B")), 0.2)
    r.handle(Want(T, fs("C")), 0.3)
    r.handle(Unwant(T, fs("A")), 0.4)
    assert r.poll(1.05) == [SendRequest(2, T, REPLACE, ("B", "C"))]


def test_incremental_spacing_on_reconnect() -> None:
    r = Reconciler(INC, kinds=[T], request_spacing=0.5)
    r.handle(Want(T, fs("A", "B", "C")), 0.0)
    assert r.handle(ConnectionReady(), 10.0) == [SendRequest(1, T, SUB, ("A",))]
    assert r.next_deadline() == 10.5
    assert r.poll(10.5) == [SendRequest(2, T, SUB, ("B",))]
    assert r.poll(10.9) == []
    assert r.poll(11.0) == [SendRequest(3, T, SUB, ("C",))]
    assert r.next_deadline() is None


def test_spacing_holds_across_reconnects() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(ConnectionLost(), 0.2)
    assert r.handle(ConnectionReady(), 0.5) == []
    assert r.next_deadline() == 1.05
    assert r.poll(1.05) == [SendRequest(2, T, REPLACE, ("A",))]


@pytest.mark.parametrize("semantics", [RA, INC])
def test_a_thousand_toggles_within_a_second_cost_two_requests(semantics: Semantics) -> None:
    r = ready(semantics, kinds=[T], request_spacing=1.05)
    out: list[Command] = []
    for i in range(1000):
        if i == 500:
            out += r.handle(Acked(1), i / 1000)
        event = Want(T, fs("A")) if i % 2 == 0 else Unwant(T, fs("A"))
        out += r.handle(event, i / 1000)
    first = SendRequest(1, T, REPLACE if semantics is RA else SUB, ("A",))
    assert sends(out) == [first]
    assert r.next_deadline() == 1.05
    second = SendRequest(2, T, CANCEL, ()) if semantics is RA else SendRequest(2, T, UNSUB, ("A",))
    assert r.poll(1.05) == [second]
    assert r.handle(Acked(2), 1.1) == [Confirmed(T, fs())]
    assert r.is_converged()
    stats = r.statistics()
    assert stats["requests_sent"] == 2
    assert stats["coalesced"] == 998


def test_a_thousand_changes_over_many_symbols_coalesce() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05)
    out: list[Command] = []
    for i in range(1000):
        symbol = f"S{i % 7}"
        event = Want(T, fs(symbol)) if (i // 7) % 2 == 0 else Unwant(T, fs(symbol))
        out += r.handle(event, i / 1000)
    out += r.handle(Acked(1), 0.9995)
    final = r.desired(T)
    assert final == fs("S0", "S1", "S2", "S3", "S4", "S5")  # 1000 = 142*7 + 6
    assert sends(out) == [SendRequest(1, T, REPLACE, ("S0",))]
    assert r.poll(1.05) == [SendRequest(2, T, REPLACE, tuple(sorted(final)))]
    r.handle(Acked(2), 1.1)
    assert r.is_converged()
    assert r.statistics()["requests_sent"] == 2


# ---------------------------------------------------------- timeouts and limits


def test_replace_all_timeout_resends_after_retry_delay_even_if_unchanged() -> None:
    r = ready(RA, kinds=[T], retry_delay=1.0)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Refresh(T, fs("A")), 1.0)  # a deliberate resend of [A] ...
    assert r.in_flight(T) == (SendRequest(2, T, REPLACE, ("A",)),)
    assert r.handle(TimedOut(2), 6.0) == []  # ... whose answer is lost
    assert r.next_deadline() == 7.0
    assert r.poll(6.9) == []
    assert r.poll(7.0) == [SendRequest(3, T, REPLACE, ("A",))]
    assert r.handle(Acked(2), 7.1) == []  # too late: ignored
    assert r.handle(Acked(3), 7.2) == []  # confirmed did not change
    assert r.is_converged()
    assert r.statistics()["stale_answers"] == 1


def test_replace_all_timeout_then_empty_target_cancels() -> None:
    r = ready(RA, kinds=[T], retry_delay=1.0)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(TimedOut(1), 5.0)
    r.handle(Unwant(T, fs("A")), 5.5)
    assert r.poll(6.0) == [SendRequest(2, T, CANCEL, ())]


def test_incremental_timeout_resends_what_is_wanted_now() -> None:
    r = ready(INC, kinds=[T], retry_delay=2.0)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(TimedOut(1), 5.0)
    r.handle(Unwant(T, fs("A")), 5.5)  # the venue may hold it: unsubscribe
    assert r.next_deadline() == 7.0
    assert r.poll(7.0) == [SendRequest(2, T, UNSUB, ("A",))]
    assert r.handle(Rejected(2, 404, "not subscribed"), 7.1) == []
    assert r.is_converged()


@pytest.mark.parametrize("semantics", [RA, INC])
def test_rate_limited_resend_waits_retry_after(semantics: Semantics) -> None:
    r = ready(semantics, retry_delay=1.0)
    r.handle(Want(T, fs("A")), 0.0)
    assert r.handle(RateLimited(1, retry_after=5.0), 2.0) == []
    assert r.handle(Want(B, fs("X")), 3.0) == []  # the whole connection waits
    assert r.next_deadline() == 7.0
    assert r.poll(6.99) == []
    action = REPLACE if semantics is RA else SUB
    # Kinds take turns: BOOK waited longest for its turn.
    assert r.poll(7.0) == [SendRequest(2, B, action, ("X",)), SendRequest(3, T, action, ("A",))]
    assert r.handle(RateLimited(2), 7.5) == []
    assert r.next_deadline() == 8.5
    assert r.statistics()["rate_limited"] == 2


# ---------------------------------------------------------------- rejections


def test_replace_all_named_offenders_are_rejected_at_once() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A", "B", "C")), 0.0)
    assert r.handle(Rejected(1, 604, "code unauthorized", fs("B", "Q")), 0.1) == [
        SymbolsRejected(T, fs("B"), 604, "code unauthorized"),
        SendRequest(2, T, REPLACE, ("A", "C")),
    ]
    assert r.rejected(T) == {"B": (604, "code unauthorized")}
    r.handle(Acked(2), 0.2)
    assert r.is_converged()
    assert r.desired(T) == fs("A", "B", "C")


def test_rejected_symbol_comes_back_only_when_unwanted_and_wanted_again() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A", "B")), 0.0)
    r.handle(Rejected(1, 600, "code invalid", fs("B")), 0.1)
    r.handle(Acked(2), 0.2)
    assert r.handle(Want(T, fs("B")), 0.3) == []  # still rejected
    assert r.handle(Unwant(T, fs("B")), 0.4) == []
    assert r.rejected(T) == {}
    assert r.handle(Want(T, fs("B")), 0.5) == [SendRequest(3, T, REPLACE, ("A", "B"))]


def test_incremental_rejected_subscribe_rejects_the_symbol() -> None:
    r = ready(INC, kinds=[T])
    r.handle(Want(T, fs("A", "BAD")), 0.0)
    assert r.handle(Rejected(2, 400, "unknown contract"), 0.1) == [
        SymbolsRejected(T, fs("BAD"), 400, "unknown contract")
    ]
    r.handle(Acked(1), 0.2)
    assert r.is_converged()
    assert r.confirmed(T) == fs("A")


def test_incremental_rejected_unsubscribe_is_not_retried() -> None:
    r = ready(INC, kinds=[T])
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(Unwant(T, fs("A")), 0.2) == [SendRequest(2, T, UNSUB, ("A",))]
    assert r.handle(Rejected(2, 404, "not subscribed"), 0.3) == [Confirmed(T, fs())]
    assert r.next_deadline() is None
    assert r.is_converged()


def test_replace_all_rejected_cancel_is_not_retried() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Unwant(T, fs("A")), 0.2)
    assert r.handle(Rejected(2, 400, "nothing to cancel"), 0.3) == [Confirmed(T, fs())]
    assert r.next_deadline() is None


@pytest.mark.parametrize("semantics", [RA, INC])
def test_max_symbols_rejects_beyond_the_cap_up_front(semantics: Semantics) -> None:
    r = ready(semantics, kinds=[T], max_symbols=2)
    out = r.handle(Want(T, fs("C", "A", "B")), 0.0)
    assert out[0] == SymbolsRejected(T, fs("C"), 603, CAP_REASON)
    assert {s for request in sends(out) for s in request.symbols} == {"A", "B"}
    assert r.handle(Want(T, fs("D")), 0.1) == [SymbolsRejected(T, fs("D"), 603, CAP_REASON)]
    for request in sends(out):
        r.handle(Acked(request.ref), 0.2)
    assert r.is_converged()
    # Freeing a place does not revive a capped symbol; re-wanting it does.
    for request in sends(r.handle(Unwant(T, fs("A")), 0.3)):
        r.handle(Acked(request.ref), 0.35)
    assert r.rejected(T) == {"C": (603, CAP_REASON), "D": (603, CAP_REASON)}
    out = r.handle(Unwant(T, fs("C")), 0.4) + r.handle(Want(T, fs("C")), 0.5)
    assert r.rejected(T) == {"D": (603, CAP_REASON)}
    assert sum("C" in request.symbols for request in sends(out)) == 1


# ----------------------------------------------------------------- bisection


def bisect(
    symbols: Sequence[str], bad: Iterable[str] = (), cap: int | None = None, code: int = 600
) -> tuple[Reconciler, list[Command], AllTickVenue]:
    r = ready(RA, request_spacing=1.05)
    venue = AllTickVenue(bad, cap, code)
    log, times = run(r, venue, r.handle(Want(T, frozenset(symbols)), 0.0), 0.0)
    assert r.is_converged()
    assert venue.state[T] == r.confirmed(T) == r.desired(T) - set(r.rejected(T))
    assert all(b >= a + 1.05 for a, b in itertools.pairwise(times))
    return r, log, venue


def bound(n: int, k: int) -> int:
    return 2 * k * math.ceil(math.log2(n)) + 2


EIGHT = ("a", "b", "c", "d", "e", "f", "g", "h")


@pytest.mark.parametrize("culprit", EIGHT)
def test_bisection_finds_one_bad_symbol(culprit: str) -> None:
    r, log, _ = bisect(EIGHT, bad=[culprit])
    assert r.rejected(T) == {culprit: (600, "code invalid")}
    assert [c for c in log if isinstance(c, SymbolsRejected)] == [
        SymbolsRejected(T, fs(culprit), 600, "code invalid")
    ]
    assert len(sends(log)) <= 8 == bound(8, 1)
    assert r.statistics()["culprit_searches"] == 1


def test_bisection_one_bad_symbol_exact_requests() -> None:
    _, log, _ = bisect(EIGHT, bad=["h"])
    assert [request.symbols for request in sends(log)] == [
        EIGHT,
        ("a", "b", "c", "d"),
        EIGHT,  # known good a-d plus the group e-h: refused, split
        ("a", "b", "c", "d", "e", "f"),
        EIGHT,  # plus g, h: refused, split
        ("a", "b", "c", "d", "e", "f", "g"),
        EIGHT,  # plus h alone: refused, h is the culprit
    ]


@pytest.mark.parametrize("culprits", [("a", "b"), ("b", "h"), ("d", "e"), ("a", "h"), ("g", "h")])
def test_bisection_finds_two_bad_symbols(culprits: tuple[str, str]) -> None:
    r, log, _ = bisect(EIGHT, bad=culprits)
    assert set(r.rejected(T)) == set(culprits)
    assert len(sends(log)) <= bound(8, 2)


def test_bisection_two_bad_symbols_exact_cost_and_time() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05)
    venue = AllTickVenue(bad=["b", "h"])
    _, times = run(r, venue, r.handle(Want(T, frozenset(EIGHT)), 0.0), 0.0)
    assert len(times) == 11 <= bound(8, 2)
    # Answers come at once, so the search runs at the spacing's pace: done at 10 * 1.05.
    for earlier, later in itertools.pairwise(times):
        assert later == earlier + 1.05
    assert r.rejected(T) == {"b": (600, "code invalid"), "h": (600, "code invalid")}
    assert venue.state[T] == {"a", "c", "d", "e", "f", "g"}


def test_bisection_with_a_plan_cap_603() -> None:
    r, log, venue = bisect(EIGHT, cap=5)
    assert r.rejected(T) == {s: (603, "plan too small") for s in ("f", "g", "h")}
    assert venue.state[T] == {"a", "b", "c", "d", "e"}
    assert len(sends(log)) == 6
    assert [c for c in log if isinstance(c, SymbolsRejected)] == [
        SymbolsRejected(T, fs("f", "g", "h"), 603, "plan too small")
    ]


def test_known_good_symbols_are_not_suspects() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(Want(T, fs("c", "d", "e")), 0.2) == [
        SendRequest(2, T, REPLACE, ("a", "b", "c", "d", "e"))
    ]
    assert r.handle(Rejected(2, 600, "code invalid"), 0.3) == [
        SendRequest(3, T, REPLACE, ("a", "b", "c", "d"))
    ]
    assert r.handle(Acked(3), 0.4) == [
        Confirmed(T, fs("a", "b", "c", "d")),
        SendRequest(4, T, REPLACE, ("a", "b", "c", "d", "e")),
    ]
    assert r.handle(Rejected(4, 600, "code invalid"), 0.5) == [
        SymbolsRejected(T, fs("e"), 600, "code invalid")
    ]
    assert r.is_converged()


def test_a_single_unproven_symbol_is_the_culprit() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Want(T, fs("c")), 0.2)
    assert r.handle(Rejected(2, 604, "code unauthorized"), 0.3) == [
        SymbolsRejected(T, fs("c"), 604, "code unauthorized")
    ]
    assert r.next_deadline() is None
    assert r.statistics()["culprit_searches"] == 0


def test_refused_known_good_set_is_demoted_to_suspects_once() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Refresh(T, fs("a")), 1.0)
    assert r.in_flight(T) == (SendRequest(2, T, REPLACE, ("a", "b")),)
    # The venue no longer allows b (plan changed): bisect among known good.
    assert r.handle(Rejected(2, 604, "code unauthorized"), 1.1) == [
        SendRequest(3, T, REPLACE, ("a",))
    ]
    assert r.handle(Acked(3), 1.2) == [
        Confirmed(T, fs("a")),
        SendRequest(4, T, REPLACE, ("a", "b")),
    ]
    assert r.handle(Rejected(4, 604, "code unauthorized"), 1.3) == [
        SymbolsRejected(T, fs("b"), 604, "code unauthorized")
    ]
    assert r.is_converged()


def test_refused_known_good_set_suspects_what_the_venue_does_not_hold() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Unwant(T, fs("b")), 0.2)
    r.handle(Acked(2), 0.3)
    assert r.handle(Want(T, fs("b")), 0.4) == [SendRequest(3, T, REPLACE, ("a", "b"))]
    # b was good once, but [a] is what the venue holds now: b is the culprit.
    assert r.handle(Rejected(3, 604, "code unauthorized"), 0.5) == [
        SymbolsRejected(T, fs("b"), 604, "code unauthorized")
    ]
    assert r.is_converged()


def test_an_inconsistent_venue_cannot_make_a_loop() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Refresh(T, fs("a")), 1.0)
    r.handle(Rejected(2, 600, "code invalid"), 1.1)  # demoted: [a] then [a, b]
    r.handle(Acked(3), 1.2)
    r.handle(Acked(4), 1.3)  # now it takes [a, b] after all
    assert r.is_converged()
    r.handle(Refresh(T, fs("a")), 2.0)
    # The very same set refused again: this time give up on it, no second search.
    assert r.handle(Rejected(5, 600, "code invalid"), 2.1) == [
        SymbolsRejected(T, fs("a", "b"), 600, "code invalid"),
        SendRequest(6, T, CANCEL, ()),
    ]


def test_wants_during_a_search_wait_for_it_then_join() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b", "c", "d")), 0.0)
    assert r.handle(Rejected(1, 600, "code invalid"), 0.1) == [
        SendRequest(2, T, REPLACE, ("a", "b"))
    ]
    assert r.handle(Want(T, fs("e")), 0.2) == []
    assert r.handle(Acked(2), 0.3) == [
        Confirmed(T, fs("a", "b")),
        SendRequest(3, T, REPLACE, ("a", "b", "c", "d")),
    ]
    assert r.handle(Acked(3), 0.4) == [
        Confirmed(T, fs("a", "b", "c", "d")),
        SendRequest(4, T, REPLACE, ("a", "b", "c", "d", "e")),
    ]
    assert r.handle(Rejected(4, 600, "code invalid"), 0.5) == [
        SymbolsRejected(T, fs("e"), 600, "code invalid")
    ]
    assert r.is_converged()


def test_unwanting_the_suspects_ends_the_search() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b", "c", "d")), 0.0)
    r.handle(Rejected(1, 600, "code invalid"), 0.1)
    assert r.in_flight(T) == (SendRequest(2, T, REPLACE, ("a", "b")),)
    r.handle(Unwant(T, fs("c", "d")), 0.2)
    assert r.handle(Acked(2), 0.3) == [Confirmed(T, fs("a", "b"))]
    assert r.is_converged()


def test_the_other_kind_proceeds_during_a_search() -> None:
    r = ready(RA)
    r.handle(Want(T, fs("a", "b", "c", "d")), 0.0)
    r.handle(Rejected(1, 600, "code invalid"), 0.1)
    assert r.handle(Want(B, fs("x")), 0.2) == [SendRequest(3, B, REPLACE, ("x",))]


def test_cap_603_on_a_single_group_rejects_all_remaining_suspects() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("a", "b", "c", "d")), 0.0)
    assert r.handle(Rejected(1, 603, "plan too small"), 0.1) == [
        SendRequest(2, T, REPLACE, ("a", "b"))
    ]
    r.handle(Rejected(2, 603, "plan too small"), 0.2)  # even two are too many
    assert r.in_flight(T) == (SendRequest(3, T, REPLACE, ("a",)),)
    r.handle(Want(T, fs("e")), 0.25)  # joins the suspects
    assert r.handle(Rejected(3, 603, "plan too small"), 0.3) == [
        SymbolsRejected(T, fs("a", "b", "c", "d", "e"), 603, "plan too small")
    ]
    assert r.is_converged()


def test_events_handled_together_coalesce_into_one_request() -> None:
    one_by_one = ready(RA, kinds=[T])
    first = one_by_one.handle(Want(T, fs("A")), 0.0)
    second = one_by_one.handle(Want(T, fs("B")), 0.0)
    assert first == [SendRequest(1, T, REPLACE, ("A",))] and second == []
    together = ready(RA, kinds=[T])
    events = [Want(T, fs("A")), Want(T, fs("B")), Unwant(T, fs("A")), Want(T, fs("C"))]
    assert together.handle_all(events, 0.0) == [SendRequest(1, T, REPLACE, ("B", "C"))]
    assert together.handle_all([GhostSeen(T, "Z")], 0.1) == []  # nothing changed: no drain


# -------------------------------------------------------------------- ghosts


def test_replace_all_persisting_ghost_repeats_the_cancel() -> None:
    r = ready(RA, kinds=[T], ghost_grace=2.0, ghost_threshold=3)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(Unwant(T, fs("A")), 1.0) == [SendRequest(2, T, CANCEL, ())]
    assert r.handle(GhostSeen(T, "A"), 1.05) == []  # removal in flight: only counted
    r.handle(Acked(2), 1.1)
    assert r.handle(GhostSeen(T, "A"), 2.0) == []  # within the grace
    assert r.handle(GhostSeen(T, "A"), 3.1) == []  # exactly the grace: not more than it
    assert r.handle(GhostSeen(T, "A"), 3.2) == []
    assert r.handle(GhostSeen(T, "A"), 3.3) == []
    assert r.handle(GhostSeen(T, "A"), 3.4) == [
        GhostPersisting(T, "A", 3),
        SendRequest(3, T, CANCEL, ()),
    ]
    assert r.handle(GhostSeen(T, "A"), 3.5) == []  # in flight again
    r.handle(Acked(3), 3.6)
    assert r.handle(GhostSeen(T, "A"), 5.0) == []  # a new grace from the new ack
    stats = r.statistics()
    assert stats["ghosts_seen"] == 8
    assert stats["ghost_resends"] == 1


def test_replace_all_ghost_repeats_the_current_target() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05, ghost_grace=2.0, ghost_threshold=2)
    r.handle(Want(T, fs("A", "B")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Unwant(T, fs("A")), 0.5)
    assert r.poll(1.05) == [SendRequest(2, T, REPLACE, ("B",))]
    r.handle(Acked(2), 1.1)
    r.handle(GhostSeen(T, "A"), 3.2)
    # Due now, sent at once: spacing is long past.
    assert r.handle(GhostSeen(T, "A"), 3.3) == [
        GhostPersisting(T, "A", 2),
        SendRequest(3, T, REPLACE, ("B",)),
    ]


def test_ghost_resend_respects_spacing() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05, ghost_grace=0.5, ghost_threshold=1)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Unwant(T, fs("A")), 0.2)
    assert r.poll(1.05) == [SendRequest(2, T, CANCEL, ())]
    r.handle(Acked(2), 1.1)
    assert r.handle(GhostSeen(T, "A"), 1.7) == []
    assert r.next_deadline() == 2.1
    assert r.poll(2.1) == [GhostPersisting(T, "A", 1), SendRequest(3, T, CANCEL, ())]


def test_ghost_bookkeeping_is_bounded_when_the_venue_invents_codes() -> None:
    from tickactors._core.reconciler_kind import MAX_GHOST_SYMBOLS

    r = ready(RA, kinds=[T], ghost_threshold=3, ghost_grace=0.0)
    for i in range(MAX_GHOST_SYMBOLS + 500):
        r.handle(GhostSeen(T, f"X{i}"), 1.0)
    state = r._kinds[T]
    assert len(state.ghost_counts) == MAX_GHOST_SYMBOLS
    assert r.statistics()["ghosts_seen"] == MAX_GHOST_SYMBOLS + 500  # all still counted
    # A symbol already tracked keeps counting toward its corrective resend.
    r.handle(GhostSeen(T, "X0"), 1.1)
    assert r.handle(GhostSeen(T, "X0"), 1.2) != []


def test_ghost_of_a_desired_symbol_is_not_a_ghost() -> None:
    r = ready(RA, kinds=[T], ghost_threshold=1, ghost_grace=0.0)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(GhostSeen(T, "A"), 5.0) == []
    assert r.statistics()["ghosts_seen"] == 0


def test_incremental_persisting_ghost_repeats_the_unsubscribe() -> None:
    r = ready(INC, kinds=[T], ghost_grace=2.0, ghost_threshold=2)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    r.handle(Unwant(T, fs("A")), 1.0)
    r.handle(GhostSeen(T, "A"), 1.5)  # unsubscribe in flight: counted only
    r.handle(Acked(2), 2.0)
    r.handle(GhostSeen(T, "A"), 4.0)  # exactly the grace
    r.handle(GhostSeen(T, "A"), 4.1)
    assert r.handle(GhostSeen(T, "A"), 4.2) == [
        GhostPersisting(T, "A", 2),
        SendRequest(3, T, UNSUB, ("A",)),
    ]
    assert r.statistics()["ghost_resends"] == 1


def test_incremental_ghost_never_subscribed_on_this_connection() -> None:
    r = Reconciler(INC, kinds=[T], ghost_grace=1.0, ghost_threshold=1)
    assert r.handle(GhostSeen(T, "Z"), 0.0) == []  # not ready: counted only
    r.handle(ConnectionReady(), 10.0)
    assert r.handle(GhostSeen(T, "Z"), 10.5) == []
    assert r.handle(GhostSeen(T, "Z"), 11.5) == [
        GhostPersisting(T, "Z", 1),
        SendRequest(1, T, UNSUB, ("Z",)),
    ]


def test_wanting_a_ghost_drops_its_correction() -> None:
    r = ready(INC, kinds=[T], request_spacing=1.0, ghost_grace=0.0, ghost_threshold=1)
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(GhostSeen(T, "Z"), 0.5)  # due, but spacing holds it
    assert r.handle(Want(T, fs("Z")), 0.6) == []
    assert r.poll(1.0) == [SendRequest(2, T, SUB, ("Z",))]


# ------------------------------------------------------------------- refresh


def test_incremental_refresh_resubscribes_each_symbol() -> None:
    r = ready(INC, kinds=[T])
    r.handle(Want(T, fs("A", "B", "C")), 0.0)
    for ref in (1, 2, 3):
        r.handle(Acked(ref), 0.1)
    assert r.handle(Refresh(T, fs("A", "C", "Z")), 1.0) == [
        SendRequest(4, T, SUB, ("A",)),
        SendRequest(5, T, SUB, ("C",)),
    ]
    assert r.handle(Acked(4), 1.1) == []
    assert r.statistics()["refresh_resends"] == 2


def test_replace_all_refresh_resends_the_set_once() -> None:
    r = ready(RA, kinds=[T], request_spacing=1.05)
    r.handle(Want(T, fs("A", "B")), 0.0)
    r.handle(Acked(1), 0.1)
    assert r.handle(Refresh(T, fs("A", "B")), 0.5) == []
    assert r.handle(Refresh(T, fs("A")), 0.6) == []
    assert r.poll(1.05) == [SendRequest(2, T, REPLACE, ("A", "B"))]
    assert r.handle(Refresh(T, fs("A")), 1.06) == []  # in flight: it refreshes anyway
    r.handle(Acked(2), 1.1)
    assert r.next_deadline() is None
    assert r.statistics()["refresh_resends"] == 1


@pytest.mark.parametrize("semantics", [RA, INC])
def test_rate_limited_refresh_is_repeated(semantics: Semantics) -> None:
    r = ready(semantics, kinds=[T])
    r.handle(Want(T, fs("A")), 0.0)
    r.handle(Acked(1), 0.1)
    action = REPLACE if semantics is RA else SUB
    assert r.handle(Refresh(T, fs("A")), 1.0) == [SendRequest(2, T, action, ("A",))]
    assert r.handle(RateLimited(2, 3.0), 1.1) == []
    assert r.next_deadline() == 4.1
    assert r.poll(4.1) == [SendRequest(3, T, action, ("A",))]
    assert r.statistics()["refresh_resends"] == 2


@pytest.mark.parametrize("semantics", [RA, INC])
def test_rate_limited_ghost_correction_is_repeated(semantics: Semantics) -> None:
    r = ready(semantics, kinds=[T], ghost_grace=0.0, ghost_threshold=1)
    removal = SendRequest(1, T, CANCEL, ()) if semantics is RA else SendRequest(1, T, UNSUB, ("Z",))
    assert r.handle(GhostSeen(T, "Z"), 1.0) == [GhostPersisting(T, "Z", 1), removal]
    assert r.handle(RateLimited(1, 2.0), 1.1) == []
    assert r.poll(3.1) == [attrs.evolve(removal, ref=2)]
    assert r.statistics()["ghost_resends"] == 2


def test_refresh_of_unconfirmed_or_unwanted_symbols_does_nothing() -> None:
    r = ready(INC, kinds=[T])
    assert r.handle(Refresh(T, fs("A")), 0.0) == []
    r.handle(Want(T, fs("A")), 0.1)
    assert r.handle(Refresh(T, fs("A")), 0.2) == []  # subscribe already in flight
    assert r.statistics()["requests_sent"] == 1


# --------------------------------------------------------------- misc / API


def test_wanted_view_is_live_and_read_only() -> None:
    r = Reconciler(RA)
    view = r.wanted_view(T)
    assert "A" not in view
    r.handle(Want(T, fs("A")), 0.0)
    assert "A" in view
    assert not hasattr(view, "add")
    r.handle(Unwant(T, fs("A")), 0.1)
    assert len(view) == 0


def test_statistics_has_every_counter() -> None:
    r = ready(RA, kinds=[T])
    r.handle(Want(T, fs("A")), 0.0)
    stats = r.statistics()
    for name in (
        "requests_sent",
        "acks",
        "rejections",
        "timeouts",
        "rate_limited",
        "ghosts_seen",
        "ghost_resends",
        "coalesced",
        "stale_answers",
    ):
        assert name in stats
    assert stats["requests_sent"] == 1
    assert stats["in_flight"] == 1


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError):
        Reconciler(RA, kinds=[])
    with pytest.raises(ValueError):
        Reconciler(RA, request_spacing=-1.0)
    with pytest.raises(ValueError):
        Reconciler(RA, ghost_threshold=0)
    with pytest.raises(ValueError):
        Reconciler(RA, max_symbols=0)
    r = Reconciler(RA, kinds=[T])
    with pytest.raises(ValueError):
        r.handle(Want(B, fs("A")), 0.0)
    with pytest.raises(ValueError):
        r.handle(Want(T, fs("")), 0.0)
    with pytest.raises(TypeError):
        r.handle("nonsense", 0.0)  # type: ignore[arg-type]
