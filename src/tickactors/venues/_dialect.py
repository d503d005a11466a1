"""What a venue dialect is: the sans-I/O wire form of one venue.

A dialect turns the reconciler's requests into frames and frames into values,
answers and notices. It never touches the network or the clock: the connection
actor hands it each frame with the time it arrived. One dialect object serves
one feed (all its connections); it keeps no per-connection state beyond what
its ``new_session()`` returns.

The hot path is :meth:`Dialect.decode`: it appends market data straight into
the caller's batch (:class:`MarketBatch`) and returns the (usually empty)
tuple of answers, so decoding a tick allocates nothing but the tick.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

import attrs

from .._core.reconciler import Semantics, SendRequest
from .._secret import Secret
from .._values import BookSnapshot, StreamKind, Tick


class MarketBatch:
    """The reader's batch: trades and books decoded from a run of frames."""

    __slots__ = ("books", "trades")

    def __init__(self) -> None:
        self.trades: list[Tick] = []
        self.books: list[BookSnapshot] = []

    def __bool__(self) -> bool:
        return bool(self.trades or self.books)


class AnswerKind(enum.Enum):
    """How the feed should treat a venue's answer."""

    OK = "ok"
    REJECTED = "rejected"  # the symbols' fault (unknown, unauthorized, over the plan)
    RATE_LIMITED = "rate-limited"  # too fast: the same request may go again later
    KICKED = "kicked"  # too fast, and the venue closes the connection
    AUTH = "auth"  # the token was refused
    BAD_REQUEST = "bad-request"  # our request was malformed: a bug on our side


@attrs.frozen(slots=True)
class Answer:
    """A venue's answer to one request, or an unsolicited error (``request_id`` 0)."""

    request_id: int
    kind: AnswerKind
    code: int
    message: str = ""
    retry_after: float | None = None


NO_ANSWERS: tuple[Answer, ...] = ()


class Dialect(Protocol):
    """The wire form of one venue. See ``AllTickDialect`` for the reference implementation."""

    name: str
    semantics: Semantics
    kinds: tuple[StreamKind, ...]
    heartbeat_interval: float
    stale_after: float
    budget_frames: int
    budget_per: float
    budget_margin: float
    reconnect_floor: float
    request_timeout: float
    max_symbols: int | None

    def validate_symbol(self, symbol: object) -> str:
        """The symbol as the venue spells it, or raise ``InvalidSymbolError``."""

    def connect_url(self, token: Secret | None) -> str:
        """The URL to connect to, token included. Never log it."""

    def display_url(self) -> str:
        """The URL with every secret masked: safe to print."""

    def encode_heartbeat(self, request_id: int) -> str | None:
        """The heartbeat frame, or None when the venue's heartbeat is not a request."""

    def encode_request(self, request: SendRequest, request_id: int) -> str:
        """The frame for one reconciler request."""

    def decode(self, frame: str | bytes, received_at: float, out: MarketBatch) -> Sequence[Answer]:
        """Append the frame's market data to ``out``; return its answers.

        Raises ``ProtocolError`` for a frame it cannot understand; the caller counts
        it and goes on.
        """
