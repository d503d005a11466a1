"""Where tokens come from: the async side of token handling.

A :class:`TokenSource` fetches a token and says how long it lives; the token
refresher actor asks it again when the sans-I/O ``TokenSchedule`` says so.
AllTick's token is static (:class:`StaticToken`); Tradovate's is renewed.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from .._secret import Secret


@attrs.frozen(slots=True)
class IssuedToken:
    """A token and how many seconds it lives from the moment it was fetched (None: forever)."""

    token: Secret
    lifetime: float | None = None


class TokenSource(Protocol):
    """Anything that can fetch a token. Raise an exception to report a failure."""

    async def fetch(self) -> IssuedToken:
        """A fresh (or renewed) token."""


class StaticToken:
    """A token that never changes and never expires (AllTick)."""

    def __init__(self, token: str | Secret) -> None:
        self._token = Secret(token) if isinstance(token, str) else token

    def __repr__(self) -> str:
        return "StaticToken(***)"

    async def fetch(self) -> IssuedToken:
        return IssuedToken(self._token, None)
