"""One live Tradovate WebSocket: frames, the write queue, heartbeats, the watchdog.

Theory of operation
-------------------
A :class:`TradovateConnection` (created by ``_tradovate_server`` once the
upgrade is through) first queues the ``o`` frame, then runs four tasks:

- **reader**: every inbound message refreshes the client-activity clock
  (``[]`` heartbeats and requests alike, even during a stall). ``[]`` is
  counted and never answered. Requests are logged, then: closing ->
  ignored; stalled -> discarded; ``drop_requests`` -> discarded; otherwise
  the :class:`._tradovate_requests.Dispatcher` decides. Its answer goes out
  as ``a[answer]`` subject to ``lose_acks`` / ``delay_acks`` (a lost answer's
  follow-up events still go out; a delayed one's go out after it).
- **writer**: the only task that writes; drains a bounded queue into one
  ``send_all`` per batch, discarding frames while a stall holds, and stamps
  ``last_sent_at``. A queue overflow drops the client (slow consumer).
- **server heartbeat**: sends ``h`` once ``tradovate_heartbeat_interval``
  (2.5 s) passed with nothing else sent, so a streaming socket gets no ``h``
  and an idle one gets one every 2.5 s. Nothing is sent during a stall.
- **watchdog**: no client message for ``tradovate_heartbeat_timeout`` (45 s,
  inside the documented 30-60 s) -> dropped without a close frame (counted as
  a ``heartbeat_timeout`` violation); older than the maximum age, or a replay
  socket older than ``replay_drop_after`` -> dropped without a close frame
  too (the seed reports such drops with neither close frame nor event).

Closes the server starts on purpose send ``c[code,"reason"]`` and then a
WebSocket close frame with the same code: ``kick`` -> ``c[3000,"Go away!"]``;
``expire_token`` (revocation) -> ``c[3000,"Access token revoked"]``;
``shutdown`` -> a ``shutdown`` event then ``c[3000,reason]``; the per-user
quota -> the OLDEST connection of that user gets a ``shutdown`` event with
``ConnectionQuotaReached``, then ``c[3000,"Connection quota reached"]``, and
its token is revoked. A token that merely expires leaves open sockets alone.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from typing import Any, NamedTuple

import trio

from .. import _secret
from . import _tradovate_protocol as proto
from ._faults import Faults
from ._hub import Hub
from ._tradovate_accounts import User
from ._tradovate_market import TradovateMarket
from ._tradovate_replay import CLOCK_INTERVAL, ReplayClock
from ._tradovate_requests import Dispatcher
from ._tradovate_state import TradovateVenue
from ._tradovate_subscriptions import MdSubscriptions
from ._wsio import OP_BINARY, OP_TEXT, ServerWebSocket

CLOSE_TIMEOUT = 5.0
GO_AWAY = 3000
_BATCH = 256


class _Frame(NamedTuple):
    opcode: int
    payload: bytes
    symbol: str | None


class _Close(NamedTuple):
    code: int
    reason: str


class TradovateConnection:
    """Live state of one Tradovate socket (``sim.connections`` holds these).

    Public attributes: ``id``, ``path``, ``is_replay``, ``opened_at``,
    ``user`` (``User`` once authorized), ``authorized_at``, ``token_masked``,
    ``subs`` (quotes/doms/histograms/charts), ``quote_symbols``/``quote_ids``,
    ``dom_symbols``/``dom_ids``, ``requests`` (last 1000 as ``(time,
    endpoint, id, query, body)``), ``heartbeats`` (client ``[]``),
    ``violations``, ``replay`` (the clock, once initialized),
    ``last_activity_at``, ``last_sent_at`` and ``closed_reason``.
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
        self._hub, self._faults, self._venue, self._ws = hub, faults, venue, ws
        self.id = hub.new_connection_id()
        self.path, self.is_replay = path, is_replay
        self.opened_at = trio.current_time()
        self.user: User | None = None
        self.authorized_at: float | None = None
        self._token = _secret.Secret("")
        self.subs = MdSubscriptions(faults, hub.subscriptions_changed)
        self.wants_quote, self.wants_dom = self.subs.wants_quote, self.subs.wants_dom
        self.streamed = self.subs.streamed
        self.dispatcher = Dispatcher(venue, faults, market, self)
        self.replay: ReplayClock | None = None
        self.requests: deque[tuple[float, str, int | None, str, str]] = deque(maxlen=1000)
        self.heartbeats = 0
        self.last_activity_at = self.last_sent_at = self.opened_at
        self.closed_reason: str | None = None
        self._send, self._recv = trio.open_memory_channel[_Frame | _Close](hub.config.send_queue)
        self._closing = self._aborted = False
        self._nursery: trio.Nursery | None = None
        self._replay_scope: trio.CancelScope | None = None
        self._limits = trio.Event()
        self._malformed_count = 0

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

    # ---- SimConnection ---------------------------------------------------------

    @property
    def token_masked(self) -> str:
        return str(self._token) if self._token else ""

    def uses_token(self, token: str) -> bool:
        return bool(token) and self._token.reveal() == token

    def subscribed(self) -> frozenset[str]:
        return self.subs.subscribed()

    def abort(self, reason: str) -> None:
        if self._aborted:
            return
        self._aborted = self._closing = True
        self._end(reason)
        self._ws.abort()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def kick(self) -> None:
        self._close_with([], GO_AWAY, "Go away!", "kick")

    def expire_token(self) -> None:
        self._close_with([], GO_AWAY, "Access token revoked", "token_expired")

    def shutdown(self, reason_code: str, reason: str) -> None:
        event = proto.array_frame([proto.shutdown_event(reason_code, reason)])
        self._close_with([event], GO_AWAY, reason, "shutdown")

    def send_malformed(self, n: int) -> None:
        cid = next(iter(self.subs.quotes), 123456)
        for _ in range(n):
            kind = proto.MALFORMED_KINDS[self._malformed_count % len(proto.MALFORMED_KINDS)]
            self._malformed_count += 1
            frame = proto.malformed_frame(kind, cid)
            if isinstance(frame, bytes):
                self._enqueue(_Frame(OP_BINARY, frame, None))
            else:
                self._enqueue(_Frame(OP_TEXT, frame.encode(), None))

    def limits_changed(self) -> None:
        self._limits.set()

    # ---- what the dispatcher asks (Session) ------------------------------------

    def authorized(self, user: User, token: str) -> None:
        self.user, self._token = user, _secret.Secret(token)
        self.authorized_at = trio.current_time()
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
        self._close_with([frame], GO_AWAY, "Connection quota reached", "connection_quota")

    def start_replay(self, clock: ReplayClock) -> None:
        self.replay = clock
        if self._replay_scope is not None:
            self._replay_scope.cancel()
        if self._nursery is not None:
            self._replay_scope = trio.CancelScope()
            self._nursery.start_soon(self._clock_events, self._replay_scope)

    # ---- what the streamer asks ------------------------------------------------

    def deliver(self, payload: bytes, symbol: str) -> None:
        """Queue a market-data frame; a full queue drops this client as a slow consumer."""
        self._enqueue(_Frame(OP_TEXT, payload, symbol))

    # ---- lifetime --------------------------------------------------------------

    async def run(self) -> None:
        hub = self._hub
        hub.connections[self.id] = self
        hub.stats.connections_live += 1
        self._enqueue(_Frame(OP_TEXT, proto.OPEN, None))
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._guarded, self._reader, nursery)
                nursery.start_soon(self._guarded, self._writer, nursery)
                nursery.start_soon(self._server_heartbeats)
                nursery.start_soon(self._watchdog)
                if self._aborted:
                    nursery.cancel_scope.cancel()
        finally:
            del hub.connections[self.id]
            hub.stats.connections_live -= 1
            self._send.close()
            self._recv.close()
            hub.subscriptions_changed()
            if not self._aborted:
                await self._ws.aclose()

    @staticmethod
    async def _guarded(task: Any, nursery: trio.Nursery) -> None:
        try:
            await task()
        finally:
            nursery.cancel_scope.cancel()

    def _end(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._hub.stats.closes[reason] += 1

    def _enqueue(self, item: _Frame | _Close) -> None:
        if self._closing:
            return
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.abort("slow_consumer")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _close_with(self, frames: list[bytes], code: int, reason: str, why: str) -> None:
        for frame in [*frames, proto.close_frame(code, reason)]:
            self._enqueue(_Frame(OP_TEXT, frame, None))
        self._enqueue(_Close(code, reason))
        if not self._aborted:
            self._closing = True
            self._end(why)

    async def _writer(self) -> None:
        recv, ws, stats, faults = self._recv, self._ws, self._hub.stats, self._faults
        while True:
            try:
                batch = [await recv.receive()]
                while len(batch) < _BATCH:
                    batch.append(recv.receive_nowait())
            except trio.WouldBlock:
                pass
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            frames = [item for item in batch if isinstance(item, _Frame)]
            close = next((item for item in batch if isinstance(item, _Close)), None)
            if close is not None:
                frames = frames[: batch.index(close)]
            if frames and not faults.stalled():
                sent = await ws.send_frames((f.opcode, f.payload) for f in frames)
                if not sent and ws.gone:
                    return
                self.last_sent_at = trio.current_time()
                stats.frames_sent += sent
                for frame in frames:
                    if frame.symbol is not None:
                        stats.ticks_sent_by_symbol[frame.symbol] += 1
                    elif frame.payload == proto.HEARTBEAT:
                        stats.server_heartbeats += 1
            if close is not None:
                await ws.send_close(close.code, close.reason)
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await ws.closed.wait()
                return

    async def _server_heartbeats(self) -> None:
        interval = self._hub.config.tradovate_heartbeat_interval
        while not self._closing:
            await trio.sleep_until(self.last_sent_at + interval)
            if self._faults.stalled():
                await self._faults.wait_unstalled()
                continue
            now = trio.current_time()
            if now >= self.last_sent_at + interval:
                self.last_sent_at = now
                self._enqueue(_Frame(OP_TEXT, proto.HEARTBEAT, None))

    async def _clock_events(self, scope: trio.CancelScope) -> None:
        with scope:
            while self.replay is not None:
                event = self.replay.event(trio.current_time())
                self._enqueue(_Frame(OP_TEXT, proto.array_frame([event]), None))
                await trio.sleep(CLOCK_INTERVAL)

    async def _watchdog(self) -> None:
        config = self._hub.config
        while not self._closing:
            now = trio.current_time()
            deadlines: list[tuple[float, str]] = []
            silence = config.tradovate_heartbeat_timeout
            if silence is not None:
                deadlines.append((self.last_activity_at + silence, "heartbeat_timeout"))
            if self._hub.max_age is not None:
                deadlines.append((self.opened_at + self._hub.max_age, "max_age"))
            if self.is_replay and config.replay_drop_after is not None:
                deadlines.append((self.opened_at + config.replay_drop_after, "replay_drop"))
            due, why = min(deadlines, default=(math.inf, ""))
            if now >= due:
                if why == "heartbeat_timeout":
                    self.violations[why] += 1
                    self._hub.stats.violations[why] += 1
                self.abort(why)
                return
            with trio.move_on_at(due):
                await self._limits.wait()
            if self._limits.is_set():
                self._limits = trio.Event()

    # ---- requests --------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            message = await self._ws.receive_message()
            if message is None:
                self._end("client_closed")
                return
            self._on_message(message, trio.current_time())

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
        if self._closing or self._faults.stalled() or self._faults.take_drop_request():
            return
        result = self.dispatcher.handle(req)
        frames = [proto.array_frame([event]) for event in result.events]
        if result.answer is not None:
            fault = self._faults.take_answer_fault()
            answer = proto.array_frame([result.answer])
            if fault is None:
                frames.insert(0, answer)
            elif fault != "lose" and self._nursery is not None:
                self._nursery.start_soon(self._send_later, float(fault), [answer, *frames])
                return
        for frame in frames:
            self._enqueue(_Frame(OP_TEXT, frame, None))

    async def _send_later(self, delay: float, frames: list[bytes]) -> None:
        await trio.sleep(delay)
        for frame in frames:
            self._enqueue(_Frame(OP_TEXT, frame, None))
