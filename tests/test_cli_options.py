"""``--version``, ``--log-level`` and the warning for a run that subscribes nothing.

The runs are in process (``tickactors.__main__.main``) against a closed port: the feed
keeps failing to connect, which is no error, and ``--duration`` ends each run after a
fraction of a second of real time with exit 0. Nothing here waits on timing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import tickactors
from tickactors import __main__ as entry
from tickactors._core.shard_share import owner

SRC = Path(tickactors.__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
CLOSED = "ws://127.0.0.1:1/quote-b-ws-api"  # nothing listens on port 1
TOKEN = "options-S3CRET-7e7e"
BRIEF = ["--token", TOKEN, "--duration", "0.3", "--format", "jsonl"]


def run_in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[str], list[str]]:
    """``run --url CLOSED ...`` for 0.3 s: stdout's and stderr's lines (exit 0 asserted)."""
    assert entry.main(["run", "--url", CLOSED, *BRIEF, *argv]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return out.splitlines(), [line for line in err.splitlines() if line.strip()]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.main(["--version"]) == 0
    expected = f"tickactors {version('tickactors')}\n"
    assert capsys.readouterr().out == expected
    done = subprocess.run(
        [sys.executable, "-m", "tickactors", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")
    script = Path(sys.executable).with_name("tickactors")  # [project.scripts]
    if script.exists():
        done = subprocess.run(
            [str(script), "--version"], capture_output=True, text=True, timeout=30, env=ENV
        )
        assert (done.returncode, done.stdout) == (0, expected)


def test_the_log_is_silent_by_default_and_on_stderr_with_log_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("tickactors")
    handlers, level = list(logger.handlers), logger.level
    out, err = run_in_process(capsys, "--symbols", "BTCUSDT")
    assert err == []  # connect_failed events are warnings: on stdout only by default
    assert any(json.loads(line)["event"] == "connect_failed" for line in out)
    out, err = run_in_process(capsys, "--symbols", "BTCUSDT", "--log-level", "info")
    assert any(" INFO tickactors: [conn 1] connecting " in line for line in err), err
    assert any(" WARNING tickactors: [conn 1] connect_failed " in line for line in err), err
    assert TOKEN not in "".join(err) and "?token=***" in "".join(err)
    out, err = run_in_process(capsys, "--symbols", "BTCUSDT", "--log-level", "warning")
    assert err and all(" WARNING tickactors: " in line for line in err), err
    assert (logger.handlers, logger.level) == (handlers, level)  # as it was


def test_a_run_that_subscribes_nothing_warns_once_and_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, err = run_in_process(capsys, "--symbols", "")
    assert err == [
        "warning: nothing to subscribe: --symbols, --book-symbols and --trade-symbols name no "
        "symbol; running, stdin commands may subscribe"
    ]
    assert json.loads(out[-1])["event"] == "stopped"
    other = next(s for s in (f"S{i}" for i in range(100)) if owner(s, 2) == 1)
    out, err = run_in_process(capsys, "--symbols", other, "--shard", "0/2")
    assert err == [
        "warning: nothing to subscribe: --shard 0/2 takes none of the 1 symbol(s) given; "
        "running, stdin commands may subscribe"
    ]
    out, err = run_in_process(capsys, "--symbols", "A", "--book-symbols", "")
    assert err == []


def test_run_venue_has_help_text() -> None:
    _, commands = entry.build_parsers()
    text = commands["run"].format_help()
    assert "--venue {alltick,tradovate}" in text
    assert "alltick needs a token" in " ".join(text.split())


def test_the_command_line_freezes_the_heap_before_running_and_a_caller_s_argv_does_not() -> None:
    """``python -m tickactors`` moves what it holds at start into the collector's permanent
    generation (full collections then skip it); ``main(argv)`` called by a program leaves
    that program's heap alone. ``trio.run`` is replaced so that nothing connects."""
    probe = (
        "import gc, sys, trio\n"
        "from tickactors.__main__ import main\n"
        "trio.run = lambda *a, **k: print('FROZEN', gc.get_freeze_count()) or 0\n"
        "main(['sim', '--port', '0'])\n"
        "sys.argv = ['tickactors', 'sim', '--port', '0']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    given, own = (int(line.split()[1]) for line in done.stdout.splitlines())
    assert given == 0
    assert own > 10_000  # the modules, their functions and classes
