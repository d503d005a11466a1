"""One live AllTick connection: requests, rules, the write queue, the watchdog.

Theory of operation
-------------------
An :class:`AllTickConnection` (created by :mod:`._alltick_server` once the
handshake and token are through) runs three tasks:

- **reader**: every message is one request (:mod:`._alltick_protocol`). In
  order: stalled -> discarded (a heartbeat still refreshes the heartbeat
  clock); ``drop_requests`` -> discarded; the rate rules: first the
  per-connection one (a request less than ``rate_interval`` after the
  previous *counted* one of the same ``cmd_id``, or of any ``cmd_id`` with
  ``SimConfig.rate_scope == "connection"``), then the token-wide one
  (:mod:`._alltick_tokens`); a violation of either gets 605 and changes
  nothing; rate-rejected requests move neither clock; the violation (of
  either rule) that reaches ``kick_after_violations`` gets 606 instead, then
  close frame 1008; then validation and application; then the answer,
  subject to ``lose_acks``/``delay_acks``. Heartbeats (22000) count for
  neither rule and move neither clock, unless
  ``SimConfig.heartbeats_count_toward_rate``: then they are requests like
  any other for the per-connection rule (never for the token-wide one).
- **writer** (:mod:`._connection`, shared with Tradovate): drains the
  bounded frame queue, discarding frames while a stall holds; overflow drops
  the client as a slow consumer (TCP abort).
- **watchdog**: no accepted 22000 for ``heartbeat_timeout`` seconds (counted
  from the handshake) -> TCP abort, no close frame (the sim's pick for the
  UNSURE close code, ``docs/venues.md``, AllTick, "Heartbeat": none at all, as
  users report of such drops); older than the maximum age -> close frame 1000
  "max age" (the sim's pick).

Accepted subscribe/cancel requests go to a :class:`._alltick_subscriptions.
StreamedSets` (replace semantics and ghosts live there); the streamer's
questions (``wants_trade``, ``depth_level``, ``streamed``) are its methods.
Kicks (the fault and the rate rule) and token expiry send their 606 / 401
frame (``cmd_id`` 0 for the fault and expiry), then close frame 1008.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from .. import _secret
from . import _alltick_protocol as proto
from ._alltick_subscriptions import StreamedSets
from ._alltick_tokens import TokenRules, too_soon
from ._connection import Frame, VenueConnection
from ._faults import Faults
from ._hub import Hub
from ._wsio import ServerWebSocket


class AllTickConnection(VenueConnection):
    """Live state of one client connection (``sim.connections`` holds these).

    Public attributes: ``id``, ``opened_at`` (trio time), ``path``,
    ``token_masked``, ``trade_symbols``, ``depth_symbols`` (in the client's
    order), ``depth_levels``, ``requests`` (the last 1000 as ``(time, cmd_id,
    data)``; ``cmd_id`` -1 for unreadable ones), ``last_heartbeat_at``,
    ``rate_violations``, ``trade_ghosts``/``depth_ghosts`` (code -> until) and
    ``closed_reason`` once the server ended it.
    """

    def __init__(
        self,
        hub: Hub,
        faults: Faults,
        ws: ServerWebSocket,
        token: str,
        path: str,
        rules: TokenRules,
    ) -> None:
        super().__init__(hub, faults, ws, path)
        self._token = _secret.Secret(token)
        self._rules = rules
        self._record = hub.config.record_connections
        self.subs = StreamedSets(faults, hub.subscriptions_changed)
        # The streamer's per-tick questions, bound once (no delegation hop).
        self.wants_trade = self.subs.wants_trade
        self.depth_level = self.subs.depth_level
        self.streamed = self.subs.streamed
        self.requests: deque[tuple[float, int, Any]] = deque(maxlen=1000)
        self.last_heartbeat_at = self.opened_at
        self.last_request_at: dict[int, float] = {}  # per API (cmd_id), or one key 0
        self.rate_violations = 0

    def __repr__(self) -> str:
        return (
            f"<AllTickConnection #{self.id} trades={list(self.trade_symbols)} "
            f"depth={list(self.depth_symbols)}>"
        )

    # ---- SimConnection (the rest is in VenueConnection) ------------------------

    def uses_token(self, token: str) -> bool:
        return self._token.reveal() == token

    def subscribed(self) -> frozenset[str]:
        return self.subs.subscribed()

    def subscribed_by_kind(self) -> dict[str, frozenset[str]]:
        return self.subs.by_kind()

    def kick(self) -> None:
        self._close_after([proto.encode_answer(*proto.KICKED, 0)], 1008, "kicked", "kick")

    def expire_token(self) -> None:
        frame = proto.encode_answer(*proto.TOKEN_INVALID, 0)
        self._close_after([frame], 1008, "token invalid", "token_expired")

    def send_malformed(self, n: int) -> None:
        code = (self.trade_symbols or self.depth_symbols or ("BTCUSDT",))[0]
        self._queue_malformed(
            n, proto.MALFORMED_KINDS, lambda kind: proto.malformed_frame(kind, code)
        )

    # ---- subscriptions (owned by ``subs``) -------------------------------------

    @property
    def trade_symbols(self) -> tuple[str, ...]:
        return self.subs.trade_symbols

    @property
    def depth_symbols(self) -> tuple[str, ...]:
        return self.subs.depth_symbols

    @property
    def depth_levels(self) -> dict[str, int]:
        return self.subs.depth_levels

    @property
    def trade_ghosts(self) -> dict[str, float]:
        return self.subs.trade_ghosts

    @property
    def depth_ghosts(self) -> dict[str, tuple[float, int]]:
        return self.subs.depth_ghosts

    def _sent(self, frames: list[Frame]) -> None:
        if self._record:
            stats = self._hub.stats
            for frame in frames:
                if frame.trade_seq is not None and frame.symbol is not None:
                    stats.trade_written(self.id, frame.symbol, frame.trade_seq)

    # ---- limits ----------------------------------------------------------------

    def _check_limits(self, now: float) -> float | None:
        config = self._hub.config
        deadline = math.inf
        if config.heartbeat_timeout is not None:
            hb_deadline = self.last_heartbeat_at + config.heartbeat_timeout
            if now >= hb_deadline:
                self.abort("heartbeat_timeout")
                return None
            deadline = hb_deadline
        if self._hub.max_age is not None:
            age_deadline = self.opened_at + self._hub.max_age
            if now >= age_deadline:
                self._close_after([], 1000, "max age", "max_age")
                return None
            deadline = min(deadline, age_deadline)
        return deadline

    # ---- requests --------------------------------------------------------------

    def _on_message(self, message: str | bytes, now: float) -> None:
        faults, config, stats = self._faults, self._hub.config, self._hub.stats
        req = proto.parse_request(message)
        if req.cmd_id is None:
            self.requests.append((now, -1, message[:200]))
        else:
            self.requests.append((now, req.cmd_id, req.data))
            stats.requests_by_cmd[req.cmd_id] += 1
        if self._closing:
            return
        if faults.stalled():
            if req.error is None and req.cmd_id == proto.HEARTBEAT:
                self.last_heartbeat_at = now
            return
        if faults.take_drop_request():
            return
        violation = self._rate_violation(req.cmd_id, now)
        if violation is not None:
            stats.violations[violation] += 1
            self.rate_violations += 1
            if self.rate_violations >= config.kick_after_violations:
                answer = proto.encode_answer(*proto.KICKED, req.answer_id, req.seq_id, req.trace)
                self._close_after([answer], 1008, "too many requests", "rate_kick")
            else:
                self._send_text(
                    [proto.encode_answer(*proto.TOO_MANY, req.answer_id, req.seq_id, req.trace)]
                )
            return
        if req.error is not None:
            ret, msg, kind = req.error
            stats.violations[kind] += 1
        else:
            ret, msg = self._apply(req, now)
        answer = proto.encode_answer(ret, msg, req.answer_id, req.seq_id, req.trace)
        fault = faults.take_answer_fault()
        if fault is None:
            self._send_text([answer])
        elif fault != "lose" and self._nursery is not None:
            self._nursery.start_soon(self._send_later, float(fault), [answer])

    def _rate_violation(self, cmd_id: int | None, now: float) -> str | None:
        """Which rate rule the request breaks (``rate``, ``token_rate``), else None.

        A request that breaks neither moves both clocks (the token's only for
        the requests it covers); an uncounted heartbeat moves neither."""
        config = self._hub.config
        if cmd_id == proto.HEARTBEAT and not config.heartbeats_count_toward_rate:
            return None
        api = (-1 if cmd_id is None else cmd_id) if config.rate_scope == "api" else 0
        last = self.last_request_at.get(api)
        if config.enforce_rate and too_soon(last, now, config.rate_interval):
            return "rate"
        if not self._rules.request_allowed(self._token.reveal(), cmd_id, now):
            return "token_rate"
        self.last_request_at[api] = now
        return None

    def _apply(self, req: proto.Request, now: float) -> tuple[int, str]:
        data = req.data
        if req.cmd_id == proto.HEARTBEAT:
            self.last_heartbeat_at = now
            self._hub.stats.heartbeats += 1
            return proto.OK
        if req.cmd_id == proto.CANCEL:
            cancel_type = proto.check_cancel(data)
            if isinstance(cancel_type, proto.Rejection):
                return self._reject(cancel_type)
            if cancel_type in (0, 1):
                self.subs.replace_depth((), {}, now)
            if cancel_type in (0, 2):
                self.subs.replace_trades((), now)
            return proto.OK
        assert req.cmd_id is not None
        result = proto.check_symbol_list(req.cmd_id, data, self._hub.config)
        if isinstance(result, proto.Rejection):
            return self._reject(result)
        if req.cmd_id == proto.SUB_TRADES:
            self.subs.replace_trades(result.codes, now)
        else:
            self.subs.replace_depth(result.codes, dict(result.depth_levels), now)
        if self._record:
            self._hub.stats.codes_subscribed(self.id, result.codes)
        return proto.OK

    def _reject(self, rejection: proto.Rejection) -> tuple[int, str]:
        if rejection.violation is not None:
            self._hub.stats.violations[rejection.violation] += 1
        return rejection.ret, rejection.msg
