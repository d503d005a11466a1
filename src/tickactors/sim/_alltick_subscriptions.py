"""What one AllTick connection streams: the trade and depth sets, and ghosts.

Theory of operation
-------------------
A :class:`StreamedSets` belongs to one :class:`._alltick_connection.
AllTickConnection`; the connection applies accepted requests to it and the
streamer (:mod:`._alltick_stream`) asks it, per tick, whether a code is wanted.

Replace semantics: an accepted 22004 (22002) *replaces* the trade (depth)
set; 22006 empties the sets named by ``cancel_type``. A rejected request
changes nothing (the connection never calls in here for one). Codes removed
while the ghost fault is armed keep streaming: :meth:`Faults.ghost_until`
says until when, and the ghost maps hold that deadline (with the depth
level, for depth). Ghosts expire lazily, when the streamer next asks about
them; re-subscribing a code clears its ghost. Every replace reports through
the ``changed`` callback so the streamer can recompute what to generate.
"""

from __future__ import annotations

from collections.abc import Callable

from ._faults import Faults


class StreamedSets:
    """Trade and depth subscriptions of one connection, ghosts included.

    Public attributes: ``trade_symbols``, ``depth_symbols`` (in the client's
    order), ``depth_levels`` and ``trade_ghosts``/``depth_ghosts`` (code ->
    until, plus the level for depth).
    """

    def __init__(self, faults: Faults, changed: Callable[[], None]) -> None:
        self._faults, self._changed = faults, changed
        self.trade_symbols: tuple[str, ...] = ()
        self.depth_symbols: tuple[str, ...] = ()
        self.depth_levels: dict[str, int] = {}
        self.trade_ghosts: dict[str, float] = {}
        self.depth_ghosts: dict[str, tuple[float, int]] = {}
        self._trade_set: frozenset[str] = frozenset()

    def subscribed(self) -> frozenset[str]:
        return self._trade_set | frozenset(self.depth_symbols)

    def by_kind(self) -> dict[str, frozenset[str]]:
        """What this connection streams (ghosts aside), by the client's stream kind."""
        return {"trades": self._trade_set, "book": frozenset(self.depth_symbols)}

    # ---- what the streamer asks ------------------------------------------------

    def wants_trade(self, code: str, now: float) -> bool:
        if code in self._trade_set:
            return True
        until = self.trade_ghosts.get(code)
        if until is None:
            return False
        if now < until:
            return True
        del self.trade_ghosts[code]
        return False

    def depth_level(self, code: str, now: float) -> int:
        """Levels to send for ``code`` (0: not streamed)."""
        level = self.depth_levels.get(code)
        if level is not None:
            return level
        ghost = self.depth_ghosts.get(code)
        if ghost is None:
            return 0
        if now < ghost[0]:
            return ghost[1]
        del self.depth_ghosts[code]
        return 0

    def streamed(self, now: float) -> tuple[set[str], set[str]]:
        """(trade codes, depth codes) this connection streams now, ghosts included."""
        trades = set(self._trade_set) | {c for c, u in self.trade_ghosts.items() if now < u}
        depth = set(self.depth_symbols) | {c for c, g in self.depth_ghosts.items() if now < g[0]}
        return trades, depth

    # ---- what accepted requests do ---------------------------------------------

    def replace_trades(self, codes: tuple[str, ...], now: float) -> None:
        for code in self._trade_set.difference(codes):
            until = self._faults.ghost_until(code, now)
            if until is not None:
                self.trade_ghosts[code] = until
        for code in codes:
            self.trade_ghosts.pop(code, None)
        self.trade_symbols, self._trade_set = codes, frozenset(codes)
        self._changed()

    def replace_depth(self, codes: tuple[str, ...], levels: dict[str, int], now: float) -> None:
        for code, level in self.depth_levels.items():
            if code not in levels:
                until = self._faults.ghost_until(code, now)
                if until is not None:
                    self.depth_ghosts[code] = (until, level)
        for code in codes:
            self.depth_ghosts.pop(code, None)
        self.depth_symbols, self.depth_levels = codes, levels
        self._changed()
