"""Token schedule: when to refresh an access token, and which token a new connection uses.

Theory of operation
-------------------

Some venues hand out tokens that expire (Tradovate: 80 to 90 minutes, renewed about 15 minutes
before expiry); others use a static token (AllTick). A feed re-authorizes every new connection with
the *current* token, so the schedule keeps the latest one and decides when to fetch the next.

``token_received(token, expires_at, now)`` stores the token. ``expires_at`` is on the feed's clock
(the caller converts a venue's wall-clock ``expirationTime``), None for a token that never
expires. The refresh is due ``lead`` seconds before expiry, where::

    lifetime = expires_at - now
    lead     = min(refresh_before, lifetime * short_lifetime_fraction)

so a long-lived token refreshes ``refresh_before`` seconds early (an 80-minute token 15 minutes
before, with the default 900 s) while a short-lived one keeps most of its life (a 2-minute token
refreshes 30 s before, with the default fraction 0.25). A token that arrives already expired is
due at once. Receiving a token resets the retry count.

``poll(now)`` returns one :class:`RefreshDue` when the refresh time has come, and then nothing
more until the caller reports the outcome: ``token_received`` on success, ``refresh_failed(now)``
on failure. A failure schedules a retry after a full-jitter delay
``random() * min(retry_cap, retry_base * 2**n)`` (``n`` = consecutive failures, from 0), but never
later than the current token's expiry while there is still time before it: the last retry happens
while the old token still works. ``refresh_failed`` also schedules the retries of a first fetch
(no token yet, nothing to clamp to).

``current()`` is the token a new connection should use; ``expired(now)`` tells whether there is no
usable token (none yet, or ``now >= expires_at``). The token is a
:class:`~tickactors._secret.Secret` and appears in no repr, event or statistic of this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

from .._secret import Secret
from .backoff import full_jitter

__all__ = ["RefreshDue", "TokenSchedule", "TokenStatistics"]


@attrs.frozen
class RefreshDue:
    """Time to fetch a new token. ``attempt`` is 0 for a scheduled refresh, n for the n-th retry."""

    expires_at: float | None  # when the current token expires (None: static or no token)
    attempt: int


@attrs.frozen
class TokenStatistics:
    """A snapshot for introspection (see :meth:`TokenSchedule.statistics`). Never the token."""

    refreshes: int  # tokens received
    failures: int  # failed refreshes, all told
    consecutive_failures: int
    has_token: bool
    expires_at: float | None
    refresh_at: float | None


class TokenSchedule:
    """Decides when to refresh a token and holds the one new connections use."""

    def __init__(
        self,
        *,
        refresh_before: float = 900.0,
        short_lifetime_fraction: float = 0.25,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
        random: Callable[[], float],
    ) -> None:
        if not (math.isfinite(refresh_before) and refresh_before >= 0.0):
            raise ValueError(f"refresh_before must be a finite number >= 0, got {refresh_before!r}")
        if not 0.0 <= short_lifetime_fraction <= 1.0:
            raise ValueError(
                f"short_lifetime_fraction must be in [0, 1], got {short_lifetime_fraction!r}"
            )
        if not (math.isfinite(retry_base) and retry_base > 0.0):
            raise ValueError(f"retry_base must be a finite number > 0, got {retry_base!r}")
        if not (math.isfinite(retry_cap) and retry_cap >= 0.0):
            raise ValueError(f"retry_cap must be a finite number >= 0, got {retry_cap!r}")
        self._refresh_before = refresh_before
        self._fraction = short_lifetime_fraction
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._random = random
        self._token: Secret | None = None
        self._expires_at: float | None = None
        self._refresh_at: float | None = None
        self._consecutive_failures = 0
        self._refreshes = 0
        self._failures = 0

    def token_received(self, token: Secret, expires_at: float | None, now: float) -> None:
        """A new token arrived; schedule its refresh and reset the retry count."""
        if not isinstance(token, Secret):
            raise TypeError("wrap the token in tickactors._secret.Secret")
        self._token = token
        self._expires_at = expires_at
        self._consecutive_failures = 0
        self._refreshes += 1
        if expires_at is None:
            self._refresh_at = None
            return
        lifetime = expires_at - now
        if lifetime <= 0.0:
            self._refresh_at = now
        else:
            self._refresh_at = expires_at - min(self._refresh_before, lifetime * self._fraction)

    def current(self) -> Secret | None:
        """The token a new connection authorizes with (None before the first one arrives)."""
        return self._token

    def expired(self, now: float) -> bool:
        """True when there is no usable token: none yet, or ``now >= expires_at``."""
        if self._token is None:
            return True
        return self._expires_at is not None and now >= self._expires_at

    def refresh_failed(self, now: float) -> float:
        """A refresh (or first fetch) failed: schedule a retry; returns its delay."""
        delay = full_jitter(
            self._random,
            base=self._retry_base,
            cap=self._retry_cap,
            attempt=self._consecutive_failures,
        )
        self._consecutive_failures += 1
        self._failures += 1
        retry_at = now + delay
        if self._expires_at is not None and now < self._expires_at < retry_at:
            retry_at = self._expires_at
            delay = self._expires_at - now
        self._refresh_at = retry_at
        return delay

    def poll(self, now: float) -> list[RefreshDue]:
        """One :class:`RefreshDue` when the refresh time has come, then nothing until an outcome."""
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            return [RefreshDue(expires_at=self._expires_at, attempt=self._consecutive_failures)]
        return []

    def next_deadline(self) -> float | None:
        """When the next refresh (or retry) is due; None for a static token or one in flight."""
        return self._refresh_at

    def statistics(self) -> TokenStatistics:
        return TokenStatistics(
            refreshes=self._refreshes,
            failures=self._failures,
            consecutive_failures=self._consecutive_failures,
            has_token=self._token is not None,
            expires_at=self._expires_at,
            refresh_at=self._refresh_at,
        )

    def __repr__(self) -> str:
        return (
            f"TokenSchedule(has_token={self._token is not None}, expires_at={self._expires_at!r},"
            f" refresh_at={self._refresh_at!r}, failures={self._consecutive_failures})"
        )
