"""One live Tradovate WebSocket: frames, the write queue, heartbeats, the watchdog.

Theory of operation
-------------------
A :class:`TradovateConnection` (created by ``_tradovate_server`` once the
upgrade is through) first queues the ``o`` frame, then runs four tasks:

- **reader**: every inbound message refreshes the client-activity clock
  (``[]`` heartbeats and requests alike, even during a stall or once mute).
  ``[]`` is counted and never answered. Requests are logged, then: closing
  or mute -> ignored; stalled -> discarded; ``drop_requests`` -> discarded; otherwise
  the :class:`._tradovate_requests.Dispatcher` decides. Its answer goes out
  as ``a[answer]`` subject to ``lose_acks`` / ``delay_acks`` (a lost answer's
  follow-up events still go out; a delayed one's go out after it); then the
  ``props`` events the request caused go to every connection of the user
  that did a ``user/syncrequest`` (``TradovateVenue.flush_props``). An armed
  ``drop_after_order`` takes an order-placing request: the connection is
  reset (no close frame, no answer) before the request is applied, or right
  after (its props still reach the user's other connections).
- **writer** (:mod:`._connection`, shared with AllTick): drains the bounded
  frame queue, discarding frames while a stall holds, and stamps
  ``last_sent_at``. A queue overflow drops the client (slow consumer).
- **server heartbeat**: sends ``h`` once ``tradovate_heartbeat_interval``
  (2.5 s) passed with nothing else sent, so a streaming socket gets no ``h``
  and an idle one gets one every 2.5 s. Nothing is sent during a stall.
- **watchdog**: no client message for ``tradovate_heartbeat_timeout`` (45 s,
  inside the documented 30-60 s) -> dropped without a close frame (counted as
  a ``heartbeat_timeout`` violation); older than the maximum age, or a replay
  socket older than ``replay_drop_after`` -> dropped without a close frame
  too (users report such drops with neither close frame nor event:
  ``docs/venues.md``, Tradovate, "What users report"); with
  ``SimConfig.mute_on_token_expiry``, the token the socket authorized with
  expiring -> the socket goes mute (below).

Closes the server starts on purpose send ``c[code,"reason"]`` and then a
WebSocket close frame with the same code: ``kick`` -> ``c[3000,"Go away!"]``;
``expire_token`` (revocation) -> ``c[3000,"Access token revoked"]``;
``shutdown`` -> a ``shutdown`` event then ``c[3000,reason]``; the per-user
quota -> the OLDEST connection of that user gets a ``shutdown`` event with
``ConnectionQuotaReached``, then ``c[3000,"Connection quota reached"]``, and
its token is revoked. The ``close_frame_keep_open`` fault sends ``c[code,"reason"]``
and no WebSocket close: the session is over (nothing more is sent, requests are
read, logged and ignored, no ``h``, no watchdog), the socket stays open until the
client closes it (as SockJS-style servers may leave it).

A token that merely expires leaves open sockets alone by default. With
``SimConfig.mute_on_token_expiry`` the socket goes **mute** at the trio time
the token it last authorized with expires (``Accounts.expires_at``; renewal
issues a NEW token, so a socket authorized with the old one still mutes when
the old one expires; pre-shared ``SimConfig.tokens`` never expire, so never
mute): it stays open but sends nothing more, ever -- no market data, no
``h``, no replay clock, no answers; requests are still read, logged and
counted, then swallowed; client ``[]`` still counts, so the heartbeat watchdog
and the age limits still apply (they drop without a close frame anyway). A
close the server starts on purpose (``kick``, revocation, ``shutdown``, the
quota) on a mute socket drops it without any frame (a mute socket sends
nothing). This is the "mute authorized socket" a client must notice through
its own staleness clock. Recorded as ``conn.muted_at`` (trio time),
``stats.faults_injected["token_mute"]`` and a ``(time, "token_mute",
"connection #N")`` entry in ``stats.fault_log``, once per socket.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import trio

from .. import _secret
from . import _tradovate_protocol as proto
from ._connection import Frame, VenueConnection
from ._faults import Faults
from ._hub import Hub
from ._tradovate_accounts import User
from ._tradovate_market import TradovateMarket
from ._tradovate_replay import CLOCK_INTERVAL, ReplayClock
from ._tradovate_requests import Dispatcher
from ._tradovate_state import PLACING, TradovateVenue
from ._tradovate_subscriptions import MdSubscriptions
from ._wsio import ServerWebSocket

GO_AWAY = 3000


class TradovateConnection(VenueConnection):
    """Live state of one Tradovate socket (``sim.connections`` holds these).

    Public attributes: ``id``, ``path``, ``is_replay``, ``opened_at``,
    ``user`` (``User`` once authorized), ``authorized_at``, ``token_masked``,
    ``subs`` (quotes/doms/histograms/charts), ``quote_symbols``/``quote_ids``,
    ``dom_symbols``/``dom_ids``, ``requests`` (last 1000 as ``(time,
    endpoint, id, query, body)``), ``heartbeats`` (client ``[]``),
    ``violations``, ``replay`` (the clock, once initialized),
    ``last_activity_at``, ``last_sent_at``, ``token_expires_at`` (trio time the
    token it authorized with expires; None for a pre-shared token or before
    authorize), ``muted_at`` (see the module docstring) and ``closed_reason``.
    """

    def __init__(
        self,
        hub: Hub,
        faults: Faults,
        venue: TradovateVenue,
        market: TradovateMarket,
        ws: ServerWebSocket,
        path: str,
        is_replay: bool,
    ) -> None:
        super().__init__(hub, faults, ws, path)
        self._venue, self.is_replay = venue, is_replay
        self.user: User | None = None
        self.props_user: int | None = None
        self.authorized_at: float | None = None
        self.token_expires_at: float | None = None
        self.subs = MdSubscriptions(faults, hub.subscriptions_changed)
        self.wants_quote, self.wants_dom = self.subs.wants_quote, self.subs.wants_dom
        self.streamed = self.subs.streamed
        self.dispatcher = Dispatcher(venue, faults, market, self)
        self.replay: ReplayClock | None = None
        self.requests: deque[tuple[float, str, int | None, str, str]] = deque(maxlen=1000)
        self.heartbeats = 0
        self.last_activity_at = self.last_sent_at = self.opened_at
        self._replay_scope: trio.CancelScope | None = None

    def __repr__(self) -> str:
        who, quotes = self.user.name if self.user else "-", list(self.quote_symbols)
        return f"<TradovateConnection #{self.id} {self.path} user={who} quotes={quotes}>"

    @property
    def quote_symbols(self) -> tuple[str, ...]:
        return tuple(self.subs.quotes.values())

    @property
    def quote_ids(self) -> tuple[int, ...]:
        return tuple(self.subs.quotes)

    @property
    def dom_symbols(self) -> tuple[str, ...]:
        return tuple(self.subs.doms.values())

    @property
    def dom_ids(self) -> tuple[int, ...]:
        return tuple(self.subs.doms)

    @property
    def violations(self) -> Counter[str]:
        return self.dispatcher.violations

    def market_wall(self, now: float) -> float:
        """Wall-clock seconds to stamp market data with (replay time on a replay clock)."""
        return self.replay.wall_at(now) if self.replay is not None else self._hub.wall_time()

    # ---- SimConnection (the rest is in VenueConnection) ------------------------

    def uses_token(self, token: str) -> bool:
        return bool(token) and self._token.reveal() == token

    def subscribed(self) -> frozenset[str]:
        return self.subs.subscribed()

    def subscribed_by_kind(self) -> dict[str, frozenset[str]]:
        return self.subs.by_kind()

    def kick(self) -> None:
        self._close_after([], GO_AWAY, "Go away!", "kick")

    def expire_token(self) -> None:
        self._close_after([], GO_AWAY, "Access token revoked", "token_expired")

    def shutdown(self, reason_code: str, reason: str) -> None:
        event = proto.array_frame([proto.shutdown_event(reason_code, reason)])
        self._close_after([event], GO_AWAY, reason, "shutdown")

    def close_frame_keep_open(self, code: int, reason: str) -> None:
        self._end_session_keep_open([proto.close_frame(code, reason)], "close_frame_keep_open")

    def send_malformed(self, n: int) -> None:
        cid = next(iter(self.subs.quotes), 123456)
        self._queue_malformed(
            n, proto.MALFORMED_KINDS, lambda kind: proto.malformed_frame(kind, cid)
        )

    # ---- what the dispatcher asks (Session) ------------------------------------

    def authorized(self, user: User, token: str) -> None:
        self.user, self._token = user, _secret.Secret(token)
        self.authorized_at = trio.current_time()
        self.token_expires_at = self._venue.accounts.expires_at(token)
        self.limits_changed()
        peers = [
            c
            for c in self._hub.connections.values()
            if isinstance(c, TradovateConnection)
            and c is not self
            and not c._closing
            and c.user is not None
            and c.user.id == user.id
        ]
        peers.sort(key=lambda c: (c.authorized_at or 0.0, c.id))
        excess = len(peers) + 1 - self._hub.config.max_connections_per_user
        for oldest in peers[: max(0, excess)]:
            oldest.quota_close()

    def quota_close(self) -> None:
        """Closed for the per-user connection quota; its token is revoked."""
        self._venue.accounts.revoke(self._token.reveal())
        event = proto.shutdown_event("ConnectionQuotaReached", "Connection quota reached")
        frame = proto.array_frame([event])
        self._close_after([frame], GO_AWAY, "Connection quota reached", "connection_quota")

    def push_props(self, frame: bytes) -> None:
        self._send_text([frame])

    def start_replay(self, clock: ReplayClock) -> None:
        self.replay = clock
        if self._replay_scope is not None:
            self._replay_scope.cancel()
        if self._nursery is not None:
            self._replay_scope = trio.CancelScope()
            self._nursery.start_soon(self._clock_events, self._replay_scope)

    # ---- VenueConnection hooks ------------------------------------------------

    def _opened(self) -> None:
        self._send_text([proto.OPEN])

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._server_heartbeats)

    def _close_frames(self, code: int, reason: str) -> list[bytes]:
        return [proto.close_frame(code, reason)]

    def _sent(self, frames: list[Frame]) -> None:
        self.last_sent_at = trio.current_time()
        stats = self._hub.stats
        for frame in frames:
            if frame.symbol is None and frame.payload == proto.HEARTBEAT:
                stats.server_heartbeats += 1

    async def _server_heartbeats(self) -> None:
        interval = self._hub.config.tradovate_heartbeat_interval
        while not self._closing and self.muted_at is None:
            await trio.sleep_until(self.last_sent_at + interval)
            if self._faults.stalled():
                await self._faults.wait_unstalled()
                continue
            now = trio.current_time()
            if now >= self.last_sent_at + interval:
                self.last_sent_at = now
                self._send_text([proto.HEARTBEAT])

    async def _send_built_later(
        self, delay: float, build: Callable[[], tuple[dict[str, Any], ...]]
    ) -> None:
        """Build events ``delay`` seconds from now and send them (``Result.later``)."""
        await trio.sleep(delay)
        if self._closing or self.muted_at is not None:
            return
        events = build()
        if events:
            self._send_text([proto.array_frame([event]) for event in events])

    async def _clock_events(self, scope: trio.CancelScope) -> None:
        with scope:
            while self.replay is not None:
                event = self.replay.event(trio.current_time())
                self._send_text([proto.array_frame([event])])
                await trio.sleep(CLOCK_INTERVAL)

    def _check_limits(self, now: float) -> float | None:
        config = self._hub.config
        deadlines: list[tuple[float, str]] = []
        silence = config.tradovate_heartbeat_timeout
        if silence is not None:
            deadlines.append((self.last_activity_at + silence, "heartbeat_timeout"))
        if self._hub.max_age is not None:
            deadlines.append((self.opened_at + self._hub.max_age, "max_age"))
        if self.is_replay and config.replay_drop_after is not None:
            deadlines.append((self.opened_at + config.replay_drop_after, "replay_drop"))
        expiry = self.token_expires_at
        if config.mute_on_token_expiry and expiry is not None and self.muted_at is None:
            deadlines.append((expiry, "token_mute"))
        due, why = min(deadlines, default=(math.inf, ""))
        if now >= due:
            if why == "token_mute":
                self._token_mute(now)
                return self._check_limits(now)
            if why == "heartbeat_timeout":
                self.violations[why] += 1
                self._hub.stats.violations[why] += 1
            self.abort(why)
            return None
        return due

    def _token_mute(self, now: float) -> None:
        self._mute(now)
        if self._replay_scope is not None:
            self._replay_scope.cancel()
        stats = self._hub.stats
        stats.faults_injected["token_mute"] += 1
        stats.fault_log.append((now, "token_mute", f"connection #{self.id}"))

    # ---- requests --------------------------------------------------------------

    def _on_message(self, message: str | bytes, now: float) -> None:
        stats = self._hub.stats
        self.last_activity_at = now
        if proto.is_client_heartbeat(message):
            self.heartbeats += 1
            stats.heartbeats += 1
            return
        req = proto.parse_request(message)
        self.requests.append((now, req.endpoint, req.id, req.query, req.body[:200]))
        stats.requests_by_endpoint[req.key or "?"] += 1
        if req.key in PLACING:
            order = req.params.get("clOrdId")
            stats.orders_received[order if isinstance(order, str) else "?"] += 1
        if self._closing or self.muted_at is not None:
            return
        if self._faults.stalled() or self._faults.take_drop_request():
            return
        if req.key in PLACING and self.user is not None:
            accepted = self._faults.take_drop_after_order()
            if accepted is not None:
                self.abort("drop_after_order")
                if accepted:
                    self.dispatcher.handle(req)
                    self._venue.flush_props()
                return
        result = self.dispatcher.handle(req)
        if result.later is not None and self._nursery is not None:
            delay = self._hub.config.tradovate_history_delay
            self._nursery.start_soon(self._send_built_later, delay, result.later)
        frames = [proto.array_frame([event]) for event in result.events]
        if result.answer is not None:
            fault = self._faults.take_answer_fault()
            answer = proto.array_frame([result.answer])
            if fault is None:
                frames.insert(0, answer)
            elif fault != "lose" and self._nursery is not None:
                self._nursery.start_soon(self._send_later, float(fault), [answer, *frames])
                self._venue.flush_props()
                return
        self._send_text(frames)
        self._venue.flush_props()
