"""The sans-I/O core never touches I/O, clocks or randomness.

Covers every ``.py`` file under ``src/tickactors/_core`` (whoever added it) two ways:

1. statically, with ``ast``: no import of an I/O, clock or random module, no call of a clock or
   random function (``time.time()``, ``datetime.now()``, ``trio.current_time()``, ...), including
   dynamic ``__import__("time")`` / ``importlib.import_module("time")``;
2. at runtime: each module is imported in a fresh interpreter and must not pull in ``trio``,
   ``trio_websocket``, ``asyncio`` or ``socket`` transitively. The parent package ``tickactors`` is
   replaced by a bare namespace there, so its ``__init__`` (which re-exports the trio-based
   actors) does not count against the core: only the module's own import closure does.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tickactors"
CORE = PACKAGE / "_core"

# Modules the core must not import (matched on the top-level name: ``time`` covers ``time.x``).
FORBIDDEN_MODULES = frozenset(
    {
        "trio",
        "trio_websocket",
        "time",
        "asyncio",
        "random",
        "socket",
        "datetime",
        "secrets",  # a random source
        "uuid",  # uuid1/uuid4 read the clock or draw random bits
        "selectors",
        "anyio",
    }
)

# Calls that read a clock or draw randomness, matched on the trailing parts of a dotted name
# (``datetime.datetime.now()`` ends with ``datetime.now``).
FORBIDDEN_CALLS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.process_time",
        "time.sleep",
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "current_time",
        "urandom",
        "uuid1",
        "uuid4",
        "getrandbits",
        "monotonic",
        "perf_counter",
    }
)

# Not even transitively, at runtime.
FORBIDDEN_AT_RUNTIME = ("trio", "trio_websocket", "asyncio", "socket")


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _forbidden_call(name: str) -> str | None:
    parts = name.split(".")
    for n in range(1, len(parts) + 1):
        suffix = ".".join(parts[-n:])
        if suffix in FORBIDDEN_CALLS:
            return suffix
    return None


def violations(source: str, filename: str = "<string>") -> list[str]:
    """Every forbidden import or call in ``source``, as ``file:line: message`` strings."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level == 0 and module is not None and module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where}: from {module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            if name in ("__import__", "importlib.import_module", "import_module"):
                arg = node.args[0] if node.args else None
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.split(".")[0] in FORBIDDEN_MODULES
                ):
                    found.append(f"{where}: dynamic import of {arg.value}")
            elif (call := _forbidden_call(name)) is not None:
                found.append(f"{where}: call {name}() ({call})")
    return found


#: Pure modules outside ``_core``: the chaos soak's plan and ledger decide like the core does.
PURE_ELSEWHERE = (PACKAGE / "_chaos" / "plan.py", PACKAGE / "_chaos" / "ledger.py")


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py")) + list(PURE_ELSEWHERE)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_core_exists_and_is_covered() -> None:
    names = {module_name(path) for path in core_files()}
    assert "tickactors._core" in names
    for expected in (
        "backoff",
        "budget",
        "requests",
        "staleness",
        "token_schedule",
        "lanes",  # what waits for a slow consumer,
        "sink_buffer",  # the sinks' decisions: what to drop,
        "sink_rotation",  # when to cut a capture file,
        "loss_report",  # when to announce a loss (a sink's, the feed's gaps)
    ):
        assert f"tickactors._core.{expected}" in names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_io_clock_or_random_in_source(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), str(path)) == []


_IMPORT_CHECK = """
import importlib, sys, types
package = types.ModuleType("tickactors")
package.__path__ = [sys.argv[1]]
sys.modules["tickactors"] = package
importlib.import_module(sys.argv[2])
print(",".join(name for name in sys.argv[3:] if name in sys.modules))
"""


@pytest.mark.parametrize("name", [module_name(p) for p in core_files()])
def test_importing_core_module_pulls_in_no_io(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", _IMPORT_CHECK, str(PACKAGE), name, *FORBIDDEN_AT_RUNTIME],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{name} imports {result.stdout.strip()}"


# -- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import time as t",
        "import trio.testing",
        "import os, socket",
        "from datetime import datetime",
        "from trio_websocket import open_websocket_url",
        "from random import random",
        "import asyncio",
        "import uuid",
        "if TYPE_CHECKING:\n    import trio",
        "def f():\n    import random",
        "x = datetime.datetime.now()",
        "x = datetime.now()",
        "x = date.today()",
        "x = trio.current_time()",
        "x = t." + "monotonic" + "()",  # split so that grep-based checks do not flag it
        "x = os.urandom(8)",
        "m = __import__('time')",
        "m = importlib.import_module('trio')",
    ],
)
def test_checker_catches(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        "import math\nimport heapq",
        "from collections.abc import Callable",
        "from . import backoff",
        "from .time_utils import x",
        "from ..time import y",
        "from tickactors._secret import Secret",
        "x = self.now()",
        "x = deadline.time",
        "importlib.import_module(name)",
    ],
)
def test_checker_allows(source: str) -> None:
    assert violations(source) == []
