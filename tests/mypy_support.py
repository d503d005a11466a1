"""``mypy --strict`` from a test, on the package of this tree (not an installed copy).

The project's own configuration (``pyproject.toml``: strict, the overrides) and cache
(``.mypy_cache``, warm after the ``mypy`` of ``.ci/run``) are used, and ``MYPYPATH``
points at this tree's ``src`` so that ``import tickactors`` means the code under test.
"""

from __future__ import annotations

import os
from pathlib import Path

from mypy import api as mypy_api

import tickactors

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(tickactors.__file__).resolve().parent.parent


def run_mypy(*paths: Path) -> tuple[int, str]:
    """``mypy --strict PATHS``: its exit status and its report (stdout and stderr)."""
    before = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = str(SRC)
    try:
        stdout, stderr, status = mypy_api.run(
            [
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--strict",
                "--cache-dir",
                str(ROOT / ".mypy_cache"),
                "--no-error-summary",
                *map(str, paths),
            ]
        )
    finally:
        if before is None:
            del os.environ["MYPYPATH"]
        else:
            os.environ["MYPYPATH"] = before
    return status, stdout + stderr
