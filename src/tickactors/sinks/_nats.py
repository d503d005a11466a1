"""The NATS JetStream sink, Trio side: hand batches over, report what became of them.

:class:`NatsSink` has the runner's writer interface (``market``, ``account``, ``event``,
``status``);
each call hands its batch to the publisher thread (``_nats_worker``) through a bounded
:class:`~tickactors.sinks._thread_handoff.ThreadHandoff` and returns at once. It never waits for
NATS: when NATS is slow or away, the hand-off drops its oldest entries beyond ``buffer``,
and the sink says so.

A reporter task wakes every ``report_interval`` seconds and turns what the publisher
noted (connected, connect failed, disconnected, rejected) into health events, plus a
``sink_loss`` event whenever entries were lost since the last one (rate-limited by
:class:`~tickactors._core.loss_report.LossReporter`). When the sink closes, the publisher
drains for at most ``drain`` seconds; the last events, the final loss report and
``sink_closed`` (with :meth:`NatsSink.statistics`) follow.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from .._core.loss_report import LossReporter
from .._json_lines import status_dict
from .._values import AccountUpdate, EventName, HealthEvent, MarketData
from ._background import running
from ._events import Emit, SinkError, SinkEvents
from ._nats_encode import Entry, kind_of
from ._spec import NatsSpec, parse_sink
from ._thread_handoff import ThreadHandoff

if TYPE_CHECKING:
    from ._nats_worker import NatsWorker

__all__ = ["NatsSink", "open_nats_sink"]


class NatsSink:
    """Publishes to NATS JetStream from a thread of its own. Open it with :func:`open_nats_sink`."""

    def __init__(
        self,
        spec: NatsSpec,
        worker_class: type[NatsWorker],
        *,
        venue: str,
        clock_offset: float,
        emit: Emit | None,
        report_interval: float,
    ) -> None:
        self.spec = spec
        self.venue = venue
        self._offset = clock_offset
        self._events = SinkEvents(spec.display, emit)
        self._handoff: ThreadHandoff[Entry] = ThreadHandoff(spec.buffer, kind_of)
        self._worker = worker_class(spec, self._handoff, venue=venue, clock_offset=clock_offset)
        self._loss = LossReporter(report_interval)
        self._interval = report_interval

    # -- the Writer interface: never waits -----------------------------------------------

    def market(self, batch: Sequence[MarketData]) -> None:
        """Hand ``batch`` over (kept as it is until published: do not change it after)."""
        self._put(batch)

    def account(self, batch: Sequence[AccountUpdate]) -> None:
        """Hand sync snapshots and entity events over (``feed.account_batches()``), in order."""
        self._put(batch)

    def event(self, event: HealthEvent) -> None:
        self._put((event,))

    def status(self, event: str, message: str = "", **detail: Any) -> None:
        self._put((status_dict(event, message, trio.current_time(), self._offset, detail),))

    def _put(self, batch: Sequence[Entry]) -> None:
        if self._handoff.closed:
            raise trio.ClosedResourceError("the NATS sink is closed")
        self._handoff.put(batch)

    # -- introspection -------------------------------------------------------------------

    async def wait_writable(self) -> None:
        """Never waits: behind its bounded buffer, this sink drops the oldest instead, so
        that a slow or absent server never holds up the feed (``docs/sinks.md``)."""

    def statistics(self) -> dict[str, Any]:
        """Counters, JSON-friendly; never a credential. ``dropped``: buffer overflow and
        what was left at close, by kind; ``rejected``: refused by the server;
        ``retried``: sent again after an unanswered attempt; ``deduplicated``: of those,
        the ones the server had stored the first time (dropped there by ``Nats-Msg-Id``)."""
        worker = self._worker
        snapshot = self._handoff.snapshot()
        # The publisher thread updates these dicts: copy each at once (one C call, atomic
        # under the GIL) rather than iterate over it while it may grow.
        published, rejected = dict(worker.published), dict(worker.rejected)
        return {
            "sink": self.spec.display,
            "state": worker.state,
            **snapshot,
            "dropped_total": sum(snapshot["dropped"].values()),
            "published": published,
            "published_total": sum(published.values()),
            "rejected": rejected,
            "retried": worker.retried,
            "deduplicated": worker.deduplicated,
            "lost_at_close": worker.lost_at_close,
            "batches": worker.batches,
            "connects": worker.connects,
            "connect_failures": worker.connect_failures,
        }

    def lost(self) -> dict[str, int]:
        """Entries lost so far (dropped or rejected), by kind."""
        out = dict(self._handoff.snapshot()["dropped"])
        for kind, count in dict(self._worker.rejected).items():  # copied: see statistics()
            out[kind] = out.get(kind, 0) + count
        return out

    # -- the reporter --------------------------------------------------------------------

    async def report_forever(self) -> None:
        while True:
            await trio.sleep(self._interval)
            self._report(final=False)

    def _report(self, *, final: bool) -> None:
        """Turn the publisher's notes and the losses into events: to ``emit`` and, while
        the sink is open, onto NATS too (``health.<venue>.sink_loss``, ...), so that
        consumers there learn of a gap."""
        notes = self._worker.notes
        while notes:
            event, message, detail = notes.popleft()
            self._say(event, message, **detail)
        lost = self.lost()
        report = self._loss.final(lost) if final else self._loss.observe(lost, trio.current_time())
        if report is not None:
            snapshot = self._handoff.snapshot()
            self._say(
                EventName.SINK_LOSS,
                f"{report.count} entries lost (buffer full, refused, or left at close)",
                lost=report.count,
                lost_total=report.total,
                by_kind=dict(report.since_last),
                buffered=snapshot["buffered"],
                capacity=snapshot["capacity"],
            )

    def _say(self, event: EventName, message: str, **detail: Any) -> None:
        item = self._events(event, message, **detail)
        if not self._handoff.closed:
            self._handoff.put((item,))

    async def _run_worker(self) -> None:
        # Shielded: the publisher always runs and always drains (for at most ``drain``
        # seconds after the hand-off closes), even when the sink is closed at once.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._worker.run, limiter=trio.CapacityLimiter(1))


@asynccontextmanager
async def open_nats_sink(
    spec: NatsSpec | str,
    *,
    venue: str,
    clock_offset: float | None = None,
    emit: Emit | None = None,
    report_interval: float = 1.0,
) -> AsyncIterator[NatsSink]:
    """A :class:`NatsSink` for the ``async with``: ``open_nats_sink("nats://127.0.0.1:4222",
    venue="alltick")``.

    ``venue`` goes into the subjects (``ticks.<venue>.<kind>.<symbol>``). ``clock_offset``
    is added to the feed's clock for the payloads' times (default: the offset to the
    epoch, measured now). ``emit`` receives the sink's health events (they are logged
    either way). Raises :class:`SinkError` without nats-py.
    """
    if isinstance(spec, str):
        parsed = parse_sink(spec)
        if not isinstance(parsed, NatsSpec):
            raise ValueError("open_nats_sink takes nats://HOST:PORT")
        spec = parsed
    try:
        from ._nats_worker import NatsWorker
    except ImportError:
        raise SinkError("the NATS sink needs nats-py: pip install 'tickactors[nats]'") from None
    if clock_offset is None:
        clock_offset = time.time() - trio.current_time()
    sink = NatsSink(
        spec,
        NatsWorker,
        venue=venue,
        clock_offset=clock_offset,
        emit=emit,
        report_interval=report_interval,
    )
    try:
        async with running(sink._run_worker, sink.report_forever, stop=sink._handoff.close):
            yield sink
    finally:
        sink._report(final=True)
        sink._events(EventName.SINK_CLOSED, "publisher stopped", **sink.statistics())
