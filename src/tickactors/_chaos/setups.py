"""The chaos soak's two venues: simulator settings, feed timings, symbols, tokens.

Timings are compressed about tenfold against the venues' defaults (AllTick stale
after 4 s instead of 30, Tradovate after 3 s instead of 10, request deadlines of
2 s, reconnect floors of 0.5 s) so that a minute holds every fault kind and its
recovery. The mechanisms are the production ones; only the numbers are smaller.

Each universe holds one symbol the venue rejects (``NOSUCH`` on AllTick, an
unknown contract on Tradovate), so rejections happen under chaos too, and a few
order-book symbols.

Tokens: AllTick tokens are static, so the soak hands the feed a rotating source
(the way a user would plug in their own token store): when the simulator revokes
the token in use (``expire_token``), the feed's forced refresh gets the next
one. Tradovate tokens come from the simulator's REST side through
:class:`TradovateTokenSource`, with a 40 s lifetime so renewals happen during
the run; a revoked one is replaced by a fresh ``accesstokenrequest``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypedDict

import attrs
import trio

from .._net.token_source import IssuedToken, TokenSource
from .._secret import Secret
from ..sim import SimConfig, Simulator
from ..venues import AllTick, Tradovate, Venue
from ..venues._tradovate_auth import TradovateCredentials, TradovateTokenSource

RECONNECT_FLOOR = 0.5
FEED_OPTIONS: dict[str, Any] = {
    "connect_timeout": 2.0,
    "backoff_base": 0.25,
    "backoff_cap": 4.0,
    "healthy_after": 2.0,
    "symbol_stale_after": 2.0,
}


class RecordingSource:
    """A token source that remembers the last token it handed out (the one to revoke)."""

    def __init__(self, inner: TokenSource) -> None:
        self._inner = inner
        self.current: Secret | None = None
        self.fetches = 0

    def __repr__(self) -> str:
        return f"RecordingSource({self._inner!r})"

    async def fetch(self) -> IssuedToken:
        issued = await self._inner.fetch()
        self.current = issued.token
        self.fetches += 1
        return issued


class RotatingToken:
    """AllTick's static tokens, one after another: each fetch hands out the next one.

    Never the same one twice: wrapping around would hand out a token the venue has
    revoked (a simulated day of revocations used up a pool of 1000 that way).
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = iter(tokens)

    def __repr__(self) -> str:
        return "RotatingToken(***)"

    async def fetch(self) -> IssuedToken:
        token = next(self._tokens, None)
        if token is None:
            raise LookupError("no tokens left")
        return IssuedToken(Secret(token), None)


class Timings(TypedDict):
    heartbeat_interval: float
    reconnect_floor: float


@attrs.frozen
class ChaosVenue:
    """One venue of the soak."""

    name: str
    symbols: tuple[str, ...]  # the main stream's universe
    book_symbols: tuple[str, ...]
    heartbeat_interval: float
    stale_after: float
    request_timeout: float
    sim_config: Callable[[int], SimConfig]
    make: Callable[[Simulator], tuple[Venue, RecordingSource]]
    user_request: tuple[str, str] | None  # (endpoint, query format) the soak sends itself

    def timings(self) -> Timings:
        """The venue object's timing options (``stale_after`` and ``request_timeout`` are
        ``open_feed``'s)."""
        return Timings(heartbeat_interval=self.heartbeat_interval, reconnect_floor=RECONNECT_FLOOR)


def _alltick_tokens(seed: int) -> Iterator[str]:
    return (f"chaos-{seed}-{i}" for i in itertools.count())


def _alltick_config(seed: int) -> SimConfig:
    invalid: Any = {"NOSUCH"}  # SimConfig's frozenset converter is typed too narrowly for mypy
    return SimConfig(tokens=None, invalid_codes=invalid)  # any token it has not revoked


def _alltick(sim: Simulator) -> tuple[Venue, RecordingSource]:
    source = RecordingSource(RotatingToken(_alltick_tokens(sim.seed)))
    return AllTick(url=sim.url, token=source, **ALLTICK.timings()), source


def _tradovate_config(seed: int) -> SimConfig:
    return SimConfig(token_lifetime=40.0, tradovate_heartbeat_interval=1.0)


def _tradovate(sim: Simulator) -> tuple[Venue, RecordingSource]:
    epoch = time.time() - trio.current_time()
    credentials = TradovateCredentials(
        name="chaos", password="chaos-password", app_id="tickactors-chaos",
        app_version="1.0", cid="1", sec="chaos-sec",
    )  # fmt: skip
    source = RecordingSource(
        TradovateTokenSource(
            sim.rest_url,
            credentials,
            request_timeout=TRADOVATE.request_timeout,
            wall_clock=lambda: epoch + trio.current_time(),  # the simulator's clock
        )
    )
    return Tradovate(url=sim.url, token=source, **TRADOVATE.timings()), source


ALLTICK = ChaosVenue(
    name="alltick",
    symbols=(
        "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "EURUSD",
        "GBPUSD", "USDJPY", "XAUUSD", "AUDUSD", "NOSUCH",
    ),
    book_symbols=("BTCUSDT", "ETHUSDT", "EURUSD"),
    heartbeat_interval=3.0,
    stale_after=4.0,
    request_timeout=2.0,
    sim_config=_alltick_config,
    make=_alltick,
    user_request=None,
)  # fmt: skip
TRADOVATE = ChaosVenue(
    name="tradovate",
    symbols=(
        "ESZ6", "NQZ6", "YMZ6", "RTYZ6", "CLF7",
        "GCG7", "SIH7", "ZBZ6", "6EZ6", "QQZ9",
    ),
    book_symbols=("ESZ6", "NQZ6"),
    heartbeat_interval=1.0,
    stale_after=3.0,
    request_timeout=2.0,
    sim_config=_tradovate_config,
    make=_tradovate,
    user_request=("contract/find", "name={symbol}"),
)  # fmt: skip
VENUES: dict[str, ChaosVenue] = {v.name: v for v in (ALLTICK, TRADOVATE)}
