"""What one frame of the live view shows, laid out for a terminal's size (pure; no threads).

:func:`frame` turns a :class:`Snapshot` of the view's state into rich renderables for a
screen ``width`` columns wide and ``height`` lines tall, every one of them one line (the
prices table: its header and one line per row), every line cut with an ellipsis, never
wrapped: the title, the confirmed/desired counts with the feed's counters, one line per
connection, the prices table, the latest events. :func:`layout` decides how many lines each
part gets: the header parts always show; when the terminal is short, fewer connections and
symbols show, with a ``+N more`` line, and fewer events. A narrow terminal loses the table's
book, updates and age columns, in that order, before anything is cut. Text from the venue
(symbols, messages, details) is shown escaped (``_printable``) and never read as markup.

:mod:`.live_view` holds the state and the threads that draw these frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
from rich.console import JustifyMethod, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .output import _printable

#: (bid, offer, last, received at, updates, book bid, book ask) of one symbol
Row = tuple[
    Decimal | None, Decimal | None, Decimal | None, float, int, Decimal | None, Decimal | None
]

#: (time on the feed's clock, connection, event, message, detail) of one event line
EventLine = tuple[float, str, str, str, Mapping[str, Any]]


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
    text.append("".join(f" {part}" for part in (_printable(message), extra) if part))
    return _line(text)


__all__ = ["EventLine", "Layout", "Row", "Snapshot", "frame", "layout"]
