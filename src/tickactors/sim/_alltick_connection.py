"""One live AllTick connection: requests, rules, the write queue, the watchdog.

Theory of operation
-------------------
An :class:`AllTickConnection` (created by :mod:`._alltick_server` once the
handshake and token are through) runs three tasks:

- **reader**: every message is one request (:mod:`._alltick_protocol`). In
  order: stalled -> discarded (a heartbeat still refreshes the heartbeat
  clock); ``drop_requests`` -> discarded; the rate rule (a request less than
  ``rate_interval`` after the previous *counted* one gets 605 and changes
  nothing; rate-rejected requests do not move that clock; the violation that
  reaches ``kick_after_violations`` gets 606 instead, then close frame 1008);
  then validation and application; then the answer, subject to
  ``lose_acks``/``delay_acks``. Heartbeats are requests like any other.
- **writer**: the only task that writes. It drains a bounded queue of frames
  into one ``send_all`` per batch, discarding frames while a stall holds. A
  queue that overflows drops the client as a slow consumer (TCP abort).
- **watchdog**: no accepted 22000 for ``heartbeat_timeout`` seconds (counted
  from the handshake) -> TCP abort, no close frame (the sim's pick for the
  UNSURE close code: none at all, as the seeds report); older than the
  maximum age -> close frame 1000 "max age" (the sim's pick).

Accepted subscribe/cancel requests go to a :class:`._alltick_subscriptions.
StreamedSets` (replace semantics and ghosts live there); the streamer's
questions (``wants_trade``, ``depth_level``, ``streamed``) are its methods.
Kicks (the fault and the rate rule) and token expiry send their 606 / 401
frame (``cmd_id`` 0 for the fault and expiry), then close frame 1008.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Any, NamedTuple

import trio

from .. import _secret
from . import _alltick_protocol as proto
from ._alltick_subscriptions import StreamedSets
from ._faults import Faults
from ._hub import Hub
from ._wsio import OP_BINARY, OP_TEXT, ServerWebSocket

CLOSE_TIMEOUT = 5.0
_BATCH = 256


class _Frame(NamedTuple):
    opcode: int
    payload: bytes
    symbol: str | None


class _Close(NamedTuple):
    code: int
    reason: str


class AllTickConnection:
    """Live state of one client connection (``sim.connections`` holds these).

    Public attributes: ``id``, ``opened_at`` (trio time), ``path``,
    ``token_masked``, ``trade_symbols``, ``depth_symbols`` (in the client's
    order), ``depth_levels``, ``requests`` (the last 1000 as ``(time, cmd_id,
    data)``; ``cmd_id`` -1 for unreadable ones), ``last_heartbeat_at``,
    ``rate_violations``, ``trade_ghosts``/``depth_ghosts`` (code -> until) and
    ``closed_reason`` once the server ended it.
    """

    def __init__(
        self, hub: Hub, faults: Faults, ws: ServerWebSocket, token: str, path: str
    ) -> None:
        self._hub, self._faults, self._ws = hub, faults, ws
        self._token = _secret.Secret(token)
        self.id = hub.new_connection_id()
        self.path = path
        self.opened_at = trio.current_time()
        self.subs = StreamedSets(faults, hub.subscriptions_changed)
        # The streamer's per-tick questions, bound once (no delegation hop).
        self.wants_trade = self.subs.wants_trade
        self.depth_level = self.subs.depth_level
        self.streamed = self.subs.streamed
        self.requests: deque[tuple[float, int, Any]] = deque(maxlen=1000)
        self.last_heartbeat_at = self.opened_at
        self.last_request_at: float | None = None
        self.rate_violations = 0
        self.closed_reason: str | None = None
        self._send, self._recv = trio.open_memory_channel[_Frame | _Close](hub.config.send_queue)
        self._closing = False
        self._aborted = False
        self._nursery: trio.Nursery | None = None
        self._limits = trio.Event()
        self._malformed_count = 0

    def __repr__(self) -> str:
        return (
            f"<AllTickConnection #{self.id} trades={list(self.trade_symbols)} "
            f"depth={list(self.depth_symbols)}>"
        )

    # ---- SimConnection ---------------------------------------------------------

    @property
    def token_masked(self) -> str:
        return str(self._token) if self._token else ""

    def uses_token(self, token: str) -> bool:
        return self._token.reveal() == token

    def subscribed(self) -> frozenset[str]:
        return self.subs.subscribed()

    def abort(self, reason: str) -> None:
        if self._aborted:
            return
        self._aborted, self._closing = True, True
        self._end(reason)
        self._ws.abort()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def kick(self) -> None:
        self._close_after([proto.encode_answer(*proto.KICKED, 0)], 1008, "kicked", "kick")

    def expire_token(self) -> None:
        frame = proto.encode_answer(*proto.TOKEN_INVALID, 0)
        self._close_after([frame], 1008, "token invalid", "token_expired")

    def send_malformed(self, n: int) -> None:
        code = (self.trade_symbols or self.depth_symbols or ("BTCUSDT",))[0]
        for _ in range(n):
            kind = proto.MALFORMED_KINDS[self._malformed_count % len(proto.MALFORMED_KINDS)]
            self._malformed_count += 1
            frame = proto.malformed_frame(kind, code)
            if isinstance(frame, bytes):
                self._enqueue(_Frame(OP_BINARY, frame, None))
            else:
                self._enqueue(_Frame(OP_TEXT, frame.encode(), None))

    def limits_changed(self) -> None:
        self._limits.set()

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

    # ---- what the streamer asks ------------------------------------------------

    def deliver(self, payload: bytes, code: str) -> None:
        """Queue a push; a full queue drops this client as a slow consumer."""
        self._enqueue(_Frame(OP_TEXT, payload, code))

    async def deliver_wait(self, payload: bytes, code: str) -> None:
        """Queue a push, waiting only when the queue is full (firehose mode)."""
        if self._closing:
            return
        item = _Frame(OP_TEXT, payload, code)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            try:
                self._send.send_nowait(item)
            except trio.WouldBlock:
                await self._send.send(item)

    # ---- lifetime --------------------------------------------------------------

    async def run(self) -> None:
        hub = self._hub
        hub.connections[self.id] = self
        hub.stats.connections_live += 1
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._guarded, self._reader, nursery)
                nursery.start_soon(self._guarded, self._writer, nursery)
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

    def _close_after(self, frames: list[bytes], code: int, reason: str, why: str) -> None:
        for frame in frames:
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
                stats.frames_sent += sent
                for frame in frames:
                    if frame.symbol is not None:
                        stats.ticks_sent_by_symbol[frame.symbol] += 1
            if close is not None:
                await ws.send_close(close.code, close.reason)
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await ws.closed.wait()
                return

    async def _watchdog(self) -> None:
        config = self._hub.config
        while not self._closing:
            now = trio.current_time()
            deadline = math.inf
            if config.heartbeat_timeout is not None:
                hb_deadline = self.last_heartbeat_at + config.heartbeat_timeout
                if now >= hb_deadline:
                    self.abort("heartbeat_timeout")
                    return
                deadline = hb_deadline
            if self._hub.max_age is not None:
                age_deadline = self.opened_at + self._hub.max_age
                if now >= age_deadline:
                    self._close_after([], 1000, "max age", "max_age")
                    return
                deadline = min(deadline, age_deadline)
            with trio.move_on_at(deadline):
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
        last = self.last_request_at
        if config.enforce_rate and last is not None and now - last < config.rate_interval:
            stats.violations["rate"] += 1
            self.rate_violations += 1
            if self.rate_violations >= config.kick_after_violations:
                answer = proto.encode_answer(*proto.KICKED, req.answer_id, req.seq_id, req.trace)
                self._close_after([answer], 1008, "too many requests", "rate_kick")
            else:
                self._enqueue(
                    _Frame(
                        OP_TEXT,
                        proto.encode_answer(*proto.TOO_MANY, req.answer_id, req.seq_id, req.trace),
                        None,
                    )
                )
            return
        self.last_request_at = now
        if req.error is not None:
            ret, msg, kind = req.error
            stats.violations[kind] += 1
        else:
            ret, msg = self._apply(req, now)
        answer = proto.encode_answer(ret, msg, req.answer_id, req.seq_id, req.trace)
        fault = faults.take_answer_fault()
        if fault is None:
            self._enqueue(_Frame(OP_TEXT, answer, None))
        elif fault != "lose" and self._nursery is not None:
            self._nursery.start_soon(self._answer_later, float(fault), answer)

    async def _answer_later(self, delay: float, answer: bytes) -> None:
        await trio.sleep(delay)
        self._enqueue(_Frame(OP_TEXT, answer, None))

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
        return proto.OK

    def _reject(self, rejection: proto.Rejection) -> tuple[int, str]:
        if rejection.violation is not None:
            self._hub.stats.violations[rejection.violation] += 1
        return rejection.ret, rejection.msg
