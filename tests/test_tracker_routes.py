"""The request tracker sends a subscription's verdict to the reconciler that asked, only.

A feed has one tracker and as many reconcilers as it has slots, and a rotation replaces a
slot's reconciler with a new one (the old one is retired with its connection). There is no
default route: every ``Subscription`` names its reply inbox, and every verdict, whether an
answer, a rejection, a rate limit or a timeout, goes there. Driven through the tracker's
inbox, as the actors drive it, under the autojump clock.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from tickactors._actors.health_bus import HealthBus
from tickactors._actors.messages import AnswerIn, Gated, LinkDown, LinkUp, Subscription
from tickactors._actors.tracker import RequestTracker
from tickactors._core.reconciler import (
    Acked,
    Action,
    Event,
    RateLimited,
    Rejected,
    SendRequest,
    TimedOut,
)
from tickactors._values import StreamKind
from tickactors.venues import AllTick
from tickactors.venues._dialect import Answer, AnswerKind

DIALECT = AllTick(url="ws://127.0.0.1:1/quote-b-ws-api").dialect


class Reconciler:
    """A reconciler's inbox as the tracker sees it: a channel; what came, in order."""

    def __init__(self) -> None:
        self.reply, self._inbox = trio.open_memory_channel[Event](math.inf)

    def heard(self) -> list[Event]:
        out = []
        while True:
            try:
                out.append(self._inbox.receive_nowait())
            except trio.WouldBlock:
                return out


class Connection:
    """A connection's writer channel as the tracker sees it."""

    def __init__(self, number: int, tracker: RequestTracker) -> None:
        self.number = number
        self.writer, self._frames = trio.open_memory_channel[Any](math.inf)
        tracker.inbox.send_nowait(LinkUp(number, self.writer))

    def request_id(self) -> int:
        frame = self._frames.receive_nowait()
        assert isinstance(frame, Gated)
        return int(orjson.loads(frame.frame)["seq_id"])


def replace(ref: int, *symbols: str) -> SendRequest:
    return SendRequest(ref, StreamKind.TRADES, Action.REPLACE, symbols)


async def test_every_verdict_goes_to_the_reconciler_that_asked(autojump_clock):
    tracker = RequestTracker(
        DIALECT, HealthBus(), trio.open_memory_channel(math.inf), request_timeout=5.0
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tracker.run)
        one, two = Connection(1, tracker), Connection(2, tracker)
        first, second = Reconciler(), Reconciler()
        send = tracker.inbox.send_nowait
        send(Subscription(1, replace(1, "A"), first.reply))
        send(Subscription(2, replace(1, "B"), second.reply))  # the same ref, another asker
        send(Subscription(2, replace(2, "C"), second.reply))
        await trio.testing.wait_all_tasks_blocked()
        a, b, c = one.request_id(), two.request_id(), two.request_id()
        send(AnswerIn(2, Answer(b, AnswerKind.OK, 200)))
        send(AnswerIn(1, Answer(a, AnswerKind.REJECTED, 603, "no")))
        send(AnswerIn(2, Answer(c, AnswerKind.RATE_LIMITED, 429, "slow", retry_after=2.0)))
        await trio.testing.wait_all_tasks_blocked()
        assert first.heard() == [Rejected(1, 603, "no")]
        assert second.heard() == [Acked(1), RateLimited(2, 2.0)]

        # Slot 0's first reconciler is retired with its connection (a rotation); the
        # replacement's asks on the new connection. Nothing reaches the retired one.
        send(LinkDown(1))
        three, third = Connection(3, tracker), Reconciler()
        send(Subscription(3, replace(1, "A"), third.reply))
        send(Subscription(2, replace(3, "D"), second.reply))
        await trio.testing.wait_all_tasks_blocked()
        d, e = three.request_id(), two.request_id()
        send(AnswerIn(3, Answer(d, AnswerKind.OK, 200)))
        await trio.sleep(5)  # the one on connection 2 is never answered: its deadline
        await trio.testing.wait_all_tasks_blocked()
        assert third.heard() == [Acked(1)]
        assert second.heard() == [TimedOut(3)]
        assert first.heard() == []
        assert e != d
        nursery.cancel_scope.cancel()


def test_a_subscription_names_the_reconciler_it_answers_to():
    with pytest.raises(TypeError):
        Subscription(1, replace(1, "A"))  # type: ignore[call-arg]
