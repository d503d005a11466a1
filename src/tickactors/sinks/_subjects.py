"""NATS subjects for ticks and health events, and the reversible encoding of a symbol.

A NATS subject is a list of tokens joined by ``.``; a token may not be empty and may not
hold ``.``, whitespace, ``*`` or ``>``. Symbols can hold ``.`` (``700.HK``), and
Tradovate names an unresolved contract ``#123``. So a symbol becomes one token this way:

- letters, digits, ``_`` and ``-`` stay as they are;
- every other character becomes its UTF-8 bytes, each written ``%XX`` (two uppercase
  hex digits), as in a URL: ``700.HK`` is ``700%2EHK``, ``@ES`` is ``%40ES``, ``%`` is
  ``%25``.

The token is never empty for a non-empty symbol, holds only ``[A-Za-z0-9_%-]`` and is
decoded by any URL decoder (Python's ``urllib.parse.unquote``). The subjects are

- ``<prefix>.<venue>.<kind>.<symbol token>`` for market data, ``prefix`` ``ticks`` by
  default and ``kind`` the line's ``kind`` (``tick``, ``book``, ``quote``);
- ``<prefix>.<venue>.sync.<user id>`` for the account's snapshots and
  ``<prefix>.<venue>.props.<entity type token>`` for its entity events (the same prefix:
  a stream that captures the market data captures them too);
- ``<health prefix>.<venue>.<event>`` for health and status lines (``health.alltick.stale``).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote

from .._values import AccountUpdate, SyncSnapshot

__all__ = [
    "account_subject",
    "decode_symbol_token",
    "encode_symbol_token",
    "health_subject",
    "market_subject",
]

_SAFE = "_-"  # with letters and digits, which quote() always keeps
_TOKEN = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")


@functools.lru_cache(maxsize=65536)
def encode_symbol_token(symbol: str) -> str:
    """``symbol`` as one NATS subject token (see the module docstring)."""
    if not symbol:
        raise ValueError("an empty symbol has no subject token")
    # quote() keeps letters, digits and "_.-~" plus ``safe``: "." and "~" must go too.
    return quote(symbol, safe=_SAFE).replace(".", "%2E").replace("~", "%7E")


def decode_symbol_token(token: str) -> str:
    """The symbol a token encodes; ``ValueError`` if it is not such a token."""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not a symbol token: {token!r}")
    return unquote(token, errors="strict")


def market_subject(prefix: str, venue: str, kind: str, symbol: str) -> str:
    return f"{prefix}.{venue}.{kind}.{encode_symbol_token(symbol)}"


def account_subject(prefix: str, venue: str, item: AccountUpdate) -> str:
    """``<prefix>.<venue>.sync.<user id>`` (``unknown`` without one) or
    ``<prefix>.<venue>.props.<entity type token>``."""
    if isinstance(item, SyncSnapshot):
        user = "unknown" if item.user_id is None else str(item.user_id)
        return f"{prefix}.{venue}.sync.{user}"
    return f"{prefix}.{venue}.props.{encode_symbol_token(item.entity_type or '_')}"


def health_subject(prefix: str, venue: str, event: str) -> str:
    return f"{prefix}.{venue}.{encode_symbol_token(event)}"
