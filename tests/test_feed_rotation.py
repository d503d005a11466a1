"""Make-before-break rotation against the fake network, under the autojump clock.

A small broadcast market plays AllTick on every fake connection: it answers each
subscription, and every 0.5 s trades each code once, with the code's next ``seq``, on
every connection that carries it, as the real venue (and the simulator) does. So the old
connection and its replacement carry the same trades during the overlap, and the user
must see each exactly once. The simulator's ten-rotation proof is in
``tests/test_e2e_rotation.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

import tickactors
from tickactors.venues import AllTick

from .event_log import EventLog
from .fake_venue import FakeNetwork, FakeTransport

TOKEN = "tok-SECRET-rotation"
URL = "ws://127.0.0.1:9/quote-b-ws-api"
AGE = dict(max_connection_age=100.0, rotation_patience=5.0, connect_timeout=5.0)


class Market:
    """Answers subscriptions on every fake connection and trades each code on every one
    that carries it (``mute``: codes that never trade on connections opened after ``t``)."""

    def __init__(self, net: FakeNetwork) -> None:
        self.net = net
        self.carried: dict[int, set[str]] = {}
        self.seq: dict[str, int] = {}
        self.sent_to: dict[int, list[tuple[str, int]]] = {}
        self.mute_after: float | None = None
        self.mute: set[str] = set()

    def _serve_requests(self) -> None:
        for index, conn in enumerate(self.net.transports):
            if conn.closed:
                continue
            for request in conn.requests():
                if request.get("answered") or request["cmd_id"] not in (22004, 22006):
                    continue
                request["answered"] = True
                if request["cmd_id"] == 22004:
                    self.carried[index] = {e["code"] for e in request["data"]["symbol_list"]}
                else:
                    self.carried[index] = set()
                conn.answer(request)

    async def run(self) -> None:
        while True:
            self._serve_requests()
            await trio.testing.wait_all_tasks_blocked()
            for code in sorted({c for codes in self.carried.values() for c in codes}):
                seq = self.seq[code] = self.seq.get(code, 0) + 1
                for index, codes in self.carried.items():
                    conn = self.net.transports[index]
                    if code in codes and not conn.closed and not self._muted(conn, code):
                        conn.trade(code, seq=seq)
                        self.sent_to.setdefault(index, []).append((code, seq))
            await trio.sleep(0.5)

    def _muted(self, conn: FakeTransport, code: str) -> bool:
        if code not in self.mute or self.mute_after is None:
            return False
        opened = self.net.connect_times[self.net.transports.index(conn)]
        return opened > self.mute_after


class Run:
    """One test's world: the fake network, its market, the feed, the user's ticks, events."""

    def __init__(self, feed: tickactors.Feed, net: FakeNetwork, market: Market) -> None:
        self.feed, self.net, self.market = feed, net, market
        self.ticks: list[tuple[str, int | None]] = []
        self.events = EventLog()

    async def collect(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.events.follow, self.feed)
            async for tick in self.feed.ticks():
                self.ticks.append((tick.symbol, tick.seq))

    async def wait_event(self, name: str, count: int = 1, timeout: float = 300.0):
        with trio.fail_after(timeout):
            return await self.events.wait_for(name, count)


@asynccontextmanager
async def rotating_feed(seed: int, mute: frozenset[str] = frozenset()) -> AsyncIterator[Run]:
    """A feed with ``AGE`` against a broadcast market (``mute``: codes that never trade on
    a connection opened after the first second); everything stops when the block ends."""
    net = FakeNetwork()
    market = Market(net)
    market.mute, market.mute_after = set(mute), 1.0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(market.run)
        venue = AllTick(url=URL, token=TOKEN)
        async with tickactors.open_feed(venue, transport_factory=net, seed=seed, **AGE) as feed:
            run = Run(feed, net, market)
            nursery.start_soon(run.collect)
            yield run
            nursery.cancel_scope.cancel()


def codes(request: dict) -> set[str]:
    return {entry["code"] for entry in request["data"]["symbol_list"]}


def by_symbol(ticks: list) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for symbol, seq in ticks:
        out.setdefault(symbol, []).append(seq)
    return out


async def test_a_replacement_proves_itself_before_the_old_connection_closes(autojump_clock):
    async with rotating_feed(4) as run:
        feed, net, market, events = run.feed, run.net, run.market, run.events
        feed.subscribe("A", "B")
        rotated = await run.wait_event("rotated")
        old, new = net.transports
        opened, replaced = net.connect_times
        assert 81.0 <= replaced - opened <= 90.0  # (100 - 5 - 5) s, up to 10 % early
        (rotating,) = events.named("rotating")
        assert rotating.detail["reason"] == "age"
        assert codes(new.requests(22004)[0]) == {"A", "B"}
        # the old one closed politely, after the new one delivered A and B
        assert old.closed and old.closed_politely and not new.closed
        first_new = min(
            seq for (code, seq) in market.sent_to[1] if code == "A"
        )  # the new one's first A
        assert rotated.time - replaced < 5.0
        await trio.sleep(20)
        stats = feed.statistics()
        assert stats["connection"]["rotations"] == 1
        assert feed.confirmed() == {"A", "B"}
    seqs = by_symbol(run.ticks)
    for code in ("A", "B"):
        assert seqs[code] == list(range(1, market.seq[code] + 1))  # every trade, once
    assert first_new <= max(seq for code, seq in market.sent_to[0] if code == "A")  # overlap
    assert rotated.detail["duplicates"] > 0


async def test_every_connection_is_replaced_before_its_age(autojump_clock):
    async with rotating_feed(9) as run:
        feed, net, events = run.feed, run.net, run.events
        feed.subscribe("A")
        await run.wait_event("rotated", count=4, timeout=600)
    closes = events.named("disconnected")
    for index, opened in enumerate(net.connect_times[:4]):
        closed_at = next(e.time for e in closes if e.connection == index + 1)
        assert closed_at - opened < 100.0
    assert by_symbol(run.ticks)["A"] == list(range(1, len(by_symbol(run.ticks)["A"]) + 1))


async def test_intent_during_the_overlap_reaches_both_connections(autojump_clock):
    async with rotating_feed(4, mute=frozenset({"B"})) as run:
        feed, net = run.feed, run.net
        feed.subscribe("A", "B")
        await run.wait_event("rotating")
        await net.wait_connections(2)
        feed.subscribe("C")  # while both connections live
        incomplete = await run.wait_event("handover_incomplete")
        assert incomplete.detail["symbols"] == {"trades": ["B"]}
        await run.wait_event("rotated")
        old, new = net.transports
        assert incomplete.time - net.connect_times[1] >= 5.0  # patience ran out first
        assert incomplete.detail["reason"] == "patience"
        assert "within 5 s; closing connection 1 anyway" in incomplete.message
        await trio.sleep(10)
        assert old.closed and not new.closed
        assert codes(new.requests(22004)[-1]) == {"A", "B", "C"}  # the change reached it
        assert feed._reconciler.machine.desired(tickactors.TRADES) == {"A", "B", "C"}
        assert feed.confirmed() == {"A", "B", "C"}
        feed.unsubscribe("A")  # after the hand-over: the new connection takes it
        with trio.fail_after(10):
            await feed.wait_converged()
        assert codes(new.requests(22004)[-1]) == {"B", "C"}


async def test_a_failed_rotation_keeps_the_old_connection_and_tries_again(autojump_clock):
    async with rotating_feed(4) as run:
        feed, net = run.feed, run.net
        feed.subscribe("A")
        await net.wait_connections(1)
        net.refuse = 1
        failed = await run.wait_event("rotation_failed")
        rotated = await run.wait_event("rotated")
        assert rotated.time - failed.time >= 3.0  # tried again after 3 s
        stats = feed.statistics()["connection"]
        assert (stats["rotations"], stats["rotation_failures"]) == (1, 1)
        assert stats["backoff_attempts"] == 0  # the old connection never failed
    seqs = by_symbol(run.ticks)["A"]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_the_replacement_takes_over_at_once_when_the_old_one_dies(autojump_clock):
    async with rotating_feed(4, mute=frozenset({"A"})) as run:
        feed, net, events = run.feed, run.net, run.events
        feed.subscribe("A", "B")
        await run.wait_event("rotating")
        old = await net.wait_connections(1)
        await net.wait_connections(2)
        await trio.sleep(1.0)
        old.close_by_peer()  # the venue cut it before the replacement proved itself
        await run.wait_event("rotated")
        assert len(net.transports) == 2  # no reconnect: the replacement took over
        assert "reconnecting" not in events.names()
        await trio.sleep(5)
        assert feed.confirmed() == {"A", "B"}


async def test_a_handover_cut_short_by_the_old_connections_close_says_so(autojump_clock):
    """Regression: a venue that closes the old connection (Tradovate after its Maintenance
    notice) cut the handover short, and the event said "within 30 s" and "closing ...
    anyway" although no patience had passed and the connection was already gone."""
    async with rotating_feed(4, mute=frozenset({"A"})) as run:
        feed, net = run.feed, run.net
        feed.subscribe("A", "B")
        rotating = await run.wait_event("rotating")
        old = await net.wait_connections(1)
        await net.wait_connections(2)
        await trio.sleep(1.0)
        old.close_by_peer(3000)
        incomplete = await run.wait_event("handover_incomplete")
    assert incomplete.detail["reason"] == "old_closed"
    assert incomplete.detail["symbols"] == {"trades": ["A"]}
    assert 1.0 <= incomplete.detail["waited"] < 2.0
    assert incomplete.time - rotating.time < 2.0  # nowhere near the patience (5 s)
    assert "within" not in incomplete.message and "anyway" not in incomplete.message
    assert incomplete.message.startswith("connection 1 ended 1.0 s into the handover (closed by")
    assert "code 3000" in incomplete.message
