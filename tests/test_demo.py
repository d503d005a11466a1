"""``python -m tickactors`` (the demo) as a subprocess: both venues, JSON lines, bounded runs;
and its live view in a pseudo-terminal of 80x24.

Real time, like the runner's tests: each run ends itself with ``--duration`` and is killed
by ``subprocess.run``'s timeout (or the test's ``trio.fail_after``) if it does not. The
scripted faults come early enough to be seen in the window: on Tradovate a stall at 4 s
(stale at ~10 s with ``stale_after`` 6), then a 10 s penalty ticket at 14 s; on AllTick a
stall at 6 s (stale at ~10 s).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from typing import Any

import pytest
import trio


def run_demo(*args: str, duration: float) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickactors",
            *args,
            "--duration",
            f"{duration}",
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 9,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def events_of(lines: list[dict[str, Any]]) -> list[str]:
    return [o["event"] for o in lines if o["kind"] == "status"]


def faults_of(lines: list[dict[str, Any]]) -> list[str]:
    return [o["fault"] for o in lines if o.get("event") == "demo_fault"]


def test_the_tradovate_demo_streams_quotes_and_recovers_from_its_scripted_faults():
    lines = run_demo("--venue", "tradovate", duration=20)
    quotes = [o for o in lines if o["kind"] == "quote"]
    assert {q["symbol"] for q in quotes} >= {"ESZ6", "NQZ6", "CLF7", "GCG7"}
    assert any(q["bid"] and q["offer"] and q["price"] for q in quotes)
    assert {o["symbol"] for o in lines if o["kind"] == "book"} == {"ESZ6"}  # the DOM
    events = events_of(lines)
    # the stall: stale, then a new connection that authorizes again, then the penalty
    assert events.count("authorized") >= 2
    stale = events.index("stale")
    assert "authorized" in events[stale:]
    assert "penalty" in events[stale:]
    assert faults_of(lines)[:2] == ["stall", "p_ticket"]
    assert events[-1] == "stopped"
    assert "fatal" not in events


def test_the_alltick_demo_streams_ticks_and_sees_its_stall():
    lines = run_demo(duration=13)
    ticks = [o for o in lines if o["kind"] == "tick"]
    assert {t["symbol"] for t in ticks} >= {"BTCUSDT", "ETHUSDT", "EURUSD", "XAUUSD"}
    events = events_of(lines)
    assert "stale" in events
    assert faults_of(lines)[:1] == ["stall"]
    assert events[-1] == "stopped"
    assert "fatal" not in events


ENTER_ALT_SCREEN, LEAVE_ALT_SCREEN = b"\x1b[?1049h", b"\x1b[?1049l"
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def window(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def frames_of(drawn: bytes) -> list[list[str]]:
    """The frames (each a list of lines, without control codes) drawn from home in ``drawn``."""
    frames = [CONTROL.sub("", frame) for frame in drawn.decode(errors="replace").split("\x1b[H")]
    return [frame.split("\r\n") for frame in frames if frame.strip()]


@pytest.mark.slow
async def test_the_live_view_in_an_80x24_terminal():
    """On a terminal the demo draws on the alternate screen, in place, within 80x24, follows
    a resize to 100x30, and leaves nothing behind but its final line; it exits 0."""
    controller, terminal = pty.openpty()
    window(terminal, 24, 80)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tickactors", "--duration", "3"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=env,
        )
    finally:
        os.close(terminal)
    output = b""
    resized_at = None
    async with trio.lowlevel.FdStream(controller) as stream:
        try:
            with trio.fail_after(30):  # a bound, not a timing: the run ends itself at 3 s
                while True:
                    try:
                        chunk = await stream.receive_some(65536)
                    except trio.BrokenResourceError:  # EIO: the child and its terminal are gone
                        break
                    if not chunk:
                        break
                    output += chunk
                    if resized_at is None and output.count(b"\x1b[H") >= 4:  # a few frames
                        window(controller, 30, 100)
                        resized_at = len(output)
                assert await process.wait() == 0, output[-2000:]
        finally:
            if process.returncode is None:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
    assert output.count(ENTER_ALT_SCREEN) == 1 and output.count(LEAVE_ALT_SCREEN) == 1
    before, inside = output.split(ENTER_ALT_SCREEN)
    inside, after = inside.split(LEAVE_ALT_SCREEN)
    assert before == b""  # nothing ahead of the view (a warning, a traceback)
    assert CONTROL.sub("", after.decode()) == "stopped: bye\r\n"  # all the scrollback keeps
    assert resized_at is not None
    resized_at -= len(before) + len(ENTER_ALT_SCREEN)
    small = frames_of(inside[:resized_at])
    # redrawn in place, from home, without clearing the screen; the first frames after the
    # resize may have been laid out before it
    large = frames_of(inside[resized_at:])[2:]
    assert len(small) >= 2 and len(large) >= 2
    for lines, rows, columns in [(f, 24, 80) for f in small] + [(f, 30, 100) for f in large]:
        assert len(lines) <= rows and all(len(line) <= columns for line in lines)
        assert lines[0].startswith("tickactors demo: the simulated AllTick exchange")
        state = r"#(\d+|-) +(starting|connecting|connected) +slot 0 · connects \d"
        assert re.match(state, lines[2])
        assert lines[3].split()[:4] == ["symbol", "bid", "offer", "last"]
    assert any(len(line) > 80 for line in large[-1])  # the events' rule, at least
    assert "BTCUSDT" in "".join(large[-1]) and "subscribed" in "".join(large[-1])
