"""What every part of one simulator shares: config, stats, the market, the live connections.

The listener creates connections, the streamer feeds them, the fault controls
reach into them; all of them hold one :class:`Hub` instead of holding each
other. Connections appear to the venue-agnostic parts (faults, the public
``sim.connections`` list) through the small :class:`SimConnection` protocol.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import trio

from ._config import SimConfig
from ._market import Market
from ._stats import SimStats


class SimConnection(Protocol):
    """The face a live connection shows to faults and to tests."""

    id: int
    opened_at: float
    closed_reason: str | None  # set once either side starts to end the connection

    @property
    def token_masked(self) -> str: ...

    def uses_token(self, token: str) -> bool:
        """Whether this connection authenticated with ``token``."""

    def subscribed(self) -> frozenset[str]:
        """Every code this connection subscribes (trades and depth)."""

    def subscribed_by_kind(self) -> dict[str, frozenset[str]]:
        """The codes this connection streams by stream kind (``trades``/``quotes``, ``book``)."""

    def abort(self, reason: str) -> None:
        """Drop the TCP connection now, without a close frame."""

    def kick(self) -> None:
        """Send the venue's 'kicked' message, then close."""

    def expire_token(self) -> None:
        """Tell the client its token is no longer valid, then close."""

    def send_malformed(self, n: int) -> None:
        """Queue ``n`` deliberately bad frames."""

    def limits_changed(self) -> None:
        """Re-read live limits such as the maximum connection age."""


@runtime_checkable
class ShutdownCapable(Protocol):
    """A connection whose venue has a shutdown notice (Tradovate's ``shutdown`` event)."""

    def shutdown(self, reason_code: str, reason: str) -> None:
        """Send the venue's shutdown notice, then close."""


@runtime_checkable
class CloseFrameCapable(Protocol):
    """A connection whose venue ends a session with a frame of its own (Tradovate's
    ``c[code,"reason"]``), which a fault can send without closing the socket."""

    def close_frame_keep_open(self, code: int, reason: str) -> None:
        """Send the close frame, then nothing more; the socket stays open."""


class Hub:
    """Shared state of one simulator (see the module docstring)."""

    def __init__(self, config: SimConfig, seed: int, epoch: float, venue: str = "alltick") -> None:
        self.venue = venue
        self.config = config
        self.seed = seed
        self.stats = SimStats()
        self.market = Market(seed, epoch + trio.current_time())
        self.epoch = epoch  # wall-clock seconds at trio time 0
        self.connections: dict[int, SimConnection] = {}
        self.expired_tokens: set[str] = set()
        self.max_age: float | None = config.max_connection_age
        self._next_id = 0
        self._subscribers: list[Callable[[], None]] = []

    def rng(self, purpose: str) -> random.Random:
        """An independent random stream derived from the seed, one per purpose."""
        return random.Random(f"{self.seed}:{purpose}")

    def wall_time(self) -> float:
        """The wall-clock stamp of now, for ``tick_time``."""
        return self.epoch + trio.current_time()

    def new_connection_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def token_accepted(self, token: str) -> bool:
        if not token or token in self.expired_tokens:
            return False
        return self.config.tokens is None or token in self.config.tokens

    def on_subscriptions_changed(self, callback: Callable[[], None]) -> None:
        """Register a callback run whenever some connection's subscriptions change."""
        self._subscribers.append(callback)

    def subscriptions_changed(self) -> None:
        for callback in self._subscribers:
            callback()

    def record_fault(self, kind: str, detail: str = "") -> None:
        self.stats.faults_injected[kind] += 1
        self.stats.fault_log.append((trio.current_time(), kind, detail))
