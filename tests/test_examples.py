"""``examples/``: the README's examples as scripts, run, type-checked and kept in sync.

Each example runs for a few seconds against the simulator (in this process; the example
in a subprocess, as a user would run it) and must print what it promises and exit 0.
``mypy --strict`` checks ``examples/`` (through ``mypy.api``, on this tree's package).
Every ```python block of the README's Library section must be a verbatim excerpt of an
example (indentation aside), every example must be named there, and neither the README nor
an example may import a private module of the package.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest
import trio

import tickactors
import tickactors.venues
from tickactors.sim import SimConfig, open_simulator

from .mypy_support import ROOT, SRC, run_mypy

EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
NAMES = [
    "alltick_trades_and_books.py",
    "tradovate_quotes_dom_request.py",
    "tradovate_trading.py",
    "health_watcher.py",
    "low_latency.py",
    "jsonl_capture.py",
]
DURATION = 5.0
CREDENTIALS = {
    "TRADOVATE_USERNAME": "example",
    "TRADOVATE_PASSWORD": "example-password",
    "TRADOVATE_APP_ID": "tickactors-example",
    "TRADOVATE_APP_VERSION": "1.0",
    "TRADOVATE_CID": "1",
    "TRADOVATE_SEC": "example-sec",
}
_PRIVATE_IMPORT = re.compile(r"^\s*(?:from|import)\s+(tickactors(?:\.\w+)*)", re.M)


async def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``examples/NAME ARGS --duration DURATION``; its stdout (exit 0 required)."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(SRC), environment.get("PYTHONPATH")])
    )
    with trio.fail_after(DURATION + 30):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / name), *args, "--duration", str(DURATION)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=environment,
        )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"exit {done.returncode}\n{stdout[-2000:]}\n{stderr[-2000:]}"
    assert stderr == "", stderr[-2000:]
    return stdout


def lines_starting(stdout: str, word: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.split()[:1] == [word]]


def test_the_examples_are_the_ones_named_here() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(NAMES)


@pytest.mark.slow
async def test_alltick_trades_and_books() -> None:
    async with open_simulator("alltick", seed=11) as sim:
        stdout = await run_example("alltick_trades_and_books.py", "--url", sim.url)
    trades = lines_starting(stdout, "trade")
    books = lines_starting(stdout, "book")
    assert len(trades) >= 10 and {line[1] for line in trades} == {"BTCUSDT", "EURUSD"}
    assert books and {line[1] for line in books} == {"BTCUSDT"}
    events = {line[1] for line in lines_starting(stdout, "event")}
    assert {"connected", "subscribed"} <= events


@pytest.mark.slow
async def test_tradovate_quotes_dom_and_a_request() -> None:
    config = SimConfig(  # the token comes over REST, for these credentials alone
        tradovate_user=CREDENTIALS["TRADOVATE_USERNAME"],
        tradovate_password=CREDENTIALS["TRADOVATE_PASSWORD"],
    )
    async with open_simulator("tradovate", config=config, seed=12) as sim:
        stdout = await run_example(
            "tradovate_quotes_dom_request.py",
            "--url",
            sim.url,
            "--rest-url",
            sim.rest_url,
            env=CREDENTIALS,
        )
        assert sim.stats.requests_by_endpoint["contract/find"] >= 1
    (contract,) = lines_starting(stdout, "contract")
    assert contract[1] == "ESZ6" and contract[2].isdigit()
    quotes = lines_starting(stdout, "quote")
    assert len(quotes) >= 5 and {line[1] for line in quotes} == {"ESZ6", "NQZ6"}
    assert {line[1] for line in lines_starting(stdout, "dom")} == {"ESZ6"}


@pytest.mark.slow
async def test_tradovate_trading() -> None:
    config = SimConfig(
        tradovate_user=CREDENTIALS["TRADOVATE_USERNAME"],
        tradovate_password=CREDENTIALS["TRADOVATE_PASSWORD"],
    )
    async with open_simulator("tradovate", config=config, seed=15) as sim:
        stdout = await run_example(
            "tradovate_trading.py",
            "--url",
            sim.url,
            "--rest-url",
            sim.rest_url,
            env=CREDENTIALS,
        )
        assert sim.stats.requests_by_endpoint["order/placeorder"] == 1
        assert sim.stats.requests_by_endpoint["user/syncrequest"] >= 1
    (sync, *_) = lines_starting(stdout, "sync")
    assert sync[2:] == ["orders", "0", "positions", "0"] and sync[1].isdigit()
    (placed,) = lines_starting(stdout, "placed")
    events = lines_starting(stdout, "event")
    assert ["event", "order", "Created", placed[1], "PendingNew"] in events
    assert ["event", "order", "Updated", placed[1], "Filled"] in events
    assert {line[1] for line in events} >= {"fill", "position", "cashBalance"}


@pytest.mark.slow
async def test_low_latency() -> None:
    async with open_simulator("alltick", seed=13) as sim:
        stdout = await run_example("low_latency.py", "--url", sim.url, "--move", "0")
    (handled,) = lines_starting(stdout, "handled")
    trades, calls = int(handled[1]), int(handled[4])
    assert trades >= 10 and 1 <= calls <= trades  # one call per read: a read may carry several
    moves = lines_starting(stdout, "move")
    assert moves and {line[1] for line in moves} <= {"BTCUSDT", "ETHUSDT", "EURUSD"}
    assert {line[1] for line in lines_starting(stdout, "last")} == {"BTCUSDT", "ETHUSDT", "EURUSD"}
    assert {"connected", "subscribed"} <= {line[1] for line in lines_starting(stdout, "event")}


@pytest.mark.slow
async def test_health_watcher() -> None:
    async with open_simulator("alltick", seed=13) as sim:
        stdout = await run_example("health_watcher.py", "--url", sim.url)
    assert re.search(r"#1 connected", stdout), stdout
    assert "converged: confirmed ['BTCUSDT', 'ETHUSDT', 'EURUSD']" in stdout, stdout
    assert len(lines_starting(stdout, "counted")) == 1
    counts = json.loads(stdout.split("counted ", 1)[1].splitlines()[0])
    assert counts["connected"] == 1 and counts["subscribed"] >= 1


@pytest.mark.slow
async def test_jsonl_capture(tmp_path: Path) -> None:
    path = tmp_path / "capture" / "ticks.jsonl"
    async with open_simulator("alltick", seed=14) as sim:
        await run_example("jsonl_capture.py", "--url", sim.url, "--path", str(path))
    files = sorted(path.parent.glob("ticks*.jsonl"))
    assert files, "no file captured"
    lines = [json.loads(line) for file in files for line in file.read_text().splitlines()]
    kinds = {line["kind"] for line in lines}
    assert {"tick", "book", "status"} <= kinds, kinds
    assert {line["symbol"] for line in lines if line["kind"] == "tick"} == {"BTCUSDT", "ETHUSDT"}
    assert any(line.get("event") == "connected" for line in lines)


def test_the_examples_pass_mypy_strict() -> None:
    status, report = run_mypy(EXAMPLES)
    assert status == 0, report


# ---- the README -----------------------------------------------------------------------


def library_section() -> str:
    text = README.read_text()
    start = text.index("\n## Library\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of ``text``, each dedented to its fence."""
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", text, re.M | re.S)
    return [textwrap.dedent(body) for _, body in blocks]


def is_excerpt(block: str, source: str) -> bool:
    """Whether ``block``'s lines are consecutive lines of ``source``, indentation aside."""
    want = block.rstrip("\n").splitlines()
    have = source.splitlines()
    for start in range(len(have) - len(want) + 1):
        if textwrap.dedent("\n".join(have[start : start + len(want)])) == "\n".join(want):
            return True
    return False


def test_every_python_block_of_the_library_section_is_an_excerpt_of_an_example() -> None:
    sources = {name: (EXAMPLES / name).read_text() for name in NAMES}
    blocks = python_blocks(library_section())
    assert len(blocks) >= 3
    for block in blocks:
        assert any(is_excerpt(block, source) for source in sources.values()), (
            "this README block is not an excerpt of any file in examples/ (change both):\n" + block
        )


def test_the_library_section_names_every_example() -> None:
    section = library_section()
    for name in NAMES:
        assert f"examples/{name}" in section, name


def private_imports(text: str) -> list[str]:
    return [
        module
        for module in _PRIVATE_IMPORT.findall(text)
        if any(part.startswith("_") for part in module.split(".")[1:])
    ]


def test_neither_the_readme_nor_an_example_imports_a_private_module() -> None:
    assert private_imports(README.read_text()) == []
    for name in NAMES:
        assert private_imports((EXAMPLES / name).read_text()) == [], name
    # the check itself
    assert private_imports("from tickactors.venues._tradovate_auth import X") != []
    assert private_imports("import tickactors._feed.feed") != []
    assert private_imports("from tickactors.sinks._jsonl import JsonlSink") != []
    assert private_imports("from tickactors.venues import AllTick") == []


def test_the_package_docstring_example_uses_exported_names_only() -> None:
    doc = tickactors.__doc__ or ""
    assert private_imports(doc) == []
    used = set(re.findall(r"\btickactors\.(\w+)", doc)) - {"venues"}
    assert used <= set(tickactors.__all__), used - set(tickactors.__all__)
    assert "tickactors.TRADES" in doc
    for name in re.findall(r"from tickactors\.venues import ([\w, ]+)", doc):
        assert {n.strip() for n in name.split(",")} <= set(tickactors.venues.__all__)


def test_the_package_docstring_example_passes_mypy_strict(tmp_path: Path) -> None:
    doc = tickactors.__doc__ or ""
    code = textwrap.dedent(doc.split("::\n", 1)[1].split("\n\n:func:", 1)[0])
    assert "open_feed" in code
    snippet = tmp_path / "docstring_example.py"
    snippet.write_text(code)
    status, report = run_mypy(snippet)
    assert status == 0, report
