"""Tradovate users, accounts and access tokens on trio's clock.

Theory of operation
-------------------
``issue(name)`` (behind ``POST /auth/accesstokenrequest``) makes a token
pair, ``accessToken`` and ``mdAccessToken``, both living
``SimConfig.token_lifetime`` seconds from now on trio's clock; either one
authorizes any socket (live, md or replay). ``check(token)`` says who a
token belongs to, or why it is refused: ``"Access is denied"`` for a token
this simulator never issued or that was revoked (``faults.expire_token``,
the connection quota), ``"Expired Access Token"`` once its lifetime is over.
Tokens listed in ``SimConfig.tokens`` are also accepted, for user
``sim-user``, and never expire (only revocation ends them).

Picks where the venue's documents are silent or UNSURE (``docs/venues.md``, Tradovate,
"Tokens"):

- **credentials**: ``SimConfig.tradovate_user`` / ``tradovate_password``; each
  ``None`` accepts anything. Wrong ones get HTTP 200 with
  ``{"errorText": "Incorrect username or password. ..."}``, as Tradovate does.
- **renewal** (``GET /auth/renewaccesstoken``) issues a NEW pair with a fresh
  lifetime; the old token stays valid until its own expiry (so sockets and
  requests already using it are not disturbed).
- **an open socket outlives its token**: expiry is checked when a token is
  presented (authorize, REST), never on a live connection; revocation is
  what closes sockets (see ``_tradovate_connection``). Unless
  ``SimConfig.mute_on_token_expiry``: then the socket goes mute (open,
  silent) when its token expires (also in ``_tradovate_connection``).
- user ids and account ids are stable per (seed, user name); token strings
  come from a seed-derived stream, so a run is repeatable.
"""

from __future__ import annotations

import random
import string
from typing import Any, Final

import attrs
import trio

from . import _tradovate_protocol as proto
from ._hub import Hub

PRESHARED_USER: Final = "sim-user"
BAD_CREDENTIALS: Final = (
    "Incorrect username or password. Please try again noting that passwords are case-sensitive."
)
_ALPHABET: Final = string.ascii_letters + string.digits + "-_"


@attrs.frozen(slots=True)
class User:
    id: int
    name: str
    account_id: int
    account_name: str


@attrs.frozen(slots=True)
class TokenPair:
    access: str
    md: str
    user: User
    expires_at: float  # trio time


@attrs.define(slots=True)
class _Token:
    user: User
    expires_at: float


class Accounts:
    """Users and tokens of one simulator; see the module docstring."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._rng = hub.rng("tradovate:tokens")
        self._users: dict[str, User] = {}
        self._tokens: dict[str, _Token] = {}

    # ---- users -----------------------------------------------------------------

    def user(self, name: str) -> User:
        """The user called ``name`` (created on first use, stable per seed and name)."""
        found = self._users.get(name)
        if found is None:
            rng = random.Random(f"{self._hub.seed}:tradovate:user:{name}")
            account_id = rng.randint(100_000, 999_999)
            found = User(rng.randint(1_000_000, 9_999_999), name, account_id, f"DEMO{account_id}")
            self._users[name] = found
        return found

    def credentials_ok(self, name: object, password: object) -> bool:
        config = self._hub.config
        if not isinstance(name, str) or not name:
            return False
        if config.tradovate_user is not None and name != config.tradovate_user:
            return False
        return config.tradovate_password is None or password == config.tradovate_password

    def accounts_json(self, user: User) -> list[dict[str, Any]]:
        """``account/list``: one demo account per user."""
        return [
            {
                "id": user.account_id,
                "name": user.account_name,
                "userId": user.id,
                "accountType": "Customer",
                "active": True,
                "clearingHouseId": 2,
                "riskCategoryId": 2,
                "autoLiqProfileId": 2,
                "marginAccountType": "Speculator",
                "legalStatus": "Individual",
                "archived": False,
                "timestamp": proto.iso(self._hub.epoch),
            }
        ]

    def me_json(self, user: User) -> dict[str, Any]:
        """``auth/me``: who the token belongs to (the fields Tradovate's examples read)."""
        return {
            "userId": user.id,
            "name": user.name,
            "fullName": user.name,
            "email": f"{user.name}@example.invalid",
            "emailVerified": True,
            "isTrial": False,
        }

    def user_json(self, user: User) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "status": "Active", "professional": False}

    # ---- tokens ----------------------------------------------------------------

    def _new_token(self) -> str:
        return "".join(self._rng.choices(_ALPHABET, k=48))

    def issue(self, name: str) -> TokenPair:
        """A fresh token pair for user ``name``, living ``token_lifetime`` from now."""
        user = self.user(name)
        expires_at = trio.current_time() + self._hub.config.token_lifetime
        pair = TokenPair(self._new_token(), self._new_token(), user, expires_at)
        self._tokens[pair.access] = _Token(user, expires_at)
        self._tokens[pair.md] = _Token(user, expires_at)
        self._hub.stats.tokens_issued += 1
        return pair

    def renew(self, token: str) -> TokenPair | str:
        """A new pair for the owner of ``token``, or the refusal text."""
        owner = self.check(token)
        if isinstance(owner, str):
            return owner
        pair = self.issue(owner.name)
        self._hub.stats.tokens_issued -= 1
        self._hub.stats.tokens_renewed += 1
        return pair

    def check(self, token: str) -> User | str:
        """The owner of ``token``, or why it is refused (see the module docstring)."""
        if not token or token in self._hub.expired_tokens:
            return proto.ACCESS_DENIED
        info = self._tokens.get(token)
        if info is None:
            tokens = self._hub.config.tokens
            if tokens is not None and token in tokens:
                return self.user(PRESHARED_USER)
            return proto.ACCESS_DENIED
        if trio.current_time() >= info.expires_at:
            return proto.EXPIRED_TOKEN
        return info.user

    def expires_at(self, token: str) -> float | None:
        """Trio time ``token`` expires at (None: not issued here)."""
        info = self._tokens.get(token)
        return None if info is None else info.expires_at

    def revoke(self, token: str) -> None:
        self._hub.expired_tokens.add(token)

    def token_json(self, pair: TokenPair) -> dict[str, Any]:
        """The body of a successful ``accesstokenrequest`` / ``renewaccesstoken``."""
        return {
            "accessToken": pair.access,
            "mdAccessToken": pair.md,
            "expirationTime": proto.iso(self._hub.epoch + pair.expires_at),
            "userStatus": "Active",
            "userId": pair.user.id,
            "name": pair.user.name,
            "hasLive": False,
        }
