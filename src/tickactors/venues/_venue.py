"""The venue objects a user builds: :class:`AllTick` and :class:`Tradovate`.

A venue object bundles a dialect (the sans-I/O wire form, ``_alltick.py``,
``_tradovate.py``) with where to connect and where tokens come from.
``open_feed`` takes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Generic, Protocol, TypeVar

from .._net.token_source import StaticToken, TokenSource
from .._secret import Secret
from ._alltick import MARKETS_URL, STOCK_URL, AllTickDialect
from ._dialect import Dialect
from ._tradovate import DEMO_URL, LIVE_URL, MD_URL, REPLAY_URL, TradovateDialect
from ._tradovate_auth import TradovateTokenSource
from ._tradovate_replay import Replay


class Venue(Protocol):
    """What ``open_feed`` takes: an :class:`AllTick` or a :class:`Tradovate` object."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def token_source(self) -> TokenSource | None: ...


D = TypeVar("D", AllTickDialect, TradovateDialect)


class _VenueBase(Generic[D]):
    """What every venue object is: a dialect and where its tokens come from."""

    _dialect: D
    _token_source: TokenSource | None

    def __init__(self, dialect: D, token: str | Secret | TokenSource | None) -> None:
        self._dialect = dialect
        if token is None or isinstance(token, str | Secret):
            self._token_source = None if token is None else StaticToken(token)
        else:
            self._token_source = token

    @property
    def dialect(self) -> D:
        return self._dialect

    @property
    def token_source(self) -> TokenSource | None:
        return self._token_source

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._dialect.display_url()!r})"


class AllTick(_VenueBase[AllTickDialect]):
    """AllTick: ``AllTick(url=..., token=...)``; the token travels in the URL's query.

    ``plan``: the token's AllTick plan, whose limits become the defaults of ``open_feed``'s
    ``max_symbols_per_connection`` and ``max_connections`` (``PLANS``): ``"free"`` 5
    symbols per connection and 1 connection (and a 10 s reconnect floor), ``"basic"`` 100
    and 1, ``"premium"`` 200 and 3, ``"professional"`` 3000 and 10. With a plan a feed
    spreads its symbols over as many connections as the limits allow and raises
    ``CapacityError`` beyond them.

    ``url`` defaults to the forex/crypto/metals endpoint; use ``AllTick.STOCK_URL``
    for stocks. ``depth_level``: order-book levels (1 to 10). ``heartbeat_interval``
    and ``reconnect_floor``: the venue's rules (10 s; 3 s, 10 s on the free plan). The
    token is wrapped in a :class:`~tickactors.Secret` at once and never printed;
    ``repr()`` masks it. The feed's own limits and deadlines (``stale_after``,
    ``request_timeout``, ...) are :func:`~tickactors.open_feed`'s.
    """

    STOCK_URL = STOCK_URL
    MARKETS_URL = MARKETS_URL
    #: plan -> (symbols per connection, connections per token): ``docs/venues.md``, AllTick.
    PLANS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
        {"free": (5, 1), "basic": (100, 1), "premium": (200, 3), "professional": (3000, 10)}
    )

    def __init__(
        self,
        url: str = MARKETS_URL,
        token: str | Secret | TokenSource | None = None,
        *,
        plan: str | None = None,
        depth_level: int = 5,
        heartbeat_interval: float = 10.0,
        reconnect_floor: float | None = None,
    ) -> None:
        max_symbols: int | None = None
        max_connections: int | None = None
        if plan is not None:
            if plan not in self.PLANS:
                raise ValueError(f"an AllTick plan is one of {', '.join(self.PLANS)}, not {plan!r}")
            max_symbols, max_connections = self.PLANS[plan]
        if reconnect_floor is None:
            # "after a drop, reconnect no sooner than 3 s (10 s on the free plan)"
            reconnect_floor = 10.0 if plan == "free" else 3.0
        self.plan = plan
        dialect = AllTickDialect(
            url,
            depth_level=depth_level,
            heartbeat_interval=heartbeat_interval,
            reconnect_floor=reconnect_floor,
            max_symbols=max_symbols,
            max_connections=max_connections,
        )
        super().__init__(dialect, token)


#: The trading sockets: they take the access token (``TradovateTokenSource(which="access")``).
_TRADING: Final = frozenset({DEMO_URL, LIVE_URL})


class Tradovate(_VenueBase[TradovateDialect]):
    """Tradovate: ``Tradovate(url=..., token=...)``; the token goes in ``authorize``.

    ``url`` defaults to the market-data socket (``Tradovate.MD_URL``); ``DEMO_URL``,
    ``LIVE_URL`` (the trading sockets, which keep the user's account:
    ``open_feed(sync=True)``) and ``REPLAY_URL`` are the others. ``token`` is a static
    token (str or :class:`~tickactors.Secret`) or a :class:`~tickactors.TokenSource` such
    as :class:`TradovateTokenSource`, which renews it; on ``DEMO_URL`` and ``LIVE_URL`` a
    ``TradovateTokenSource(which="md")`` is a ``ValueError`` (they take the access token).
    ``replay``: a market replay (:class:`Replay`; with ``REPLAY_URL``). ``heartbeat_interval`` and
    ``reconnect_floor``: 2.5 s and 1 s. ``repr()`` shows no secret. The feed's own
    limits and deadlines are :func:`~tickactors.open_feed`'s.
    """

    MD_URL = MD_URL
    DEMO_URL = DEMO_URL
    LIVE_URL = LIVE_URL
    REPLAY_URL = REPLAY_URL

    def __init__(
        self,
        url: str = MD_URL,
        token: str | Secret | TokenSource | None = None,
        *,
        heartbeat_interval: float = 2.5,
        reconnect_floor: float = 1.0,
        replay: Replay | None = None,
    ) -> None:
        if isinstance(token, TradovateTokenSource) and token.which == "md" and url in _TRADING:
            raise ValueError(
                "Tradovate's trading sockets authorize with the access token, not the "
                'market-data token: TradovateTokenSource(..., which="access")'
            )
        dialect = TradovateDialect(
            url,
            replay=replay,
            heartbeat_interval=heartbeat_interval,
            reconnect_floor=reconnect_floor,
        )
        super().__init__(dialect, token)


__all__ = ["AllTick", "Tradovate", "Venue"]
