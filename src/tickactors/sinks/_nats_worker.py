"""The NATS publisher: nats-py on an asyncio loop of its own, in a thread of its own.

Theory of operation
-------------------
The project runs on Trio and nats-py on asyncio, so the publisher lives in a worker
thread (started by :func:`~tickactors.sinks.open_nats_sink` with
``trio.to_thread.run_sync``) that runs ``asyncio.run``. The two threads meet only in a
:class:`~tickactors.sinks._thread_handoff.ThreadHandoff`: the Trio side puts whole batches and
never waits; this side takes up to ``batch`` entries at a time.

One batch at a time: the entries are encoded (:class:`NatsEncoder`), each published
with a reply subject of our own (``<inbox>.<batch number>.<index>``), and the
JetStream acknowledgements are collected on one subscription. A batch ends when every
message is answered, the connection closes, or ``ack_timeout`` passes; whatever was
not acknowledged goes back to the front of the hand-off, encoded, and the connection
is dropped and opened again with backoff (``_core.backoff``). A negative answer (the
server refused the message, or no stream captures its subject) is final: the message
is counted as rejected, not retried.

The stream is created on connect if no stream captures our subjects yet: ``stream``
(``TICKACTORS``), subjects ``<subject_prefix>.>`` and ``<health_prefix>.>``, file
storage, ``max_age`` if given. An existing stream is used as it is.

When the hand-off closes, the publisher keeps going until it is empty, for at most
``drain`` seconds; then what is left is dropped and counted (``lost_at_close``).
State changes the Trio side should report go into ``notes`` (a deque: appending and
popping are thread-safe); counters are plain attributes read from the Trio thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import threading
from collections import deque
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from .._core.backoff import Backoff
from .._values import EventName
from ._nats_encode import Entry, NatsEncoder, Outgoing
from ._spec import NatsSpec
from ._thread_handoff import ThreadHandoff

__all__ = ["NatsWorker"]

Note = tuple[EventName, str, dict[str, Any]]


class _AckTimeout(Exception):
    """Not every message of a batch was answered in time, or the connection closed."""


class _Acks:
    """The answers to the current batch, by index, on one subscription."""

    def __init__(self) -> None:
        self.batch = 0
        self.expected = 0
        self.ok: list[int] = []
        self.failed: dict[int, str] = {}
        self.duplicates = 0
        self.done = asyncio.Event()

    def begin(self, expected: int) -> None:
        self.batch += 1
        self.expected = expected
        self.ok = []
        self.failed = {}
        self.duplicates = 0
        self.done.clear()

    async def handle(self, msg: Msg) -> None:
        _, batch, index = msg.subject.rsplit(".", 2)
        if int(batch) != self.batch:
            return  # a late answer to a batch already given up
        data = msg.data
        if data and b'"error"' not in data:
            self.ok.append(int(index))
            if b'"duplicate"' in data:  # a retry of a message stored before all the same
                self.duplicates += 1
        elif not data and msg.headers and msg.headers.get("Status") == "503":
            self.failed[int(index)] = "no stream captures the subject"
        else:
            self.failed[int(index)] = data.decode("utf-8", "replace")[:200] or "refused"
        self._check()

    def fail(self, index: int, reason: str) -> None:
        """A message refused before it left (larger than the server's ``max_payload``)."""
        self.failed[index] = reason
        self._check()

    def _check(self) -> None:
        if len(self.ok) + len(self.failed) >= self.expected:
            self.done.set()


class NatsWorker:
    """Runs in its own thread: :meth:`run` returns after the hand-off closed and drained."""

    def __init__(
        self, spec: NatsSpec, handoff: ThreadHandoff[Entry], *, venue: str, clock_offset: float
    ) -> None:
        self.spec = spec
        self.handoff = handoff
        self.encoder = NatsEncoder(
            venue=venue,
            clock_offset=clock_offset,
            subject_prefix=spec.subject_prefix,
            health_prefix=spec.health_prefix,
            dedup=spec.dedup,
        )
        self._venue = venue
        self.notes: deque[Note] = deque()
        self.state = "connecting"
        self.published: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.batches = 0
        self.connects = 0
        self.connect_failures = 0
        self.retried = 0
        self.deduplicated = 0
        self.lost_at_close = 0
        self._rejecting = False
        self._closed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        threading.current_thread().name = "tickactors-nats"
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        closed = self._closed = asyncio.Event()
        self.handoff.on_close(functools.partial(_call_soon, loop, closed.set))
        serve = asyncio.create_task(self._serve())
        closing = asyncio.create_task(closed.wait())
        await asyncio.wait({serve, closing}, return_when=asyncio.FIRST_COMPLETED)
        if not serve.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(serve, self.spec.drain)
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        self.lost_at_close = self.handoff.discard_all()
        self.state = "closed"

    async def _serve(self) -> None:
        """Connect, publish, reconnect with backoff; return once closed and drained."""
        assert self._loop is not None
        loop = self._loop
        backoff = Backoff(base=0.1, cap=5.0, healthy_after=5.0, random=random.random)
        while not (self.handoff.closed and not len(self.handoff)):
            try:
                nc, lost = await self._connect()
            except Exception as exc:
                self.connect_failures += 1
                self.state = "unreachable"
                delay = backoff.connection_failed(loop.time())
                attempt = backoff.attempts
                if attempt & (attempt - 1) == 0:  # 1st, 2nd, 4th, 8th, ...: a long outage
                    self._note(  # is reported without a flood
                        EventName.SINK_CONNECT_FAILED,
                        f"cannot reach {self.spec.display}",
                        reason=type(exc).__name__,
                        attempt=attempt,
                        retry_in=round(delay, 3),
                    )
                await self._sleep(delay)
                continue
            backoff.connected(loop.time())
            try:
                await self._session(nc, lost, backoff)
                return
            except Exception as exc:
                self.state = "disconnected"
                delay = backoff.connection_failed(loop.time())
                self._note(
                    EventName.SINK_DISCONNECTED,
                    f"lost {self.spec.display}",
                    reason=type(exc).__name__,
                    buffered=len(self.handoff),
                    retry_in=round(delay, 3),
                )
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 1.0)
            await self._sleep(delay)

    async def _connect(self) -> tuple[Client, asyncio.Event]:
        """A connection, and an event set when it closes."""
        spec = self.spec
        lost = asyncio.Event()

        async def on_closed() -> None:
            lost.set()

        async def on_error(exc: Exception) -> None:
            pass  # the failure surfaces where we wait (an ack timeout, a closed connection)

        options: dict[str, Any] = {}
        if spec.user is not None and spec.password is not None:
            options.update(user=spec.user, password=spec.password.reveal())
        if spec.token is not None:
            options.update(token=spec.token.reveal())
        nc = await nats.connect(
            servers=[spec.server_url],
            name="tickactors",
            allow_reconnect=False,  # reconnecting is ours: backoff, put-back, events
            # One more try at once, then give up (at 0 nats-py retries forever).
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=spec.connect_timeout,
            closed_cb=on_closed,
            disconnected_cb=on_closed,
            error_cb=on_error,
            **options,
        )
        return nc, lost

    async def _session(self, nc: Client, lost: asyncio.Event, backoff: Backoff) -> None:
        assert self._loop is not None
        js = nc.jetstream(timeout=self.spec.ack_timeout)
        stream, created = await self._ensure_stream(js)
        acks = _Acks()
        inbox = nc.new_inbox()
        await nc.subscribe(f"{inbox}.*.*", cb=acks.handle)
        self.connects += 1
        self.state = "connected"
        self._note(
            EventName.SINK_CONNECTED,
            f"publishing to {self.spec.display}",
            stream=stream,
            created=created,
            buffered=len(self.handoff),
        )
        while True:
            entries = await self._take()
            if not entries:
                return
            if await self._publish(nc, inbox, acks, lost, entries):
                stream, created = await self._ensure_stream(js)  # deleted meanwhile?
            backoff.data_received(self._loop.time())

    async def _ensure_stream(self, js: JetStreamContext) -> tuple[str, bool]:
        """The stream that captures our subjects, created if there is none."""
        spec = self.spec
        probe = f"{spec.subject_prefix}.{self._venue}.tick.probe"
        try:
            return await js.find_stream_name_by_subject(probe), False
        except NotFoundError:
            pass
        await js.add_stream(
            name=spec.stream,
            subjects=[f"{spec.subject_prefix}.>", f"{spec.health_prefix}.>"],
            max_age=spec.max_age,
        )
        return spec.stream, True

    async def _take(self) -> list[Entry]:
        """Up to ``batch`` entries; waits for some; [] once closed and empty."""
        assert self._loop is not None
        loop = self._loop
        while True:
            entries = self.handoff.take_nowait(self.spec.batch)
            if entries or self.handoff.closed:
                return entries
            ready = asyncio.Event()
            if self.handoff.park(functools.partial(_call_soon, loop, ready.set)):
                await ready.wait()

    async def _publish(
        self, nc: Client, inbox: str, acks: _Acks, lost: asyncio.Event, entries: list[Entry]
    ) -> bool:
        """Publish one batch and collect its answers; True if no stream captured some."""
        encode = self.encoder.encode
        messages: list[Outgoing] = [encode(entry) for entry in entries]
        acks.begin(len(messages))
        prefix = f"{inbox}.{acks.batch}."
        try:
            for index, message in enumerate(messages):
                try:
                    await nc.publish(
                        message.subject,
                        message.payload,
                        reply=f"{prefix}{index}",
                        headers=message.headers,
                    )
                except MaxPayloadError:  # never sendable: refused for good, not retried
                    acks.fail(index, "larger than the server's max_payload")
            if not await _first(acks.done, lost, self.spec.ack_timeout):
                raise _AckTimeout(f"{len(acks.ok) + len(acks.failed)} of {len(messages)} answered")
        finally:
            self._account(messages, acks)
        return any(reason.startswith("no stream") for reason in acks.failed.values())

    def _account(self, messages: list[Outgoing], acks: _Acks) -> None:
        self.batches += 1
        self.deduplicated += acks.duplicates
        published = self.published
        for index in acks.ok:
            kind = messages[index].kind
            published[kind] = published.get(kind, 0) + 1
        for index in acks.failed:
            kind = messages[index].kind
            self.rejected[kind] = self.rejected.get(kind, 0) + 1
        if acks.failed and not self._rejecting:
            self._note(
                EventName.SINK_REJECTED,
                "the server refused messages: " + next(iter(acks.failed.values())),
                count=len(acks.failed),
            )
        self._rejecting = bool(acks.failed)
        answered = set(acks.ok) | acks.failed.keys()
        if len(answered) < len(messages):
            unanswered = [m for i, m in enumerate(messages) if i not in answered]
            self.retried += len(unanswered)
            self.handoff.put_back(unanswered)

    async def _sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less if the hand-off closes meanwhile (so that the
        drain starts with an attempt at once; after that, the backoff holds)."""
        assert self._closed is not None
        if self._closed.is_set():
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)

    def _note(self, event: EventName, message: str, **detail: Any) -> None:
        self.notes.append((event, message, detail))


async def _first(done: asyncio.Event, lost: asyncio.Event, seconds: float) -> bool:
    """Wait until ``done`` (True), or ``lost`` or ``seconds`` pass (False)."""
    if done.is_set():
        return True
    waiters = {asyncio.ensure_future(done.wait()), asyncio.ensure_future(lost.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return done.is_set()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any) -> None:
    """``callback()`` on ``loop``'s thread; nothing if the loop has already closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)
