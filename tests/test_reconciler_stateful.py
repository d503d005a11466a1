"""The reconciler against a fake venue that loses, delays, refuses and throttles.

A Hypothesis ``RuleBasedStateMachine`` drives one reconciler and a fake venue
model through user changes, honest and faulty answers, disconnects, ghost ticks
and the passing of time, checking after every step what must always hold; its
teardown then stops the faults, answers everything honestly, and checks that
the venue ends up streaming exactly what the user wants minus what is rejected.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

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

KINDS = (StreamKind.TRADES, StreamKind.BOOK)
UNIVERSE = ("A", "B", "C", "D", "E", "F")
BAD = frozenset({"C", "F"})
RETRY_DELAY = 0.5
GHOST_GRACE = 1.0
GHOST_THRESHOLD = 2

Key = tuple[StreamKind, str]  # (kind, symbol); symbol "" for a whole REPLACE_ALL set

kinds = st.sampled_from(KINDS)
symbol_sets = st.frozensets(st.sampled_from(UNIVERSE), min_size=1, max_size=3)
codes = st.sampled_from([600, 603, 604])
delays = st.sampled_from([0.0, 0.3, 1.1])  # how long an answer takes


class FakeVenue:
    """What the venue streams on the current connection, and how it answers."""

    def __init__(self, semantics: Semantics) -> None:
        self.semantics = semantics
        self.state: dict[StreamKind, set[str]] = {k: set() for k in KINDS}
        self.ghosts: dict[StreamKind, set[str]] = {k: set() for k in KINDS}

    def reset(self) -> None:
        for kind in KINDS:
            self.state[kind].clear()
            self.ghosts[kind].clear()

    def process(self, request: SendRequest, code: int, name: bool, refuse_unsub: bool) -> Event:
        """Apply ``request`` honestly; return the answer the venue would give."""
        kind, symbols = request.kind, set(request.symbols)
        if request.action in (Action.REPLACE, Action.SUBSCRIBE) and symbols & BAD:
            named = frozenset(symbols & BAD) if name else None
            return Rejected(request.ref, code, "code invalid", named)
        if request.action is Action.REPLACE or request.action is Action.CANCEL:
            self.state[kind] = symbols
            self.ghosts[kind].clear()
        elif request.action is Action.SUBSCRIBE:
            self.state[kind] |= symbols
            self.ghosts[kind] -= symbols
        else:
            [symbol] = symbols
            held = symbol in self.state[kind] or symbol in self.ghosts[kind]
            self.state[kind].discard(symbol)
            self.ghosts[kind].discard(symbol)
            if not held and refuse_unsub:
                return Rejected(request.ref, 404, "not subscribed")
        return Acked(request.ref)

    def streamed(self, kind: StreamKind) -> set[str]:
        return self.state[kind] | self.ghosts[kind]


class ReconcilerMachine(RuleBasedStateMachine):
    semantics: ClassVar[Semantics]
    spacing: ClassVar[float] = 0.0
    max_symbols: ClassVar[int | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.r = Reconciler(
            self.semantics,
            KINDS,
            request_spacing=self.spacing,
            retry_delay=RETRY_DELAY,
            ghost_grace=GHOST_GRACE,
            ghost_threshold=GHOST_THRESHOLD,
            max_symbols=self.max_symbols,
        )
        self.venue = FakeVenue(self.semantics)
        self.now = 0.0
        self.connected = False
        self.live: dict[int, SendRequest] = {}  # in flight, as the test sees it
        self.unprocessed: list[int] = []  # live refs the venue has not processed yet
        self.late: list[Event] = []  # answers that will arrive later
        self.last_send = float("-inf")
        self.last_ref = 0
        self.requested: dict[StreamKind, set[str]] = {k: set() for k in KINDS}
        self.reported: dict[StreamKind, dict[str, int]] = {k: {} for k in KINDS}
        self.uncertain: set[Key] = set()
        self.not_before: dict[Key, float] = {}  # retry delays after a timeout
        self.hold_until = float("-inf")  # rate limit of the connection
        self.credit: Counter[Key] = Counter()
        self.expected: Counter[str] = Counter()
        # Coalescing. Every change of a desired set (one per symbol) is either carried by
        # a request of its key (one change per request; the others it absorbed are
        # coalesced) or coalesced into no request at all. The test cannot see every
        # request that carried a change, but it can bound their number: at most those
        # sent while a change of their key was not yet followed by a request ("could
        # carry"), at least those sent by the very call that made such a change (nothing
        # can absorb the change in between: "did carry").
        self.changes_made = 0
        self.uncarried: Counter[Key] = Counter()
        self.could_carry = 0
        self.did_carry = 0
        self.changing: set[Key] = set()  # keys the call being fed changes
        self.coalesced_seen = 0

    # ------------------------------------------------------------- plumbing

    def key(self, request: SendRequest) -> Key:
        if self.semantics is Semantics.REPLACE_ALL:
            return (request.kind, "")
        return (request.kind, request.symbols[0])

    def feed(self, event: Event) -> None:
        ref = getattr(event, "ref", None)
        if ref is not None:
            request = self.live.pop(ref, None)
            if ref in self.unprocessed:
                self.unprocessed.remove(ref)
            if request is None:
                self.expected["stale_answers"] += 1
            else:
                self.answered(event, request)
        if isinstance(event, GhostSeen) and event.symbol not in self.r.wanted_view(event.kind):
            self.expected["ghosts_seen"] += 1
        self.check(self.r.handle(event, self.now))

    def answered(self, event: Event, request: SendRequest) -> None:
        key = self.key(request)
        if isinstance(event, Acked):
            self.uncertain.discard(key)
        elif isinstance(event, Rejected):
            if request.action in (Action.CANCEL, Action.UNSUBSCRIBE):
                self.uncertain.discard(key)
        elif isinstance(event, TimedOut):
            self.uncertain.add(key)
            self.not_before[key] = self.now + RETRY_DELAY
        elif isinstance(event, RateLimited):
            self.credit[key] += 1  # a forced resend may be repeated
            delay = RETRY_DELAY if event.retry_after is None else event.retry_after
            self.hold_until = max(self.hold_until, self.now + delay)

    def check(self, commands: list[Command]) -> None:
        confirmed_seen: dict[StreamKind, frozenset[str]] = {}
        for command in commands:
            if isinstance(command, SendRequest):
                self.check_send(command)
            elif isinstance(command, GhostPersisting):
                self.credit[(command.kind, self.ghost_key(command.symbol))] += 1
            elif isinstance(command, SymbolsRejected):
                assert command.symbols
                for symbol in command.symbols:
                    assert symbol in BAD or command.code == 603, command
                    assert symbol not in self.reported[command.kind]
                    self.reported[command.kind][symbol] = command.code
            elif isinstance(command, Confirmed):
                confirmed_seen[command.kind] = command.symbols
        for kind, symbols in confirmed_seen.items():
            assert symbols == self.r.confirmed(kind)

    def ghost_key(self, symbol: str) -> str:
        return "" if self.semantics is Semantics.REPLACE_ALL else symbol

    def check_send(self, request: SendRequest) -> None:
        assert self.connected
        assert request.ref == self.last_ref + 1, "refs are a counter, never reused"
        self.last_ref = request.ref
        assert self.now >= self.last_send + self.spacing, "sends closer than the spacing"
        self.last_send = self.now
        key = self.key(request)
        assert all(self.key(other) != key for other in self.live.values()), "two in flight"
        assert self.now >= self.hold_until, "sent while rate-limited"
        assert self.now >= self.not_before.pop(key, self.now), "resent before the retry delay"
        symbols = request.symbols
        assert list(symbols) == sorted(set(symbols)), "unsorted or duplicate symbols"
        confirmed = self.r.confirmed(request.kind)
        if self.semantics is Semantics.REPLACE_ALL:
            assert request.action in (Action.REPLACE, Action.CANCEL)
            assert (request.action is Action.CANCEL) == (symbols == ())
            redundant = set(symbols) == confirmed
        else:
            assert request.action in (Action.SUBSCRIBE, Action.UNSUBSCRIBE)
            assert len(symbols) == 1
            redundant = (symbols[0] in confirmed) == (request.action is Action.SUBSCRIBE)
        if request.action in (Action.REPLACE, Action.SUBSCRIBE):
            assert not set(symbols) & set(self.reported[request.kind]), "rejected symbol sent"
            assert set(symbols) <= self.r.desired(request.kind)
            self.requested[request.kind] |= set(symbols)
        if redundant and key not in self.uncertain:
            assert self.credit[key] > 0, f"redundant request {request}"
            self.credit[key] -= 1
        if self.uncarried[key]:
            self.could_carry += 1
            self.did_carry += key in self.changing
            del self.uncarried[key]
        self.live[request.ref] = request
        self.unprocessed.append(request.ref)

    def change(self, event: Want | Unwant, symbols: set[str]) -> None:
        """Feed a user's change; ``symbols``: those whose desired state it changes."""
        self.changes_made += len(symbols)
        keys = [(event.kind, self.ghost_key(symbol)) for symbol in symbols]
        self.uncarried.update(keys)
        self.changing = set(keys)
        try:
            self.feed(event)
        finally:
            self.changing = set()

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds pass, polling at every deadline on the way, as the actor does."""
        until = self.now + dt
        for _ in range(100):
            deadline = self.r.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.check(self.r.poll(self.now))
        self.now = until

    def oldest(self) -> SendRequest:
        return self.live[self.unprocessed.pop(0)]

    # ----------------------------------------------------------------- rules

    @rule(kind=kinds, symbols=symbol_sets, dt=delays)
    def want(self, kind: StreamKind, symbols: frozenset[str], dt: float) -> None:
        self.advance(dt)
        self.change(Want(kind, symbols), set(symbols) - self.r.desired(kind))

    @rule(kind=kinds, symbols=symbol_sets, dt=delays)
    def unwant(self, kind: StreamKind, symbols: frozenset[str], dt: float) -> None:
        self.advance(dt)
        for symbol in symbols:
            self.reported[kind].pop(symbol, None)
        self.change(Unwant(kind, symbols), set(symbols) & self.r.desired(kind))

    @initialize()
    def connect(self) -> None:
        self.reconnect()

    @precondition(lambda self: self.unprocessed)
    @rule(code=codes, dt=delays)
    def answer_everything(self, code: int, dt: float) -> None:
        self.advance(dt)
        while self.unprocessed:
            self.feed(self.venue.process(self.oldest(), code, False, False))

    @precondition(lambda self: self.unprocessed)
    @rule(code=codes, name=st.booleans(), refuse_unsub=st.booleans(), dt=delays)
    def answer_oldest(self, code: int, name: bool, refuse_unsub: bool, dt: float) -> None:
        """Ack, or reject when it holds a bad symbol (as AllTick does)."""
        self.advance(dt)
        request = self.oldest()
        self.feed(self.venue.process(request, code, name, refuse_unsub))

    @precondition(lambda self: self.unprocessed)
    @rule(processed=st.booleans(), answer_later=st.booleans(), dt=delays)
    def lose_the_answer(self, processed: bool, answer_later: bool, dt: float) -> None:
        self.advance(dt)
        request = self.oldest()
        if processed:
            answer = self.venue.process(request, 600, False, False)
            if answer_later:
                self.late.append(answer)
        self.feed(TimedOut(request.ref))

    @precondition(lambda self: self.unprocessed)
    @rule(code=codes)
    def delay_the_answer(self, code: int) -> None:
        self.late.append(self.venue.process(self.oldest(), code, False, True))

    @precondition(lambda self: self.late)
    @rule(data=st.data())
    def deliver_a_late_answer(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.late) - 1))
        self.feed(self.late.pop(index))

    @precondition(lambda self: any(getattr(e, "ref", None) in self.live for e in self.late))
    @rule(data=st.data())
    def time_out_a_delayed_request(self, data: st.DataObject) -> None:
        refs = [e.ref for e in self.late if isinstance(e, Acked | Rejected) and e.ref in self.live]
        self.feed(TimedOut(data.draw(st.sampled_from(refs))))

    @precondition(lambda self: self.unprocessed)
    @rule(retry_after=st.sampled_from([None, 0.2, 2.0]), dt=delays)
    def rate_limit(self, retry_after: float | None, dt: float) -> None:
        self.advance(dt)
        self.feed(RateLimited(self.oldest().ref, retry_after))

    @precondition(lambda self: self.connected)
    @rule(reconnect=st.booleans())
    def drop_the_connection(self, reconnect: bool) -> None:
        for ref in self.unprocessed:
            self.late.append(Acked(ref))  # answers the dead connection may still deliver
        self.expected["voided"] += len(self.live)
        self.live.clear()
        self.unprocessed.clear()
        self.venue.reset()
        self.not_before.clear()
        self.hold_until = float("-inf")
        self.connected = False
        self.feed(ConnectionLost())
        if reconnect:
            self.reconnect()

    @precondition(lambda self: not self.connected)
    @rule()
    def reconnect(self) -> None:
        self.connected = True
        self.uncertain.clear()
        for kind in KINDS:
            self.requested[kind].clear()
        self.feed(ConnectionReady())

    @precondition(lambda self: self.connected)
    @rule(kind=kinds, symbol=st.sampled_from(UNIVERSE))
    def venue_glitch(self, kind: StreamKind, symbol: str) -> None:
        """The venue starts streaming a symbol nobody asked it for."""
        if symbol not in self.r.wanted_view(kind):
            self.venue.ghosts[kind].add(symbol)

    @precondition(lambda self: self.connected)
    @rule(kind=kinds, data=st.data(), dt=delays)
    def tick_arrives(self, kind: StreamKind, data: st.DataObject, dt: float) -> None:
        self.advance(dt)
        streamed = sorted(self.venue.streamed(kind))
        if streamed:
            symbol = data.draw(st.sampled_from(streamed))
            if symbol not in self.r.wanted_view(kind):  # the reader's hot-path filter
                self.feed(GhostSeen(kind, symbol))

    @rule(kind=kinds, symbols=symbol_sets)
    def symbols_go_silent(self, kind: StreamKind, symbols: frozenset[str]) -> None:
        for symbol in symbols:
            self.credit[(kind, self.ghost_key(symbol))] += 1
        self.feed(Refresh(kind, symbols))

    @rule(dt=st.sampled_from([0.01, 0.2, 0.5, 1.05, 3.0]))
    def advance_time(self, dt: float) -> None:
        self.advance(dt)
        self.check(self.r.poll(self.now))

    # ------------------------------------------------------------ invariants

    @invariant()
    def bookkeeping_agrees(self) -> None:
        r = self.r
        stats = {k: v for k, v in r.statistics().items() if type(v) is int}
        for kind in KINDS:
            assert r.confirmed(kind) <= self.requested[kind], "confirmed, never requested"
            assert set(r.rejected(kind)) <= r.desired(kind)
            assert set(r.wanted_view(kind)) == r.desired(kind)
            assert {s: c for s, (c, _) in r.rejected(kind).items()} == self.reported[kind]
            in_flight = r.in_flight(kind)
            assert in_flight == tuple(q for q in self.live.values() if q.kind is kind)
            if self.semantics is Semantics.REPLACE_ALL:
                assert len(in_flight) <= 1
            if self.max_symbols is not None:
                assert len(r.desired(kind) - set(r.rejected(kind))) <= self.max_symbols
        answered = sum(stats[n] for n in ("acks", "rejections", "timeouts", "rate_limited"))
        assert stats["requests_sent"] == self.last_ref
        assert stats["requests_sent"] == answered + stats["voided"] + len(self.live)
        assert stats["in_flight"] == len(self.live)
        for name, count in self.expected.items():
            assert stats[name] == count, name
        # Never un-coalesced; never a change both coalesced and carried by a request.
        coalesced = stats["coalesced"]
        assert self.coalesced_seen <= coalesced, "coalesced went down"
        assert coalesced + self.did_carry <= self.changes_made, "a change counted twice"
        self.coalesced_seen = coalesced
        if not self.connected:
            assert r.next_deadline() is None
        else:
            deadline = r.next_deadline()
            assert deadline is None or deadline >= self.now

    # -------------------------------------------------------- faults stop

    def teardown(self) -> None:
        while self.late:
            self.feed(self.late.pop(0))  # stale or not, they must do no harm
        if not self.connected:
            self.reconnect()
        sent_before = self.last_ref
        for _ in range(300):
            while self.unprocessed:
                assert self.last_ref - sent_before <= 40, "a resend loop"
                self.feed(self.venue.process(self.oldest(), 600, False, True))
            ghosts = [
                (kind, s)
                for kind in KINDS
                for s in sorted(self.venue.ghosts[kind])
                if s not in self.r.wanted_view(kind)
            ]
            for kind, symbol in ghosts:
                self.feed(GhostSeen(kind, symbol))
            deadline = self.r.next_deadline()
            if deadline is None and not ghosts and not self.unprocessed:
                break
            self.now = max(self.now + 0.25, deadline or self.now)
            self.check(self.r.poll(self.now))
        else:
            raise AssertionError("no convergence after the faults stopped")
        # No resend loop: a search over 6 symbols per kind plus ghost fixes stays small.
        assert self.last_ref - sent_before <= 40
        assert self.r.is_converged()
        # Converged, every change is accounted for: a change that no request can have
        # carried was coalesced (and none twice: bookkeeping_agrees).
        coalesced = self.r.statistics()["coalesced"]
        assert self.changes_made - self.could_carry <= coalesced
        for kind in KINDS:
            wanted = self.r.desired(kind) - set(self.r.rejected(kind))
            assert self.r.confirmed(kind) == wanted
            assert self.venue.state[kind] == wanted
            assert not self.venue.ghosts[kind] - self.r.desired(kind)
            assert self.r.desired(kind) & BAD <= set(self.r.rejected(kind))
            for symbol, (code, _) in self.r.rejected(kind).items():
                assert symbol in BAD or code == 603


SETTINGS = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class ReplaceAllMachine(ReconcilerMachine):
    semantics = Semantics.REPLACE_ALL
    spacing = 1.05


class ReplaceAllUnspacedMachine(ReconcilerMachine):
    semantics = Semantics.REPLACE_ALL


class IncrementalMachine(ReconcilerMachine):
    semantics = Semantics.INCREMENTAL


class IncrementalCappedMachine(ReconcilerMachine):
    semantics = Semantics.INCREMENTAL
    spacing = 0.2
    max_symbols = 3


TestReplaceAll = ReplaceAllMachine.TestCase
TestReplaceAll.settings = SETTINGS
TestReplaceAllUnspaced = ReplaceAllUnspacedMachine.TestCase
TestReplaceAllUnspaced.settings = SETTINGS
TestIncremental = IncrementalMachine.TestCase
TestIncremental.settings = SETTINGS
TestIncrementalCapped = IncrementalCappedMachine.TestCase
TestIncrementalCapped.settings = SETTINGS
