"""Culprit search: find which symbols a REPLACE_ALL venue refuses, by bisection.

An AllTick-like venue refuses a whole subscription request when one of its
symbols is bad (``ret`` 600/604) or when the set is too large (603), and usually
does not say which symbol. The reconciler then tests groups of *suspects* (the
refused symbols not yet seen accepted): each test request carries the symbols
already known good plus one group. This module keeps only the queue of groups;
the reconciler decides what is sent and what an answer means:

* a group accepted: :meth:`CulpritSearch.accepted` drops it, its symbols are good;
* a group of one refused: :meth:`CulpritSearch.drop` drops it, its symbol is rejected;
* a larger group refused: :meth:`CulpritSearch.split` replaces it by its two halves.

Groups only ever shrink or disappear, so the search ends: with ``n`` suspects and
``k`` culprits it costs at most about ``2 * k * ceil(log2(n))`` requests.
Symbols the user drops meanwhile are pruned from every group
(:meth:`CulpritSearch.prune`); a group pruned to nothing disappears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

__all__ = ["CulpritSearch", "halves"]


def halves(group: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Split ``group`` into two halves (the first one the larger); keep 0 or 1 symbol whole."""
    if len(group) <= 1:
        return [group] if group else []
    middle = (len(group) + 1) // 2
    return [group[:middle], group[middle:]]


@attrs.define(slots=True)
class CulpritSearch:
    """The queue of suspect groups still to be tested; the head is the one under test."""

    groups: list[tuple[str, ...]]

    @classmethod
    def start(cls, suspects: Iterable[str]) -> CulpritSearch:
        """A search over ``suspects``, split into two halves to test one after the other."""
        return cls(halves(tuple(sorted(set(suspects)))))

    @property
    def done(self) -> bool:
        return not self.groups

    @property
    def head(self) -> tuple[str, ...] | None:
        """The group under test, or ``None`` when the search is over."""
        return self.groups[0] if self.groups else None

    def pending(self) -> frozenset[str]:
        """Every symbol still under suspicion (in any group)."""
        return frozenset(s for group in self.groups for s in group)

    def _head_from(self, tested: tuple[str, ...]) -> bool:
        # The head still comes from the tested group (it may have been pruned since).
        return bool(self.groups) and set(self.groups[0]) <= set(tested)

    def accepted(self, tested: tuple[str, ...]) -> None:
        """The venue accepted a request that carried the group ``tested``."""
        if self._head_from(tested):
            del self.groups[0]

    def drop(self, tested: tuple[str, ...]) -> None:
        """A one-symbol group was refused: its symbol is a culprit, the group goes."""
        if self._head_from(tested):
            del self.groups[0]

    def split(self, tested: tuple[str, ...]) -> None:
        """A larger group was refused: test its halves next."""
        if self._head_from(tested):
            head = self.groups.pop(0)
            self.groups[0:0] = halves(head)

    def prune(self, keep: Callable[[str], bool]) -> None:
        """Keep only the symbols ``keep`` approves of; drop groups left empty."""
        pruned = (tuple(s for s in group if keep(s)) for group in self.groups)
        self.groups = [group for group in pruned if group]

    def clear(self) -> tuple[str, ...]:
        """End the search; return every symbol that was still under suspicion."""
        rest = tuple(s for group in self.groups for s in group)
        self.groups = []
        return rest
