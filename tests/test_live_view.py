"""The live view (``_cli/live_view.py``, ``_cli/live_frames.py``) on a fixed-size terminal.

Frames are rendered to a rich ``Console`` of a fixed size writing to a string (what rich's
refresh thread does on the real terminal, through the same ``Screen`` that crops to the
terminal's height) and read back as text. The real thing in a pseudo-terminal is in
``tests/test_demo.py``; the rule for quotes with one side is in ``_core/quote_sides.py``.
"""

from __future__ import annotations

import io
import re
import threading
from decimal import Decimal

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.screen import Screen

from tickactors import BookSnapshot, HealthEvent, Quote, Tick
from tickactors._cli.live_frames import layout
from tickactors._cli.live_view import LiveView
from tickactors._cli.output import MemoryLines
from tickactors._core.quote_sides import shown_sides
from tickactors._values import BookLevel

TITLE = "tickactors demo: the simulated AllTick exchange, with faults"
HEADER = "symbol bid offer last updates age s book bid / ask"
EVENT_LINE = re.compile(r"^ *\d+\.\ds #(\d+|--) +\S+")


def screen(view: LiveView, width: int = 80, height: int = 24, now: float = 100.0) -> list[str]:
    """The lines a terminal of ``width`` x ``height`` shows of the view's next frame."""
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
    )
    console.print(Screen(view.renderable(now)))
    return console.export_text().rstrip("\n").split("\n")


def words(line: str) -> str:
    return " ".join(line.split())


def statistics(slots: int, symbols: int) -> dict:
    return {
        "venue": "alltick",
        "url": "ws://127.0.0.1:9/quote-b-ws-api?token=***",
        "desired": {"trades": symbols, "book": 1},
        "confirmed": {"trades": symbols - 1, "book": 1},
        "connection": {"ticks_delivered": 123456, "ghost_ticks": 7, "decode_errors": 3},
        "slots": [
            {
                "slot": n,
                "connection": 10 + n,
                "state": "connected" if n else "backoff",
                "connects": 2,
                "rotations": n,
                "desired": {"trades": 3, "book": 1 if n == 0 else 0},
                "confirmed": {"trades": 3, "book": 0},
            }
            for n in range(slots)
        ],
    }


def busy_view(*, symbols: int = 40, slots: int = 3, events: int = 120) -> LiveView:
    view = LiveView(TITLE)
    view.take(
        [
            Tick(f"SYM{n:03d}USDT", Decimal("57298.35") + n, Decimal(1), None, n, 90.0 + n / 10)
            for n in range(symbols)
        ]
        + [
            BookSnapshot(
                "SYM000USDT",
                (BookLevel(Decimal("57298.35"), Decimal(1)),),
                (BookLevel(Decimal("57309.81"), Decimal(2)),),
                received_at=99.0,
            )
        ]
    )
    for n in range(events):
        view.event(
            HealthEvent(
                "decode_error",
                float(n),
                n % 4,
                f"event {n}: a bad frame [bold]not markup[/bold] " + "x" * 200,
                {"count": n, "frame": "{\x1b[2J" + "y" * 150},
            )
        )
    view._statistics = statistics(slots, symbols)  # what refresh_forever reads from a feed
    return view


def test_a_busy_feed_fits_80x24_header_first_and_events_cut_not_wrapped():
    view = busy_view()
    lines = screen(view)
    assert len(lines) == 24  # the screen, filled; nothing beyond it
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith(TITLE)
    assert lines[1].startswith("confirmed/desired trades 39/40 book 1/1 · updates 123456")
    assert lines[2].startswith("#10 backoff    slot 0 · connects 2 · rotations 0 · trades 3/3")
    assert lines[3].startswith("#11 connected  slot 1") and lines[4].startswith("#12 connected")
    assert words(lines[5]) == HEADER
    assert words(lines[6]) == "SYM000USDT - - 57298.35 2 1.0 57298.35 / 57309.81"
    more = [line for line in lines if line.startswith("+")]
    assert len(more) == 1 and re.fullmatch(r"\+(\d+) more symbols *", more[0])
    shown = [line for line in lines if line.startswith("SYM")]
    assert len(shown) + int(more[0].split()[0][1:]) == 40  # every symbol shown or counted
    rule = next(i for i, line in enumerate(lines) if line.startswith("events ─"))
    events = lines[rule + 1 :]
    assert len(events) >= 6
    for line in events:  # one line each: cut with an ellipsis, no continuation lines
        assert EVENT_LINE.match(line), line
        assert line.endswith("…") and len(line) == 80
    assert events[-1].lstrip().startswith("119.0s #3   decode_error    event 119: a bad frame")
    assert "[bold]not markup[/bold]" in events[-1]  # the venue's text, not rich markup
    assert "\x1b" not in "".join(lines)  # escaped: a venue's bytes never drive the terminal


def test_it_follows_resizes_and_keeps_the_header_on_a_short_terminal():
    view = busy_view(symbols=12, slots=1, events=30)
    for width, height in ((80, 24), (132, 50), (80, 12), (100, 30), (60, 10)):
        lines = screen(view, width, height)
        assert len(lines) == height and all(len(line) <= width for line in lines)
        assert lines[0].startswith(TITLE[: width - 1])
        assert lines[2].startswith("#10 backoff")
        assert lines[3].split()[:4] == ["symbol", "bid", "offer", "last"]
        assert any(line.startswith("events ─") for line in lines)
    tall = screen(view, 132, 50)
    assert sum(line.startswith("SYM") for line in tall) == 12 and "more symbols" not in str(tall)
    assert "book bid / ask" in tall[3]
    short = screen(view, 80, 12)
    assert any(re.fullmatch(r"\+\d+ more symbols *", line) for line in short)
    narrow = screen(view, 60, 10)
    assert narrow[3].split() == ["symbol", "bid", "offer", "last", "updates", "age", "s"]


def test_many_connections_on_a_short_terminal_leave_room_for_prices():
    view = busy_view(symbols=4, slots=10, events=5)
    lines = screen(view, 80, 16)
    assert len(lines) == 16
    assert any(re.fullmatch(r"\+\d+ more connections *", line) for line in lines)
    assert any(line.split()[:1] == ["symbol"] for line in lines)
    assert any(line.startswith("SYM000USDT") for line in lines)


@settings(max_examples=300, deadline=None)
@given(
    height=st.integers(8, 200),
    connections=st.integers(1, 20),
    symbols=st.integers(0, 5000),
    events=st.integers(0, 500),
)
def test_the_layout_fits_the_height_and_counts_everything(height, connections, symbols, events):
    plan = layout(height, connections=connections, symbols=symbols, events=events)
    assert plan.height <= height
    assert plan.connections + plan.more_connections == connections
    assert plan.rows + plan.more_rows == symbols
    assert 0 <= plan.events <= events
    assert plan.connections >= 1 or plan.more_connections == connections
    if symbols:
        assert plan.rows >= 1 or plan.more_rows == symbols  # a row, or what is hidden


def test_before_the_feed_reports_the_view_says_it_waits():
    view = LiveView(TITLE)
    lines = screen(view)
    assert lines[0].startswith(TITLE) and lines[2].startswith("connection: waiting for the feed")
    assert words(lines[3]) == HEADER


def bid_offer(view: LiveView, symbol: str) -> tuple[str, str]:
    (row,) = [line.split() for line in screen(view) if line.startswith(symbol + " ")]
    return row[1], row[2]


def test_a_partial_quote_is_never_shown_crossed():
    view = LiveView(TITLE)
    q = Decimal

    def quote(**sides: str) -> None:
        view.take([Quote("ESZ6", 1, **{k: q(v) for k, v in sides.items()}, received_at=99.0)])

    quote(bid="587.25", offer="587.50")
    assert bid_offer(view, "ESZ6") == ("587.25", "587.50")
    quote(bid="587.30")  # the offer was not sent, and still stands above the bid
    assert bid_offer(view, "ESZ6") == ("587.30", "587.50")
    quote(bid="587.75")  # the bid moved through the kept offer: not shown crossed
    assert bid_offer(view, "ESZ6") == ("587.75", "-")
    quote(offer="587.50")  # the kept bid is above the new offer: shown as sent
    assert bid_offer(view, "ESZ6") == ("-", "587.50")
    quote(bid="587.25")
    quote(offer="587.25")  # locked (bid = offer) is not crossed
    assert bid_offer(view, "ESZ6") == ("587.25", "587.25")


prices = st.one_of(st.none(), st.decimals(min_value=1, max_value=20, places=2))


@given(st.lists(st.tuples(prices, prices), max_size=30))
def test_kept_sides_never_cross_what_the_venue_sent(quotes):
    bid = offer = None
    sent_crossed = False  # the venue itself sent the pair shown, crossed
    for sent_bid, sent_offer in quotes:
        bid, offer = shown_sides(bid, offer, sent_bid, sent_offer)
        if sent_bid is not None:
            assert bid == sent_bid
        if sent_offer is not None:
            assert offer == sent_offer
        if sent_bid is not None and sent_offer is not None:
            sent_crossed = sent_bid > sent_offer
        elif sent_bid is not None or sent_offer is not None:
            sent_crossed = False
        if bid is not None and offer is not None and bid > offer:
            assert sent_crossed  # only as the venue sent it, never of a side kept


def finals() -> None:
    for thread in threading.enumerate():
        if thread.name == "tickactors-final":
            thread.join(10)


@pytest.mark.parametrize(
    ("event", "stdout", "stderr"),
    [
        ("stopped", "stopped: bye\n", ""),
        ("fatal", "", "fatal: bye\n"),
        ("error", "", "error: bye\n"),
        ("command_error", "", ""),
    ],
)
def test_a_final_status_is_one_line_written_by_another_thread(event, stdout, stderr):
    out, err = io.StringIO(), io.StringIO()
    view = LiveView(TITLE, stdout=out, stderr=err)
    view.status(event, "bye", sinks=[])
    finals()
    assert (out.getvalue(), err.getvalue()) == (stdout, stderr)
    shown = [line for line in screen(view) if line.strip()]
    assert shown[-1].split()[1:] == ["#--", event, "bye", "sinks=[]"]  # and on screen


async def test_the_run_command_with_format_live_writes_nothing_but_its_final_line(
    autojump_clock, capsys
):
    """``run --format live`` against the simulator: the view (not a terminal here: rich
    draws nothing), then one ``stopped`` line, from a thread, after the view is gone."""
    from tickactors.__main__ import build_parser
    from tickactors._cli import run
    from tickactors.sim import SimConfig, open_simulator

    async with open_simulator("alltick", config=SimConfig(tokens={"tok"}), seed=1) as sim:
        args = build_parser().parse_args(
            [
                *("run", "--url", sim.url, "--token", "tok", "--symbols", "BTCUSDT"),
                *("--format", "live", "--duration", "3"),
            ]
        )
        assert isinstance(run.make_writer("live", MemoryLines()), LiveView)
        assert await run.run_from_args(args) == 0
    with trio.fail_after(10):
        await trio.to_thread.run_sync(finals)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("stopped: bye\n", "")
