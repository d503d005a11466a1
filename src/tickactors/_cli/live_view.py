"""The live terminal view of the demo and of ``run`` on a terminal: prices, connections, events.

:class:`LiveView` is a runner writer (``market``, ``event``, ``status``, like
:class:`~tickactors._cli.output.JsonLines`) that draws, with `rich <https://rich.readthedocs.io>`_,
one screen that redraws in place on the terminal's alternate screen:

- the title, and the feed's confirmed/desired counts per stream with its counters;
- one line per connection (each slot of ``feed.statistics()["slots"]``: its connection
  number, state, connects, rotations and confirmed/desired counts);
- a table of prices: symbol, bid, offer, last, updates, age, best book (bid / ask);
- the latest events, each on one line, cut to the terminal's width.

It fits the terminal's size at every redraw (80x24 upwards; a resize shows at the next
one): the title, the connection lines and the table's header always show; when the
terminal is short, fewer symbols (and connections) show, with a ``+N more`` line, and
fewer events. Leaving the alternate screen leaves nothing in the scrollback but the
final ``stopped`` (stdout), ``fatal`` or ``error`` (stderr) line.

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
from decimal import Decimal
from typing import Any, TextIO

import attrs
import trio
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType, RenderResult
from rich.live import Live
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .._core.quote_sides import shown_sides
from .._feed import Feed
from .._values import HealthEvent, MarketData, Quote, Tick
from .output import _printable

#: (bid, offer, last, received at, updates, book bid, book ask) of one symbol
Row = tuple[
    Decimal | None, Decimal | None, Decimal | None, float, int, Decimal | None, Decimal | None
]
_NO_ROW: Row = (None, None, None, 0.0, 0, None, None)

#: (time on the feed's clock, connection, event, message, detail) of one event line
EventLine = tuple[float, str, str, str, Mapping[str, Any]]

#: status lines that end a run: they are also written once more after the view is gone
FINAL = {"stopped": False, "fatal": True, "error": True}  # event -> on stderr


@attrs.frozen
class Layout:
    """How many lines each part of the screen gets (see :func:`layout`)."""

    connections: int
    more_connections: int
    rows: int
    more_rows: int
    events: int

    @property
    def height(self) -> int:
        """Lines used: title, summary, connections, table header, rows, events heading, events."""
        return (
            2
            + self.connections
            + (self.more_connections > 0)
            + 1
            + self.rows
            + (self.more_rows > 0)
            + 1
            + self.events
        )


def layout(height: int, *, connections: int, symbols: int, events: int) -> Layout:
    """The lines a screen of ``height`` gives each part.

    The title, the summary, the table's header and the events' heading always get theirs;
    then the connection lines, then the table's rows, then the events, but the connections
    and the rows leave room for the table's first row and for the latest few events. A part
    that does not fit shows what it can (one line at least) and a ``+N more`` line. From 8
    lines up everything fits; below that rich's ``Screen`` crops the events first.
    """
    free = max(0, height - 2)  # title, summary
    rows_min = min(symbols, 2)  # a row, and the "+N more" line if there are more
    events_min = 1 + min(events, max(2, height // 4))  # the heading, the latest few
    shown_connections, more_connections = _fit(
        connections, max(min(connections, 2), free - 1 - rows_min - events_min)
    )
    free -= shown_connections + (more_connections > 0)
    rows, more_rows = _fit(symbols, max(rows_min, free - 1 - events_min))
    free -= 1 + rows + (more_rows > 0)
    return Layout(
        shown_connections, more_connections, rows, more_rows, min(events, max(0, free - 1))
    )


def _fit(count: int, room: int) -> tuple[int, int]:
    """(shown, hidden) of ``count`` lines in ``room`` lines, a "+N more" line included."""
    if count <= room:
        return count, 0
    shown = max(0, room - 1)
    return shown, count - shown


@attrs.frozen
class Snapshot:
    """What one frame shows, taken under the view's lock."""

    title: str
    now: float  # the feed's clock
    start: float
    symbols: list[str]  # every symbol, sorted
    rows: dict[str, Row]  # of the first ones at least
    events: list[EventLine]
    statistics: Mapping[str, Any] | None


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

    def market(self, batch: list[MarketData]) -> None:
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

    def event(self, event: HealthEvent) -> None:
        line = (event.time, str(event.connection), event.event, event.message, event.detail)
        with self._lock:
            self._events.append(line)

    def status(self, event: str, message: str = "", **detail: Any) -> None:
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


def frame(snapshot: Snapshot, width: int, height: int) -> list[RenderableType]:
    """The renderables of one frame ``width`` columns wide and ``height`` lines tall: each
    one line (the table: its header and one per row), every line cut, never wrapped."""
    statistics = snapshot.statistics or {}
    slots: list[Mapping[str, Any]] = list(statistics.get("slots", ()))
    symbols = snapshot.symbols
    plan = layout(
        height, connections=max(1, len(slots)), symbols=len(symbols), events=len(snapshot.events)
    )
    out: list[RenderableType] = [_line(snapshot.title, "bold"), _summary(statistics)]
    if not slots:
        out.append(_line("connection: waiting for the feed", "yellow"))
    out.extend(_connection(slot) for slot in slots[: plan.connections])
    if plan.more_connections:
        out.append(_line(f"+{plan.more_connections} more connections", "dim"))
    out.append(_prices(snapshot, symbols[: plan.rows], width))
    if plan.more_rows:
        out.append(_line(f"+{plan.more_rows} more symbols", "dim"))
    out.append(Rule("events", style="dim", align="left"))
    if plan.events:
        out.extend(_event(line, snapshot.start) for line in snapshot.events[-plan.events :])
    return out


def _line(text: str | Text, style: str = "") -> Text:
    line = text if isinstance(text, Text) else Text(text, style=style)
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


def _counts(statistics: Mapping[str, Any]) -> str:
    """``trades 4/4 book 1/1``: confirmed/desired per stream (empty: nothing desired)."""
    desired: Mapping[str, int] = statistics.get("desired") or {}
    confirmed: Mapping[str, int] = statistics.get("confirmed") or {}
    return " ".join(
        f"{kind} {confirmed.get(kind, 0)}/{n}"
        for kind, n in desired.items()
        if n or confirmed.get(kind)  # a stream nobody wants is left out
    )


def _summary(statistics: Mapping[str, Any]) -> Text:
    connection: Mapping[str, Any] = statistics.get("connection") or {}
    return _line(
        f"confirmed/desired {_counts(statistics) or '-'} · updates "
        f"{connection.get('ticks_delivered', 0)} · bad frames "
        f"{connection.get('decode_errors', 0)} · ghosts {connection.get('ghost_ticks', 0)}"
    )


_STATE_STYLES = {
    "connected": "green",
    "starting": "yellow",
    "connecting": "yellow",
    "backoff": "yellow",
}  # else ("failed"): red


def _connection(slot: Mapping[str, Any]) -> Text:
    state = str(slot.get("state", "?"))
    line = Text()
    line.append(f"#{slot.get('connection') or '-'} ", style="bold")  # 0: none yet
    line.append(f"{state:<10}", style=_STATE_STYLES.get(state, "red"))
    line.append(
        f" slot {slot.get('slot', 0)} · connects {slot.get('connects', 0)} · rotations "
        f"{slot.get('rotations', 0)} · {_counts(slot) or 'nothing desired'}"
    )
    return _line(line)


_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("symbol", "left"),
    ("bid", "right"),
    ("offer", "right"),
    ("last", "right"),
    ("updates", "right"),
    ("age s", "right"),
    ("book bid / ask", "left"),
)
#: the columns a narrow terminal loses first, in that order (the others are cut instead)
_DROPPED_FIRST = (6, 4, 5)


def _prices(snapshot: Snapshot, symbols: list[str], width: int) -> Table:
    """The prices table, as wide as ``width`` at most: without the columns a narrow
    terminal has no room for (book, updates, age, in that order), never wrapped."""
    now = snapshot.now
    cells: list[tuple[str, ...]] = []
    for symbol in symbols:
        bid, offer, last, at, count, book_bid, book_ask = snapshot.rows[symbol]
        book = "" if book_bid is None and book_ask is None else f"{_p(book_bid)} / {_p(book_ask)}"
        age = f"{max(0.0, now - at):.1f}"
        cells.append((_printable(symbol), _p(bid), _p(offer), _p(last), str(count), age, book))
    widths = [
        max([len(name), *(len(row[index]) for row in cells)])
        for index, (name, _) in enumerate(_COLUMNS)
    ]
    shown = list(range(len(_COLUMNS)))
    for index in _DROPPED_FIRST:
        if sum(widths[i] for i in shown) + 2 * (len(shown) - 1) <= width:
            break
        shown.remove(index)
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", expand=False)
    for index in shown:
        name, justify = _COLUMNS[index]
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*(row[index] for index in shown))
    return table


def _p(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def _event(line: EventLine, start: float) -> Text:
    at, connection, name, message, detail = line
    extra = " ".join(f"{k}={_printable(v)}" for k, v in detail.items() if k != "url")
    text = Text(f"{at - start:7.1f}s ", style="dim")
    text.append(f"#{connection:<3} ")
    text.append(f"{name:<15}", style="bold")
    text.append(f" {_printable(message)} {extra}".rstrip())
    return _line(text)


def _feed_now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside a Trio run
        return 0.0


__all__ = ["FINAL", "Layout", "LiveView", "Snapshot", "frame", "layout"]
