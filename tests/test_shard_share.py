"""Rendezvous shares for ``--shard I/N`` (``_core/shard_share.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickactors._core.shard_share import Shard, owner

UNIVERSE = [f"SYM{i:05d}" for i in range(6000)]


@given(st.integers(1, 12), st.lists(st.text(min_size=1, max_size=12), max_size=50))
def test_shares_cover_every_symbol_exactly_once(count, symbols):
    shares = [Shard(i, count).share(symbols) for i in range(count)]
    assert sorted(s for share in shares for s in share) == sorted(symbols)


def test_shares_are_even_and_adding_a_shard_moves_few_symbols():
    for count in (2, 3, 5, 10):
        sizes = [len(Shard(i, count).share(UNIVERSE)) for i in range(count)]
        assert max(sizes) - min(sizes) < 0.2 * len(UNIVERSE) / count, sizes
        moved = sum(owner(s, count) != owner(s, count + 1) for s in UNIVERSE)
        # Only what the new shard wins moves: about 1/(count + 1) of the universe.
        assert moved == sum(owner(s, count + 1) == count for s in UNIVERSE)
        assert moved < 1.3 * len(UNIVERSE) / (count + 1)


def test_the_same_share_in_another_process():
    code = (
        "from tickactors._core.shard_share import owner;"
        "print(','.join(str(owner(f'SYM{i:05d}', 7)) for i in range(300)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert out == ",".join(str(owner(f"SYM{i:05d}", 7)) for i in range(300))


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1/0", "a/b", "1", "1/3/4", "", "99999/100000"])
def test_bad_shard_specs_say_so(text):
    with pytest.raises(ValueError, match="I/N"):
        Shard.parse(text)


def test_parse_and_print():
    assert Shard.parse(" 1/3 ") == Shard(1, 3) and str(Shard(1, 3)) == "1/3"
    assert Shard(0, 1).share(["A", "B"]) == ["A", "B"]
