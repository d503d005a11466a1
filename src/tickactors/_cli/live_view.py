"""The live terminal view of the demo and of ``run`` on a terminal: prices, connections, events.

:class:`LiveView` is a runner writer (``market``, ``event``, ``status``, like
:class:`~tickactors._cli.output.JsonLines`) that draws, with `rich <https://rich.readthedocs.io>`_
(``rich.live.Live``), one screen that redraws in place on the terminal's alternate screen:
the title, the confirmed/desired counts, one line per connection, a table of prices and the
latest events, each line cut to the terminal's width, laid out afresh for the terminal's size
at every redraw (what a frame shows and how it fits: :mod:`.live_frames`). Leaving the
alternate screen leaves nothing in the scrollback but the final ``stopped`` (stdout),
``fatal`` or ``error`` (stderr) line.

Threads. The runner calls ``market``, ``event`` and ``status`` on the Trio thread: they only
update in-memory state, under a lock, at O(batch) cost. :meth:`LiveView.refresh_forever`
(a Trio task, started with :meth:`LiveView.start_in`) reads ``feed.statistics()`` twice a
second into the same state. Everything that writes to the terminal runs in another thread:
rich's refresh thread draws each frame from a snapshot of that state taken under the lock
(``Live(get_renderable=..., auto_refresh=True)``), Live starts and stops in a worker thread
(``trio.to_thread.run_sync``), and the final line goes out from one too. Nothing blocks the
Trio loop on the terminal.

A quote that carries one side only never shows crossed: the rule is
:func:`~tickactors._core.quote_sides.shown_sides`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import trio
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live

from .._core.quote_sides import shown_sides
from .._feed.feed import Feed
from .._values import AccountUpdate, HealthEvent, MarketData, Quote, StatusName, Tick
from .live_frames import EventLine, Row, Snapshot, frame
from .output import _printable, text_account
from .request_outcome import RequestOutcome

_NO_ROW: Row = (None, None, None, 0.0, 0, None, None)

#: status lines that end a run: they are also written once more after the view is gone
#: (event -> whether on stderr)
FINAL = {StatusName.STOPPED: False, StatusName.FATAL: True, StatusName.ERROR: True}


class LiveView:
    """The live view: a runner writer whose frames a thread of rich's draws (module docstring).

    ``title``: the first line (None: the venue and its URL, from the feed's statistics).
    ``console``: where to draw (default: a new rich ``Console`` on stdout); ``stdout`` and
    ``stderr``: where the final line goes (default: ``sys.stdout``, ``sys.stderr``).
    """

    #: seconds between two reads of ``feed.statistics()``
    poll = 0.5

    def __init__(
        self,
        title: str | None = None,
        *,
        console: Console | None = None,
        refresh_per_second: float = 4.0,
        max_events: int = 500,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._title = title
        self._console = console
        self._refresh_per_second = refresh_per_second
        self._out = stdout
        self._err = stderr
        self._lock = threading.Lock()
        self._rows: dict[str, Row] = {}
        self._symbols: list[str] = []  # the rows' names, sorted (by the thread that draws)
        self._events: deque[EventLine] = deque(maxlen=max_events)
        self._statistics: Mapping[str, Any] | None = None
        self._start = self._clock = _feed_now()
        self._clock_at = time.perf_counter()  # when the feed's clock read self._clock
        self._live: Live | None = None
        self._showing = False
        self._finals: list[tuple[str, bool]] = []  # written when the view is taken down

    # -- the writer: called on the Trio thread; memory only -----------------------------

    async def market(self, batch: list[MarketData]) -> None:
        """Never waits: the view keeps the latest per symbol, whatever the terminal does."""
        self.take(batch)

    def take(self, batch: list[MarketData]) -> None:
        """What ``market`` does, synchronously."""
        with self._lock:
            rows = self._rows
            for item in batch:
                bid, offer, last, _, count, book_bid, book_ask = rows.get(item.symbol, _NO_ROW)
                if isinstance(item, Tick):
                    last = item.price
                elif isinstance(item, Quote):
                    bid, offer = shown_sides(bid, offer, item.bid, item.offer)
                    if item.last is not None:
                        last = item.last
                else:
                    book_bid = item.bids[0].price if item.bids else None
                    book_ask = item.asks[0].price if item.asks else None
                rows[item.symbol] = (
                    bid, offer, last, item.received_at, count + 1, book_bid, book_ask
                )  # fmt: skip

    async def account(self, batch: list[AccountUpdate]) -> None:
        """Never waits: each update becomes a line among the events (``sync``, ``props``)."""
        lines: list[EventLine] = []
        for item in batch:
            kind, _, text = text_account(item).partition(" ")
            lines.append((item.received_at, str(item.connection), kind, text.strip(), {}))
        with self._lock:
            self._events.extend(lines)

    def event(self, event: HealthEvent) -> None:
        line = (event.time, str(event.connection), event.event, event.message, event.detail)
        with self._lock:
            self._events.append(line)

    def request_outcome(self, outcome: RequestOutcome) -> None:
        """In the events, like a status line."""
        line = (_feed_now(), "--", outcome.name, outcome.message, outcome.detail())
        with self._lock:
            self._events.append(line)

    def status(self, event: StatusName, message: str = "", **detail: Any) -> None:
        line = (_feed_now(), "--", event, message, detail)
        stderr = FINAL.get(event)
        with self._lock:
            self._events.append(line)
            if stderr is None:
                return
            final = (f"{event}: {_printable(message)}" if message else event, stderr)
            if self._showing:  # written once the alternate screen is gone
                self._finals.append(final)
                return
        # not (or no longer) on screen: a thread of its own writes it, never this one
        threading.Thread(target=self._write, args=([final],), name="tickactors-final").start()

    # -- the Trio task ------------------------------------------------------------------

    def start_in(self, feed: Feed, nursery: trio.Nursery) -> None:
        """Show the view while ``feed`` runs (the runner's ``extra`` hook)."""
        nursery.start_soon(self.refresh_forever, feed)

    async def refresh_forever(self, feed: Feed) -> None:
        """Show the view, keep its statistics fresh; take it down when cancelled."""
        try:
            self._take_statistics(feed)
            await trio.to_thread.run_sync(self._show)
            while True:
                await trio.sleep(self.poll)
                self._take_statistics(feed)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                # bounded: a terminal that stopped reading (Ctrl-S) must not keep us here
                await trio.to_thread.run_sync(self._hide, abandon_on_cancel=True)

    def _take_statistics(self, feed: Feed) -> None:
        statistics = feed.statistics()
        now, at = trio.current_time(), time.perf_counter()
        with self._lock:
            self._statistics = statistics
            self._clock, self._clock_at = now, at

    # -- worker threads: the terminal ---------------------------------------------------

    def _show(self) -> None:
        console = self._console if self._console is not None else Console()
        live = Live(
            console=console,
            screen=True,
            auto_refresh=True,
            refresh_per_second=self._refresh_per_second,
            redirect_stdout=False,
            redirect_stderr=False,
            get_renderable=self.renderable,
        )
        with self._lock:
            self._live = live
            self._showing = True
        live.start(refresh=True)

    def _hide(self) -> None:
        live = self._live
        if live is not None:
            live.stop()
        with self._lock:
            self._showing = False
            finals, self._finals = self._finals, []
        self._write(finals)

    def _write(self, lines: Iterable[tuple[str, bool]]) -> None:
        for text, stderr in lines:
            stream = (self._err or sys.stderr) if stderr else (self._out or sys.stdout)
            try:
                stream.write(text + "\n")
                stream.flush()
            except (OSError, ValueError):  # nobody reads any more
                pass

    # -- frames: rich's refresh thread --------------------------------------------------

    def renderable(self, now: float | None = None) -> RenderableType:
        """The next frame, laid out for the console's size when rich renders it (``now``:
        see :meth:`snapshot`)."""
        return _Frame(self, now)

    def snapshot(self, now: float | None = None, limit: int | None = None) -> Snapshot:
        """What a frame shows now (``now``: the feed's clock; default: the clock read at the
        last statistics, plus the time since), with the rows of the first ``limit`` symbols
        (None: all).

        Cheap for the feed's thread with many symbols: the lock is held to copy what a
        screen can show, and the names are sorted outside it, only when one was added.
        """
        with self._lock:
            names = list(self._rows) if len(self._rows) != len(self._symbols) else None
            events = list(self._events)
            statistics = self._statistics
            clock, clock_at = self._clock, self._clock_at
        if names is not None:  # a row is never removed: same count, same names
            self._symbols = sorted(names)
        symbols = self._symbols
        with self._lock:
            rows = {symbol: self._rows[symbol] for symbol in symbols[:limit]}
        if now is None:
            now = clock + (time.perf_counter() - clock_at)
        title = self._title
        if title is None:
            venue = statistics.get("venue", "") if statistics else ""
            url = statistics.get("url", "") if statistics else ""
            title = f"tickactors run: {venue} {url}"
        title += " (Ctrl-C ends)"
        return Snapshot(title, now, self._start, symbols, rows, events, statistics)


class _Frame:
    """One frame of a :class:`LiveView`, laid out for the size rich renders it at."""

    def __init__(self, view: LiveView, now: float | None = None) -> None:
        self._view = view
        self._now = now

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or options.max_height or console.height
        snapshot = self._view.snapshot(self._now, limit=height)  # no more rows than lines
        yield from frame(snapshot, options.max_width, height)


def _feed_now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside a Trio run
        return 0.0


__all__ = ["FINAL", "LiveView"]
