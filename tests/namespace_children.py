"""Scenario processes in network namespaces of their own, for the kernel-level tests.

``tests/test_blackhole.py`` and ``tests/test_netem.py`` each start one scenario process per
venue under ``unshare --net`` (a fresh namespace, only ``lo`` in it), let them run at once,
and read each one's last JSON line. :func:`skip_or_fail` and :func:`run_children` are what
both do: a machine that cannot run them skips with the reason, except under ``.ci/run``
(``TICKACTORS_REQUIRE_NETEM=1``), where a skip is a failure; the children run under one
deadline, in real time (they are real processes on a real kernel), and are killed past it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest


def skip_or_fail(reason: str | None) -> None:
    """Skip with ``reason`` (None: nothing to do); a failure under ``.ci/run``."""
    if not reason:
        return
    if os.environ.get("TICKACTORS_REQUIRE_NETEM") == "1":  # .ci/run: a skip is a failure
        pytest.fail(reason)
    pytest.skip(reason)


def run_children(
    commands: Mapping[str, Sequence[str]],
    out: Path,
    timeout: float,
    env: Mapping[str, str],
) -> dict[str, tuple[int, str, str]]:
    """Run every command at once (stdout and stderr to ``out/NAME.out``, ``.err``) until
    each ends or ``timeout`` seconds pass for all of them (then it is killed); by name,
    its exit status, stdout and stderr."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, tuple[int, str, str]] = {}
    try:
        for name, command in commands.items():
            with (
                (out / f"{name}.out").open("wb") as stdout,
                (out / f"{name}.err").open("wb") as stderr,
            ):
                children[name] = subprocess.Popen(
                    list(command), stdout=stdout, stderr=stderr, env=dict(env)
                )
        deadline = time.monotonic() + timeout
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            results[name] = (
                child.returncode,
                (out / f"{name}.out").read_text(),
                (out / f"{name}.err").read_text(),
            )
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    return results
