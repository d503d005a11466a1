"""The documentation names what exists: the layer picture and the files it cites.

``docs/architecture.md`` draws the package's layers; :data:`tests.test_layers.LAYERS` is
what the import check enforces, and the two must say the same. Every file path a page
cites (``_actors/session.py``, ``tests/fake_venue.py``, ...) must exist: files move, and
a page that points at a file that is gone sends its reader nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import tickactors

from .test_layers import LAYERS, SIM

PACKAGE = Path(tickactors.__file__).parent
ROOT = PACKAGE.parents[1]
DOCS = ROOT / "docs"


def layer_picture() -> dict[int, set[str]]:
    """Rank -> the packages and modules the picture puts there (the left column)."""
    text = (DOCS / "architecture.md").read_text()
    start = text.index("```text\n", text.index("## The layers")) + len("```text\n")
    block = text[start : text.index("```", start)]
    found: dict[int, set[str]] = {}
    rank = None
    for line in block.splitlines():
        head = re.match(r" (\d)  ", line)
        if head:
            rank = int(head[1])
        cells = line.split("|")
        if rank is None or len(cells) < 3:
            continue
        cell = cells[1].strip()
        if rank in (0, len(LAYERS)):
            names = [n.strip() for n in cell.split(":")[0].split(",")]
        elif cells[1][:2].isspace():  # a continuation line, or a border
            names = []
        else:
            names = [cell.split(" ")[0].rstrip("/")]
        found.setdefault(rank, set()).update(n for n in names if n)
    return found


def test_the_layer_picture_is_the_one_test_layers_enforces():
    picture = layer_picture()
    expected = {rank: set(names) for rank, names in enumerate(LAYERS)}
    expected[len(LAYERS)] = {"tickactors/__init__.py"}
    assert picture == expected
    text = (DOCS / "architecture.md").read_text()
    assert f"| {SIM}/" in text  # beside the layers


_PATH = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|md))(?:[`:#]|\s)")


def test_every_file_a_page_cites_exists():
    missing = []
    for page in [*DOCS.rglob("*.md"), ROOT / "README.md"]:
        for path in _PATH.findall(page.read_text()):
            candidates = [ROOT / path, PACKAGE / path, PACKAGE.parent / path, DOCS / path]
            if not any(candidate.exists() for candidate in candidates):
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == []
