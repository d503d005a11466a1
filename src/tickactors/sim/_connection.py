"""What every simulated venue connection shares: lifetime, write queue, writer, watchdog loop.

Theory of operation
-------------------
A venue connection (:class:`._alltick_connection.AllTickConnection`,
:class:`._tradovate_connection.TradovateConnection`) subclasses
:class:`VenueConnection`. :meth:`VenueConnection.run` registers it in the
hub, calls :meth:`~VenueConnection._opened` (frames a venue sends first),
then runs in one nursery:

- **reader**: hands every inbound message to the venue's ``_on_message``;
  the client's close ends the connection (``client_closed``).
- **writer**: the only task that writes. It drains a bounded queue of
  :class:`Frame` / :class:`Close` items into one ``send_all`` per batch,
  discarding frames while a stall holds; a :class:`Close` sends the close
  frame and waits up to :data:`CLOSE_TIMEOUT` for the client's. The venue
  hears of every sent batch through ``_sent``.
- whatever ``_start_tasks`` adds (the venue's extra tasks);
- **watchdog**: asks the venue's ``_check_limits`` (which acts on a limit
  that fell due) for the next deadline and sleeps until then, or until
  :meth:`~VenueConnection.limits_changed`.

The venue class supplies the rest of :class:`._hub.SimConnection` (the
methods here that raise ``NotImplementedError``). Reader and writer are
guarded: either ending cancels the whole nursery. A queue that overflows
drops the client as a slow consumer (TCP abort, no close frame). Closes
started on purpose (:meth:`~VenueConnection._close_after`) queue the venue's
last frames, its ``_close_frames`` and the close; after that nothing more is
queued. On the way out the connection leaves the hub, both channel ends
close and the socket is closed politely unless aborted.

A venue may :meth:`~VenueConnection._mute` a connection (Tradovate: its token
expired, see ``SimConfig.mute_on_token_expiry``): from then on nothing is
queued or written (frames already queued are discarded), the reader still
reads, and a close the server starts on purpose becomes an abort (a mute
socket sends no close frame either).

A venue may also end the *session* and leave the socket open
(:meth:`~VenueConnection._end_session_keep_open`, Tradovate's ``c[...]`` without a
WebSocket close): its last frames are queued, then the connection counts as
closing (nothing more is queued, requests are ignored, the watchdog stops), and
the socket stays open until the client closes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import trio

from .. import _secret
from ._faults import Faults
from ._hub import Hub
from ._wsio import OP_BINARY, OP_TEXT, ServerWebSocket

CLOSE_TIMEOUT = 5.0
_BATCH = 256


class Frame(NamedTuple):
    opcode: int
    payload: bytes
    symbol: str | None
    trade_seq: int | None = None  # the ``seq`` of a trade push (AllTick's ledger)


class Close(NamedTuple):
    code: int
    reason: str


class VenueConnection:
    """The venue-independent half of one live simulated connection.

    Public attributes: ``id``, ``path``, ``opened_at`` (trio time),
    ``token_masked``, ``muted_at`` (trio time the connection went mute, or
    None) and ``closed_reason`` once the server ended it.
    """

    def __init__(self, hub: Hub, faults: Faults, ws: ServerWebSocket, path: str) -> None:
        self._hub, self._faults, self._ws = hub, faults, ws
        self.id = hub.new_connection_id()
        self.path = path
        self.opened_at = trio.current_time()
        self._token = _secret.Secret("")
        self.closed_reason: str | None = None
        self.muted_at: float | None = None
        self._send, self._recv = trio.open_memory_channel[Frame | Close](hub.config.send_queue)
        self._closing = self._aborted = False
        self._nursery: trio.Nursery | None = None
        self._limits = trio.Event()
        self._malformed_count = 0

    # ---- SimConnection ---------------------------------------------------------

    @property
    def token_masked(self) -> str:
        return str(self._token) if self._token else ""

    def uses_token(self, token: str) -> bool:
        raise NotImplementedError

    def subscribed(self) -> frozenset[str]:
        raise NotImplementedError

    def subscribed_by_kind(self) -> dict[str, frozenset[str]]:
        raise NotImplementedError

    def kick(self) -> None:
        raise NotImplementedError

    def expire_token(self) -> None:
        raise NotImplementedError

    def send_malformed(self, n: int) -> None:
        raise NotImplementedError

    def abort(self, reason: str) -> None:
        if self._aborted:
            return
        self._aborted = self._closing = True
        self._end(reason)
        self._ws.abort()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def limits_changed(self) -> None:
        self._limits.set()

    def send_raw(self, frames: Sequence[str | bytes]) -> None:
        """Queue ``frames`` exactly as given: ``str`` as text frames, ``bytes`` as binary.

        A hook for tests that bring their own hostile frames; like every frame, these
        are dropped while the connection closes, is mute or stalls.
        """
        for frame in frames:
            if isinstance(frame, bytes):
                self._enqueue(Frame(OP_BINARY, frame, None))
            else:
                self._enqueue(Frame(OP_TEXT, frame.encode(), None))

    def _queue_malformed(
        self, n: int, kinds: Sequence[str], make: Callable[[str], str | bytes]
    ) -> None:
        """Queue ``n`` bad frames, cycling through ``kinds`` across calls."""
        for _ in range(n):
            kind = kinds[self._malformed_count % len(kinds)]
            self._malformed_count += 1
            frame = make(kind)
            if isinstance(frame, bytes):
                self._enqueue(Frame(OP_BINARY, frame, None))
            else:
                self._enqueue(Frame(OP_TEXT, frame.encode(), None))

    # ---- what the streamer asks ------------------------------------------------

    def deliver(self, payload: bytes, symbol: str, trade_seq: int | None = None) -> None:
        """Queue a push; a full queue drops this client as a slow consumer."""
        self._enqueue(Frame(OP_TEXT, payload, symbol, trade_seq))

    async def deliver_wait(self, payload: bytes, symbol: str, trade_seq: int | None = None) -> None:
        """Queue a push, waiting only when the queue is full (firehose mode)."""
        if self._closing or self.muted_at is not None:
            return
        item = Frame(OP_TEXT, payload, symbol, trade_seq)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            try:
                self._send.send_nowait(item)
            except trio.WouldBlock:
                await self._send.send(item)

    # ---- venue hooks -----------------------------------------------------------

    def _opened(self) -> None:
        """Queue what the venue sends before anything else (nothing by default)."""

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        """Start the venue's extra tasks (none by default)."""

    def _close_frames(self, code: int, reason: str) -> list[bytes]:
        """Text frames that go right before a close frame (none by default)."""
        return []

    def _sent(self, frames: list[Frame]) -> None:
        """The writer just sent ``frames`` (nothing to do by default)."""

    def _on_message(self, message: str | bytes, now: float) -> None:
        """Handle one inbound message."""
        raise NotImplementedError

    def _check_limits(self, now: float) -> float | None:
        """Act on a limit due at ``now`` (then None), else return the next deadline."""
        raise NotImplementedError

    # ---- lifetime --------------------------------------------------------------

    async def run(self) -> None:
        hub = self._hub
        hub.connections[self.id] = self
        hub.stats.connections_live += 1
        self._opened()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._guarded, self._reader, nursery)
                nursery.start_soon(self._guarded, self._writer, nursery)
                self._start_tasks(nursery)
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
    async def _guarded(task: Callable[[], Awaitable[None]], nursery: trio.Nursery) -> None:
        try:
            await task()
        finally:
            nursery.cancel_scope.cancel()

    def _mute(self, now: float) -> None:
        """Send nothing more on this connection (see the module docstring)."""
        if self.muted_at is None:
            self.muted_at = now

    def _end(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._hub.stats.closes[reason] += 1

    def _enqueue(self, item: Frame | Close) -> None:
        if self._closing or self.muted_at is not None:
            return
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.abort("slow_consumer")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _send_text(self, frames: Sequence[bytes]) -> None:
        for frame in frames:
            self._enqueue(Frame(OP_TEXT, frame, None))

    async def _send_later(self, delay: float, frames: list[bytes]) -> None:
        await trio.sleep(delay)
        self._send_text(frames)

    def _close_after(self, frames: list[bytes], code: int, reason: str, why: str) -> None:
        if self.muted_at is not None:
            self.abort(why)
            return
        self._send_text([*frames, *self._close_frames(code, reason)])
        self._enqueue(Close(code, reason))
        if not self._aborted:
            self._closing = True
            self._end(why)

    def _end_session_keep_open(self, frames: list[bytes], why: str) -> None:
        """Queue ``frames``, then send nothing more, and leave the socket open."""
        if self.muted_at is not None:
            return  # a mute socket sends nothing: it was a dead session already
        self._send_text(frames)
        if not self._aborted:
            self._closing = True
            self._end(why)

    async def _reader(self) -> None:
        while True:
            message = await self._ws.receive_message()
            if message is None:
                self._end("client_closed")
                return
            self._on_message(message, trio.current_time())

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
            frames = [item for item in batch if isinstance(item, Frame)]
            close = next((item for item in batch if isinstance(item, Close)), None)
            if close is not None:
                frames = frames[: batch.index(close)]
            if frames and not faults.stalled() and self.muted_at is None:
                sent = await ws.send_frames((f.opcode, f.payload) for f in frames)
                if not sent and ws.gone:
                    return
                stats.frames_sent += sent
                for frame in frames:
                    if frame.symbol is not None:
                        stats.ticks_sent_by_symbol[frame.symbol] += 1
                self._sent(frames)
            if close is not None:
                await ws.send_close(close.code, close.reason)
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await ws.closed.wait()
                return

    async def _watchdog(self) -> None:
        while not self._closing:
            deadline = self._check_limits(trio.current_time())
            if deadline is None:
                return
            with trio.move_on_at(deadline):
                await self._limits.wait()
            if self._limits.is_set():
                self._limits = trio.Event()
