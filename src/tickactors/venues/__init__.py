"""Venues: what a feed connects to.

- :class:`AllTick` (trades and order books; the token in the URL; ``plan=`` for the
  limits of the token's plan);
- :class:`Tradovate` (quotes and DOM books; ``authorize`` on every connection), with
  :class:`TradovateTokenSource` to fetch and renew its token over REST from
  :class:`TradovateCredentials`, and :class:`Replay` for market replay.

``tickactors.open_feed`` takes one of them (a :class:`Venue`).
"""

from ._tradovate_auth import TradovateCredentials as TradovateCredentials
from ._tradovate_auth import TradovateTokenSource as TradovateTokenSource
from ._tradovate_replay import Replay as Replay
from ._venue import AllTick as AllTick
from ._venue import Tradovate as Tradovate
from ._venue import Venue as Venue

__all__ = [
    "AllTick",
    "Replay",
    "Tradovate",
    "TradovateCredentials",
    "TradovateTokenSource",
    "Venue",
]
