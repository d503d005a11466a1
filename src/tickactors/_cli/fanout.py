"""The runner's ``--sink``: every line the runner writes goes to stdout and to each sink.

:class:`Fanout` is a writer that hands each batch, health event and status line to the
stdout writer and then to every open sink. The sinks' own events (``sink_loss``,
``sink_rotated``, ...) come back through :meth:`Fanout.event`, so they reach stdout and
the other sinks like any health event, but not the sink they are about: a file that
recorded its own rotations could rotate for them, and the NATS sink publishes its own
events itself. Sinks close in the reverse order of opening, each
taken out of the fan-out first, so that its closing events go only where they can.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from .._values import AccountUpdate, HealthEvent, MarketData, StatusName
from ..sinks import Sink, open_sink, parse_sink
from ..sinks._spec import JsonlSpec, NatsSpec, ParquetSpec
from .output import Writer
from .request_outcome import RequestOutcome


class Fanout:
    """A writer that writes to ``primary`` (stdout) and to every sink added."""

    def __init__(self, primary: Writer) -> None:
        self.primary = primary
        self.sinks: list[Sink] = []
        self._open: list[Sink] = []

    async def market(self, batch: list[MarketData]) -> None:
        await self.primary.market(batch)
        for sink in self._open:
            sink.market(batch)
        for sink in self._open:  # a sink's writer behind: wait, like a slow stdout
            await sink.wait_writable()

    async def account(self, batch: list[AccountUpdate]) -> None:
        await self.primary.account(batch)
        for sink in self._open:
            sink.account(batch)
        for sink in self._open:
            await sink.wait_writable()

    def event(self, event: HealthEvent, *, skip: Sink | None = None) -> None:
        self.primary.event(event)
        for sink in self._open:
            if sink is not skip:
                sink.event(event)

    def status(self, event: StatusName, message: str = "", **detail: Any) -> None:
        self.primary.status(event, message, **detail)
        for sink in self._open:
            sink.status(event, message, **detail)

    def request_outcome(self, outcome: RequestOutcome) -> None:
        """stdout gets the outcome's own line; a sink a status record of the same facts
        (``answer`` / ``request_failed``), since it stores status records and market data."""
        self.primary.request_outcome(outcome)
        detail = outcome.detail()
        for sink in self._open:
            if outcome.reason is None:
                sink.status(StatusName.ANSWER, outcome.message, **detail)
            else:
                sink.status(StatusName.REQUEST_FAILED, outcome.message, **detail)

    def statistics(self) -> list[dict[str, Any]]:
        return [sink.statistics() for sink in self.sinks]

    def _add(self, sink: Sink) -> None:
        self.sinks.append(sink)
        self._open.append(sink)

    def _remove(self, sink: Sink) -> None:
        self._open.remove(sink)


def parse_sinks(texts: Sequence[str] | None) -> list[JsonlSpec | ParquetSpec | NatsSpec]:
    """Every ``--sink`` value, parsed (``SinkSpecError`` names the bad one)."""
    return [parse_sink(text) for text in texts or ()]


@asynccontextmanager
async def open_fanout(
    primary: Writer,
    specs: Sequence[JsonlSpec | ParquetSpec | NatsSpec],
    *,
    venue: str,
    clock_offset: float,
) -> AsyncIterator[Fanout]:
    """Open every sink; the fan-out writes to ``primary`` and to them while the body runs."""
    fanout = Fanout(primary)
    async with AsyncExitStack() as stack:
        for spec in specs:
            itself: list[Sink] = []  # known once open; its events skip it

            def emit(event: HealthEvent, itself: list[Sink] = itself) -> None:
                fanout.event(event, skip=itself[0] if itself else None)

            sink = await stack.enter_async_context(
                open_sink(spec, venue=venue, clock_offset=clock_offset, emit=emit)
            )
            itself.append(sink)
            fanout._add(sink)
            stack.callback(fanout._remove, sink)  # runs before the sink closes
        yield fanout
