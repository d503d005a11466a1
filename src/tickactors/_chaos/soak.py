"""The chaos soak: a feed against the simulator while both sides do their worst.

One Trio run holds the simulator and the feed (one clock, so fault times and
feed events compare directly) and these tasks:

- the **injector** draws faults from a :class:`~.plan.FaultPlan` deck and
  applies them to ``sim.faults``; a stall goes in only while the feed is
  healthy and nothing else goes in until it recovered (so its detection is
  its own); other faults may overlap the previous one's recovery;
- the **churner** changes the subscription at random: adds, removes, flaps,
  order-book toggles, now and then a burst;
- the **observer** reads every batch: a tick of a symbol not desired at that
  moment is a ghost tick; a batch while converged is a healthy point;
- the **auditor** looks for requests the tracker left open past their deadline,
  for counted faults the simulator used up, and (Tradovate) sends requests of
  its own, each of which must resolve by its deadline;
- **events** turn ``stale`` health events into stall detections.

After ``duration`` seconds the faults stop and the churn stops; the soak waits
up to ``settle`` seconds for every fault to be recovered and for the feed's
confirmed set, its desired set and what the simulator really streams to agree.

An :class:`Interrupt` ends it sooner (the command line's SIGINT and SIGTERM):
``stop`` ends the faults and the churn at once, and the soak settles as it would
have at the end, so the verdict means what it always does, over the time that ran
(``duration_s`` in the summary, ``interrupted`` true). ``hurry`` ends the settling
too: a fault still unrecovered then counts as one.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import attrs
import trio

from .._errors import FeedError
from .._feed.feed import Feed, open_feed
from .._values import BOOK, EventName, StreamKind
from ..sim import Simulator, open_simulator
from .faulting import apply_fault
from .ledger import FaultRecord, Ledger
from .plan import FaultPlan, FaultSpec, kinds_for
from .process import ErrorCounter, rss_mb
from .setups import FEED_OPTIONS, VENUES, ChaosVenue, RecordingSource

OVERDUE_GRACE = 0.5  # seconds a request may stay open past its deadline (scheduling slack)
STALL_QUIET_CAP = 15.0  # seconds the injector waits for a healthy feed before a stall
#: Injected only while the feed is healthy: a stall (so its detection is its own) and a
#: revocation (a token that streamed, expiring mid-stream; revoking a token the feed just
#: fetched and never used looks like bad credentials, and a feed must stop on those).
HEALTHY_FIRST = frozenset({"stall", "expire_token"})


@attrs.frozen
class SoakOptions:
    venue: str = "alltick"
    duration: float = 60.0
    seed: int = 0
    settle: float = 30.0
    fault_gap: float = 0.5  # mean seconds between a fault's end and the next
    churn_every: float = 2.0  # mean seconds between two subscription changes
    kinds: tuple[str, ...] | None = None  # None: every kind the venue's simulator knows
    feed_options: dict[str, Any] = attrs.field(factory=dict)  # overrides FEED_OPTIONS


Progress = Callable[[dict[str, Any]], None]


class Interrupt:
    """A soak cut short from outside: :attr:`stop` ends the faults, :attr:`hurry` the settling."""

    def __init__(self) -> None:
        self.stop = trio.Event()
        self.hurry = trio.Event()


async def _unless(event: trio.Event, work: Callable[[], Awaitable[object]]) -> None:
    """Await ``work()`` until it returns or ``event`` is set, whichever comes first."""
    if event.is_set():
        return
    async with trio.open_nursery() as nursery:

        async def cancel_on_event() -> None:
            await event.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(cancel_on_event)
        await work()
        nursery.cancel_scope.cancel()


class _Soak:
    def __init__(
        self, options: SoakOptions, sim: Simulator, feed: Feed, source: RecordingSource
    ) -> None:
        self.options = options
        self.setup: ChaosVenue = VENUES[options.venue]
        self.sim = sim
        self.feed = feed
        self.source = source
        self.ledger = Ledger()

        # One random stream per task: the faults drawn depend on the seed alone, not on
        # how the churn and the requests interleave with them.
        def stream(purpose: str) -> random.Random:
            return random.Random(f"tickactors-chaos-{options.venue}-{options.seed}-{purpose}")

        self.fault_rng = stream("faults")
        self.rng = stream("churn")
        self.request_rng = stream("requests")
        self.churn_ops = 0
        self.user_requests = 0
        self.last_healthy = -1.0
        self.progress: Progress = lambda _: None
        self.nursery: trio.Nursery | None = None

    # ---- helpers ---------------------------------------------------------------

    def say(self, event: str, **detail: Any) -> None:
        self.progress({"event": event, "t": round(trio.current_time(), 3), **detail})

    def healthy_since(self, moment: float) -> bool:
        return self.last_healthy >= moment

    async def wait_until(self, predicate: Callable[[], bool], cap: float) -> bool:
        # Polled: the predicates span the feed, the simulator and the ledger at once.
        with trio.move_on_after(cap):
            while not predicate():  # noqa: ASYNC110
                await trio.sleep(0.05)
            return True
        return False

    # ---- the injector ----------------------------------------------------------

    async def inject(self, until: float) -> None:
        """Inject faults until ``until``; a window that would outlast it is not started
        (cut short, a stall shorter than ``stale_after`` is no fault at all)."""
        kinds = self.options.kinds or kinds_for(self.options.venue)
        plan = FaultPlan(
            self.fault_rng,
            kinds,
            stale_after=self.setup.stale_after,
            request_timeout=self.setup.request_timeout,
        )
        while True:
            kind = plan.next_kind()
            if kind in HEALTHY_FIRST:
                start = trio.current_time()
                await self.wait_until(partial(self.healthy_since, start), STALL_QUIET_CAP)
            spec = plan.draw(kind, sorted(self.feed.confirmed()))
            if trio.current_time() + (spec.lasts or 0.0) > until:
                return
            record = self.apply(spec)
            self.say("fault", kind=kind, **{k: v for k, v in spec.params.items() if v is not None})
            if record.ends is not None:
                await trio.sleep_until(record.ends)
            else:
                await self.wait_until(partial(_has_ended, record), 30.0)
            await self.wait_until(partial(_is_recovered, record), 30.0 if kind == "stall" else 1.5)
            await trio.sleep(plan.gap(self.options.fault_gap))

    def apply(self, spec: FaultSpec) -> FaultRecord:
        kind, symbol = spec.kind, spec.params.get("symbol")
        record = self.ledger.fault_injected(
            kind,
            trio.current_time(),
            connection=self.feed._supervisor.connection,
            needs_new_connection=spec.needs_new_connection,
            lasts=spec.lasts,
            symbol=symbol if kind == "silence_symbol" else None,
        )
        window_end = record.ends if kind == "max_age" else None
        assert self.nursery is not None
        apply_fault(spec, self.sim, self.feed, self.source, self.nursery, window_end)
        return record

    # ---- the churner -----------------------------------------------------------

    async def churn(self) -> None:
        rng, feed, setup = self.rng, self.feed, self.setup
        while True:
            await trio.sleep(rng.expovariate(1.0 / self.options.churn_every))
            desired = feed.desired()
            absent = sorted(set(setup.symbols) - desired)
            roll = rng.random()
            if roll < 0.45 and absent:
                feed.subscribe(*rng.sample(absent, min(len(absent), rng.randint(1, 3))))
            elif roll < 0.8 and len(desired) > 2:
                feed.unsubscribe(*rng.sample(sorted(desired), rng.randint(1, 2)))
            elif roll < 0.9 and desired:
                symbol = rng.choice(sorted(desired))
                feed.unsubscribe(symbol)  # a flap: gone and wanted again at once
                feed.subscribe(symbol)
            elif roll < 0.95:
                symbol = rng.choice(setup.book_symbols)
                if symbol in feed.desired(BOOK):
                    feed.unsubscribe(symbol, kind=BOOK)
                else:
                    feed.subscribe(symbol, kind=BOOK)
            else:  # a burst: five changes in one go
                for _ in range(5):
                    symbol = rng.choice(setup.symbols)
                    if symbol in feed.desired():
                        feed.unsubscribe(symbol)
                    else:
                        feed.subscribe(symbol)
            self.churn_ops += 1

    # ---- the observer, the auditor, events --------------------------------------

    async def observe(self) -> None:
        feed, ledger = self.feed, self.ledger
        async for batch in feed.batches():
            now = trio.current_time()
            wanted: dict[StreamKind, frozenset[str]] = {}
            ghosts = 0
            symbols = set()
            for item in batch:
                desired = wanted.get(item.kind)
                if desired is None:
                    desired = wanted[item.kind] = feed.desired(item.kind)
                if item.symbol not in desired:
                    ghosts += 1
                symbols.add(item.symbol)
            converged = feed.is_converged()
            if converged:
                self.last_healthy = now
            ledger.ticks(len(batch))
            ledger.delivered(
                now,
                symbols,
                ghosts=ghosts,
                converged=converged,
                connection=feed._supervisor.connection,
                desired=feed.desired(),
            )
            if ghosts:
                self.say("ghost_ticks", n=ghosts)

    async def audit(self) -> None:
        table = self.feed._tracker.table
        while True:
            now = trio.current_time()
            for request_id in table.overdue(now, OVERDUE_GRACE):
                if request_id not in self.ledger.overdue_requests:
                    self.say("request_overdue", id=request_id)
                self.ledger.request_overdue(request_id)
            for record in self.ledger.pending():
                if record.ends is None and self.sim.faults.armed(record.kind) == 0:
                    self.ledger.fault_ended(record, now)
            await trio.sleep(0.05)

    async def user_requests_forever(self) -> None:
        if self.setup.user_request is None:
            return
        endpoint, query = self.setup.user_request
        # A penalty ticket may hold one resend back for up to 4 s (plan.py).
        bound = 2 * self.setup.request_timeout + 4.0 + OVERDUE_GRACE
        while True:
            await trio.sleep(self.request_rng.expovariate(1.0 / 4.0))
            symbol = self.request_rng.choice(self.setup.symbols)
            self.user_requests += 1
            with trio.move_on_after(bound) as scope, contextlib.suppress(FeedError):
                # An answer, a timeout or a lost connection: each resolves it in time.
                await self.feed.request(endpoint, query.format(symbol=symbol))
            if scope.cancelled_caught:
                self.ledger.user_requests_overdue += 1
                self.say("user_request_overdue", endpoint=endpoint)

    async def events(self) -> None:
        async for event in self.feed.events():
            if event.event == EventName.STALE:
                self.ledger.stale_detected(event.time)

    # ---- the end ---------------------------------------------------------------

    def stop_faults(self) -> None:
        faults = self.sim.faults
        faults.clear()
        faults.set_max_age(None)
        self.ledger.faults_stopped(trio.current_time())

    def truth(self) -> dict[str, Any]:
        """What the feed believes against what the simulator really streams."""
        feed = self.feed
        live = sorted(self.sim.connections, key=lambda c: c.id)
        streamed = live[-1].subscribed_by_kind() if live else {}
        agree = True
        for kind in feed.kinds:
            expected = feed.desired(kind) - frozenset(feed.rejected(kind))
            actual = streamed.get(kind.value, frozenset())
            agree = agree and feed.confirmed(kind) == expected == actual
        return {"agree": agree, "sim_connections_live": len(live)}

    def settled(self) -> bool:
        return (
            not self.ledger.pending() and self.feed.is_converged() and bool(self.truth()["agree"])
        )


def _has_ended(record: FaultRecord) -> bool:
    return record.ends is not None


def _is_recovered(record: FaultRecord) -> bool:
    return record.recovered is not None


async def soak(
    options: SoakOptions,
    progress: Progress | None = None,
    ledger: Ledger | None = None,
    interrupt: Interrupt | None = None,
) -> dict[str, Any]:
    """Run one soak; returns the summary (``ok`` says whether nothing was lost).

    ``ledger``: keep the books in this one (to read every fault's figures afterwards).
    ``interrupt``: how to end it early (see the module's docstring).
    """
    interrupt = interrupt if interrupt is not None else Interrupt()
    setup = VENUES[options.venue]
    config = setup.sim_config(options.seed)
    async with open_simulator(options.venue, config=config, seed=options.seed) as sim:
        venue, source = setup.make(sim)
        feed_options = {
            "stale_after": setup.stale_after,
            "request_timeout": setup.request_timeout,
            **FEED_OPTIONS,
            **options.feed_options,
        }
        state: _Soak | None = None
        escaped: list[str] = []
        logger = logging.getLogger("tickactors")
        try:
            async with open_feed(venue, seed=options.seed, **feed_options) as feed:
                state = _Soak(options, sim, feed, source)
                if ledger is not None:
                    state.ledger = ledger
                if progress is not None:
                    state.progress = progress
                handler = ErrorCounter(state.ledger)
                logger.addHandler(handler)
                try:
                    summary = await _run(state, interrupt)
                finally:
                    logger.removeHandler(handler)
        except Exception as exc:  # the soak reports what escaped, never hides it
            escaped.append(f"{type(exc).__name__}: {exc}")
            summary = _failed(state, sim)
        summary["unhandled_exceptions"] += len(escaped)
        summary["exceptions"] = (state.ledger.unhandled if state else []) + escaped
    summary["interrupted"] = interrupt.stop.is_set()
    summary["ok"] = _ok(summary)
    return summary


async def _run(state: _Soak, interrupt: Interrupt) -> dict[str, Any]:
    options, feed = state.options, state.feed
    rss_start = rss_mb()
    feed.subscribe(*state.rng.sample(state.setup.symbols[:-1], 4))  # never the rejected one
    feed.subscribe(state.setup.book_symbols[0], kind=BOOK)
    with trio.fail_after(30.0):
        await _unless(interrupt.stop, feed.wait_converged)
    async with trio.open_nursery() as nursery:
        state.nursery = nursery
        nursery.start_soon(state.observe)
        nursery.start_soon(state.events)
        nursery.start_soon(state.audit)
        start = trio.current_time()
        async with trio.open_nursery() as chaos:
            chaos.start_soon(state.inject, start + options.duration)
            chaos.start_soon(state.churn)
            chaos.start_soon(state.user_requests_forever)
            with trio.move_on_after(options.duration):
                await interrupt.stop.wait()
            chaos.cancel_scope.cancel()
        stopped = trio.current_time()
        state.stop_faults()
        state.say("faults_stopped", pending=len(state.ledger.pending()))
        await _unless(interrupt.hurry, partial(state.wait_until, state.settled, options.settle))
        settle_end = trio.current_time()
        nursery.cancel_scope.cancel()
    ran = round(stopped - start, 3) if interrupt.stop.is_set() else options.duration
    summary = state.ledger.summary()
    truth = state.truth()
    stats = feed.statistics()
    summary.update(
        {
            "venue": options.venue,
            "seed": options.seed,
            "duration_s": ran,
            "settle_s": round(settle_end - stopped, 3),
            "converged": feed.is_converged() and bool(truth["agree"]),
            "sim_agrees": truth["agree"],
            "sim_connections_live": truth["sim_connections_live"],
            "churn_ops": state.churn_ops,
            "user_requests": state.user_requests,
            "connections": stats["connection"]["connects"],
            "token_fetches": state.source.fetches,
            "decode_errors": stats["connection"]["decode_errors"],
            "venue_violations": dict(state.sim.stats.violations),
            "rss_start_mb": rss_start,
            "rss_end_mb": rss_mb(),
        }
    )
    return summary


def _failed(state: _Soak | None, sim: Simulator) -> dict[str, Any]:
    summary = Ledger().summary() if state is None else state.ledger.summary()
    summary.update({"converged": False, "venue_violations": dict(sim.stats.violations)})
    return summary


def _ok(summary: dict[str, Any]) -> bool:
    return (
        summary["faults_recovered"] == summary["faults_injected"]
        and summary["ghost_ticks_delivered"] == 0
        and summary["requests_past_deadline"] == 0
        and summary["unhandled_exceptions"] == 0
        and bool(summary["converged"])
    )
