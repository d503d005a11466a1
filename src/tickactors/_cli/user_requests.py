"""The runner's stdin ``request`` lines: sent in their order, awaited apart, each ending in a line.

Theory of operation
-------------------
The stdin reader parses a ``request ENDPOINT [QUERY] [JSON-BODY]`` line (``commands.py``)
and hands it to :meth:`UserRequests.apply`, which never waits: it checks the line, numbers
it, writes the ``command`` status line that carries the number (``id``), hands it to the
feed's request tracker at once (``_feed.feed.submit_request``, the first half of
``feed.request``: so requests go out in the order of their lines) and starts a task that
waits for its end (``wait_answer``, which keeps the answer's status) and writes its
outcome (``request_outcome.py``). So neither the reader nor anything else waits for a
venue's answer, and any number of requests may be out at once, up to
:data:`MAX_IN_FLIGHT`; a line beyond that is refused (``command_error``), like any line
that cannot be sent, and gets no id.

What is refused before anything is sent: what the venue's dialect cannot encode (AllTick
takes no requests of the user's own; an endpoint with a line break), and, with ``--shard
I/N``, every request on a shard other than 0 (``command`` status line with ``others`` 1,
no id): N runners given the same stdin would otherwise place every order N times.

Ids run 1, 2, 3, ... in the order the lines were read, counting the requests sent only.
Every id ends in exactly one line: ``answer``, or ``request_failed`` with a ``reason``
(``timeout``, ``connection_lost``, ``rejected`` with the venue's code, ``captcha``,
``closed``; a request still out when the runner stops ends ``closed``).

A request is sent once, never again. One whose connection drops fails at once as
``connection_lost`` (the feed does not wait for the deadline), and the runner does not
resend it on the next connection: the venue may have applied it before the drop, and an
order sent again is a second order. Whether it was applied is the user's to find out
(Tradovate: ``user/syncrequest`` or ``order/list``, by ``clOrdId``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from .._core.requests import Resolution
from .._core.shard_share import Shard
from .._errors import (
    CaptchaRequiredError,
    ConnectionLostError,
    FeedClosedError,
    RequestTimeoutError,
    VenueRejectedError,
)
from .._feed.feed import Feed, submit_request, wait_answer
from .._values import StatusName
from .commands import RequestCommand
from .output import Writer
from .request_outcome import Reason, RequestOutcome

#: requests out at once; a line beyond is refused (command_error), never queued unbounded
MAX_IN_FLIGHT = 64


class UserRequests:
    """Stdin requests of one run: numbers them, sends each in a task of ``nursery``."""

    def __init__(
        self, feed: Feed, writer: Writer, nursery: trio.Nursery, shard: Shard | None = None
    ) -> None:
        self._feed = feed
        self._writer = writer
        self._nursery = nursery
        self._shard = shard
        self.last_id = 0
        self.in_flight = 0

    def apply(self, command: RequestCommand) -> None:
        """Check, number and start ``command`` (see the module docstring); never waits."""
        writer, endpoint = self._writer, command.endpoint
        try:  # what the venue cannot take is refused here, before it has an id
            self._feed.venue.dialect.encode_call(endpoint, 0, command.query, command.body)
        except (ValueError, TypeError) as exc:
            writer.status(StatusName.COMMAND_ERROR, f"request {endpoint[:80]}: {exc}")
            return
        shard = self._shard
        if shard is not None and shard.index != 0:
            writer.status(StatusName.COMMAND, "request", request=endpoint, others=1)
            return
        if self.in_flight >= MAX_IN_FLIGHT:
            writer.status(
                StatusName.COMMAND_ERROR,
                f"request {endpoint[:80]}: {MAX_IN_FLIGHT} requests are waiting for an "
                "answer already; not sent",
            )
            return
        self.last_id += 1
        detail: dict[str, Any] = {"id": self.last_id, "request": endpoint}
        if shard is not None:
            detail["others"] = 0
        writer.status(StatusName.COMMAND, "request", **detail)
        started = trio.current_time()
        try:  # to the tracker now: requests go out in the order of their lines
            reply = submit_request(self._feed, endpoint, command.query, command.body)
        except FeedClosedError as exc:
            self._failed(self.last_id, endpoint, started, "closed", exc)
            return
        self.in_flight += 1
        self._nursery.start_soon(self._wait, self.last_id, endpoint, started, reply)

    def _failed(
        self,
        number: int,
        endpoint: str,
        started: float,
        reason: Reason,
        exc: BaseException | str,
        code: int | None = None,
    ) -> None:
        elapsed = trio.current_time() - started
        message = exc if isinstance(exc, str) else str(exc)
        self._writer.request_outcome(
            RequestOutcome(number, endpoint, elapsed, reason=reason, code=code, message=message)
        )

    async def _wait(
        self,
        number: int,
        endpoint: str,
        started: float,
        reply: trio.MemoryReceiveChannel[Resolution[Any]],
    ) -> None:
        def failed(reason: Reason, exc: BaseException | str, code: int | None = None) -> None:
            self._failed(number, endpoint, started, reason, exc, code)

        try:
            answer = await wait_answer(endpoint, reply)
        except ConnectionLostError as exc:
            failed("connection_lost", exc)
        except RequestTimeoutError as exc:
            failed("timeout", exc)
        except VenueRejectedError as exc:
            failed("rejected", exc.reason, exc.code)
        except CaptchaRequiredError as exc:
            failed("captcha", exc)
        except FeedClosedError as exc:
            failed("closed", exc)
        except trio.Cancelled:
            failed("closed", f"{endpoint}: the runner stopped before an answer came")
            raise
        else:
            # the status the venue sent with it (Tradovate ``s``); 200 if it keeps none
            status = answer.code if 200 <= answer.code < 300 else 200
            elapsed = trio.current_time() - started
            self._writer.request_outcome(
                RequestOutcome(number, endpoint, elapsed, status=status, data=answer.data)
            )
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def open_user_requests(
    feed: Feed, writer: Writer, shard: Shard | None = None
) -> AsyncIterator[UserRequests]:
    """Stdin requests whose tasks live while the body does; at its end, those still out
    are waited for (stdin ended: their answers may still come)."""
    async with trio.open_nursery() as nursery:
        yield UserRequests(feed, writer, nursery, shard)
