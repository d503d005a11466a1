"""Which runner process owns which symbol: rendezvous hashing for ``--shard I/N``, sans-I/O.

N processes that each get the same symbol universe and their own index ``I`` take
disjoint shares that together cover every symbol exactly once, with no coordination:
each symbol goes to the shard whose hash of ``(shard, symbol)`` is highest
(rendezvous or highest-random-weight hashing). Going from N to N + 1 processes moves
only the symbols the new shard wins, about 1/(N + 1) of them; every other symbol stays
where it was. The hash is BLAKE2b, so a share is the same on every machine, Python
version and run (Python's own ``hash()`` of a str is salted per process).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import attrs

_SPEC = re.compile(r"(\d{1,4})/(\d{1,4})")


def _weight(shard: int, symbol: str) -> int:
    digest = hashlib.blake2b(f"{shard}\x00{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(symbol: str, shards: int) -> int:
    """The shard (0 to ``shards`` - 1) that owns ``symbol``."""
    if shards < 1:
        raise ValueError("there is at least one shard")
    return max(range(shards), key=lambda shard: (_weight(shard, symbol), -shard))


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count``: ``--shard 0/3`` is ``Shard(0, 3)``."""

    index: int
    count: int

    def __attrs_post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"a shard is I/N with 0 <= I < N, not {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (``"1/3"``), as the runner's ``--shard`` takes it."""
        match = _SPEC.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"a shard is I/N, like 0/3, not {text[:20]!r}")
        return cls(int(match[1]), int(match[2]))

    def owns(self, symbol: str) -> bool:
        return self.count == 1 or owner(symbol, self.count) == self.index

    def share(self, symbols: Iterable[str]) -> list[str]:
        """The symbols this shard owns, in their order."""
        return [s for s in symbols if self.owns(s)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
