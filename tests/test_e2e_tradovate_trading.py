"""End to end on Tradovate's trading socket: the feed keeps the user's account in sync.

A real feed against the simulated Tradovate on loopback, under the autojump clock. The
simulator records what each connection received (``conn.requests``, in order) and counts
requests by endpoint (``sim.stats.requests_by_endpoint``), so the tests read the order of
the frames on the wire from it: ``authorize``, then the user sync, then everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import trio

import tickactors
from tickactors import EntityEvent, SyncSnapshot
from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_probe import rest
from tickactors.venues import AllTick, Tradovate, TradovateCredentials, TradovateTokenSource

from .fake_venue import FakeNetwork, FakeTransport

TOKEN = "tv-trading-token-6c6c"
ORDER = {"action": "Buy", "symbol": "ESZ6", "orderQty": 1, "orderType": "Market"}
#: what one filled market order causes, in the simulator's order (docs/venues.md, Trading)
FILLED = [
    ("order", "Created"),
    ("command", "Created"),
    ("orderVersion", "Created"),
    ("commandReport", "Created"),
    ("executionReport", "Created"),
    ("order", "Updated"),
    ("executionReport", "Created"),
    ("fill", "Created"),
    ("position", "Created"),
    ("cashBalance", "Updated"),
    ("order", "Updated"),
]


@asynccontextmanager
async def trading_feed(config: SimConfig | None = None, seed: int = 21, **feed_kw: Any):
    config = config or SimConfig(tokens={TOKEN})
    feed_kw.setdefault("seed", seed)
    async with open_simulator("tradovate", config=config, seed=seed) as sim:
        venue = Tradovate(url=sim.url, token=TOKEN)
        async with tickactors.open_feed(venue, **feed_kw) as feed:
            yield sim, feed


class Recorder:
    """Every health event of a feed, in order (a task of the test's nursery reads them)."""

    def __init__(self) -> None:
        self.events: list[tickactors.HealthEvent] = []

    async def run(self, feed: tickactors.Feed) -> None:
        async for event in feed.events():
            self.events.append(event)

    def named(self, name: str) -> list[tickactors.HealthEvent]:
        return [e for e in self.events if e.event == name]


async def next_update(updates: Any, timeout: float = 30.0) -> Any:
    with trio.fail_after(timeout):
        return await updates.__anext__()


async def next_snapshot(updates: Any, timeout: float = 30.0) -> SyncSnapshot:
    while True:
        update = await next_update(updates, timeout)
        if isinstance(update, SyncSnapshot):
            return update


async def events_until_filled(updates: Any, order_id: int) -> list[EntityEvent]:
    """Entity events until the order ``order_id`` is Filled (that event included)."""
    out: list[EntityEvent] = []
    while True:
        update = await next_update(updates)
        assert isinstance(update, EntityEvent), update
        out.append(update)
        entity = update.entity
        if update.entity_type == "order" and entity["id"] == order_id:  # noqa: SIM102
            if entity.get("ordStatus") == "Filled":
                return out


async def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Wait (polling every 0.05 s of the autojump clock) until ``condition()`` is true."""
    with trio.fail_after(timeout):
        while True:
            if condition():
                return
            await trio.sleep(0.05)


def endpoints(conn: Any) -> list[str]:
    return [endpoint for _, endpoint, *_ in conn.requests]


async def place_over_rest(sim: Any, user: str = "sim-user") -> int:
    """An order placed by someone else (REST, same user): the feed only hears its events."""
    token = sim.tradovate.accounts.issue(user).access
    status, body = await rest(sim.port, "POST", "/v1/order/placeOrder", ORDER, token=token)
    assert status == 200
    order_id: int = body["orderId"]
    return order_id


# ---- the sync on every connection, first on the wire ----------------------------------


async def test_every_connection_syncs_after_authorize_and_before_anything_else(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed(sync=True) as (sim, feed), trio.open_nursery() as nursery:
        recorder = Recorder()
        nursery.start_soon(recorder.run, feed)
        feed.subscribe("ESZ6")
        contract = await feed.request("contract/find", "name=NQZ6")  # before the first ready
        assert contract["name"] == "NQZ6"
        updates = feed.account()
        first = await next_snapshot(updates)
        user = sim.tradovate.accounts.user("sim-user")
        assert first.user_id == user.id and first.connection == 1
        assert first.entities["users"][0]["id"] == user.id
        assert first.entities["orders"] == () and len(first.entities["cashBalances"]) == 1
        with trio.fail_after(30):
            await feed.wait_confirmed("ESZ6")
        (conn,) = sim.connections
        sent = endpoints(conn)
        assert sent[:3] == ["authorize", "auth/me", "user/syncrequest"]
        assert {"contract/find", "md/subscribeQuote"} <= set(sent[3:])
        _, _, _, _, body = conn.requests[2]
        assert orjson.loads(body) == {"users": [user.id]}  # the id auth/me named
        snapshots = [first]
        for _ in range(2):  # two forced drops: each new connection syncs again
            sim.faults.drop()
            snapshots.append(await next_snapshot(updates))
            (conn,) = sim.connections
            assert endpoints(conn)[:2] == ["authorize", "user/syncrequest"]  # id learned once
            with trio.fail_after(30):
                await feed.wait_confirmed("ESZ6")
            assert endpoints(conn).index("user/syncrequest") < endpoints(conn).index(
                "md/subscribeQuote"
            )
        assert [s.connection for s in snapshots] == [1, 2, 3]
        assert all(s.user_id == user.id for s in snapshots)
        resynced = recorder.named("resynced")
        assert [e.connection for e in resynced] == [2, 3]  # every snapshot after the first
        assert resynced[0].detail["counts"]["orders"] == 0
        assert sim.stats.requests_by_endpoint["user/syncrequest"] == 3
        assert sim.stats.requests_by_endpoint["auth/me"] == 1
        stats = feed.statistics()["account"]
        assert stats["snapshots"] == 3 and stats["syncs_sent"] == 3 and stats["user_id"] == user.id
        assert dict(sim.stats.violations) == {}
        nursery.cancel_scope.cancel()


async def test_a_request_made_on_a_new_connection_goes_after_its_sync(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed(sync=True, user_id=4242) as (sim, feed):
        updates = feed.account()
        await next_snapshot(updates)
        sim.faults.drop()
        # made while the next connection is still authorizing and syncing: it waits for
        # nothing of that; it is refused at once (no connection ready) or goes after the sync
        with trio.fail_after(30):
            while True:
                try:
                    await feed.request("account/list")
                    break
                except tickactors.ConnectionLostError:
                    await trio.sleep(0.05)
        (conn,) = sim.connections
        sent = endpoints(conn)
        assert sent[:3] == ["authorize", "user/syncrequest", "account/list"]
        assert orjson.loads(conn.requests[1][4]) == {"users": [4242]}  # as given: no auth/me
        assert sim.stats.requests_by_endpoint["auth/me"] == 0


# ---- entity events -----------------------------------------------------------------------


async def test_entity_events_arrive_in_order_after_an_order(autojump_clock: trio.abc.Clock) -> None:
    async with trading_feed(sync=True) as (_, feed):
        updates = feed.account()
        snapshot = await next_snapshot(updates)
        account = snapshot.entities["accounts"][0]
        body = {**ORDER, "accountId": account["id"], "accountSpec": account["name"]}
        placed = await feed.request("order/placeorder", body=body)
        events = await events_until_filled(updates, placed["orderId"])
        assert [(e.entity_type, e.event_type) for e in events] == FILLED
        assert all(e.connection == 1 for e in events)
        times = [e.received_at for e in events]
        assert times == sorted(times) and times[0] >= snapshot.received_at
        by_type = {e.entity_type: e.entity for e in events}
        assert by_type["fill"]["orderId"] == placed["orderId"]
        assert by_type["position"]["netPos"] == 1
        statuses = [e.entity["ordStatus"] for e in events if e.entity_type == "order"]
        assert statuses == ["PendingNew", "Working", "Filled"]
        stats = feed.statistics()["account"]
        assert stats["events"] == len(FILLED) and stats["queue"]["dropped"] == 0


async def test_sync_later_reaches_the_connection_already_up(autojump_clock: trio.abc.Clock) -> None:
    async with trading_feed() as (sim, feed):
        feed.subscribe("ESZ6")
        with trio.fail_after(30):
            await feed.wait_confirmed("ESZ6")
        (conn,) = sim.connections
        assert "user/syncrequest" not in endpoints(conn)
        assert feed.statistics()["account"]["wanted"] is False
        feed.sync()
        feed.sync()  # idempotent
        snapshot = await next_snapshot(feed.account())
        assert snapshot.connection == conn.id or snapshot.connection == 1
        assert sim.stats.requests_by_endpoint["user/syncrequest"] == 1
        assert sim.connections == [conn]  # the same connection: no reconnect
        order_id = await place_over_rest(sim)
        events = await events_until_filled(feed.account(), order_id)
        assert [(e.entity_type, e.event_type) for e in events] == FILLED
        with pytest.raises(ValueError, match="syncs user"):
            feed.sync(user_id=snapshot.user_id + 1 if snapshot.user_id else 1)


# ---- orders are never sent twice ---------------------------------------------------------


@pytest.mark.parametrize("accepted", [False, True])
async def test_an_order_whose_connection_drops_fails_at_once_and_is_never_resent(
    autojump_clock: trio.abc.Clock, accepted: bool
) -> None:
    async with trading_feed(sync=True, request_timeout=30.0) as (sim, feed):
        recorder = Recorder()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder.run, feed)
            updates = feed.account()
            await next_snapshot(updates)
            sim.faults.drop_after_order(accepted=accepted)
            sent_at = trio.current_time()
            with pytest.raises(tickactors.ConnectionLostError):
                await feed.request("order/placeorder", body=ORDER)
            assert trio.current_time() - sent_at < 1.0  # at once, not at its 30 s deadline
            after = await next_snapshot(updates)  # the next connection's: the truth
            assert after.connection == 2
            orders = after.entities["orders"]
            if accepted:
                assert [o["ordStatus"] for o in orders] == ["Filled"]
                assert after.entities["positions"][0]["netPos"] == 1
            else:
                assert orders == () and after.entities["fills"] == ()
            await trio.sleep(60)  # past the deadline it had, and then some
            assert sim.stats.requests_by_endpoint["order/placeorder"] == 1  # sent once
            (conn,) = sim.connections
            assert "order/placeorder" not in endpoints(conn)
            assert sim.stats.closes["drop_after_order"] == 1
            assert [e.connection for e in recorder.named("resynced")] == [2]
            nursery.cancel_scope.cancel()


async def test_a_penalty_ticket_on_the_sync_is_waited_out_and_still_becomes_the_snapshot(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed(user_id=77) as (sim, feed):
        feed.subscribe("ESZ6")
        with trio.fail_after(30):
            await feed.wait_confirmed("ESZ6")
        sim.faults.p_ticket(1, p_time=5)
        started = trio.current_time()
        feed.sync()
        snapshot = await next_snapshot(feed.account())
        assert trio.current_time() - started >= 5  # the penalty was waited out
        assert snapshot.user_id == 77 and snapshot.entities["users"]
        assert sim.stats.requests_by_endpoint["user/syncrequest"] == 2  # ticket, then resend
        assert feed.statistics()["events"]["penalty"] == 1


# ---- when the sync goes wrong --------------------------------------------------------------


async def test_a_refused_sync_is_announced_and_the_feed_goes_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed() as (sim, feed):
        feed.subscribe("ESZ6")
        with trio.fail_after(30):
            await feed.wait_confirmed("ESZ6")
        sim.faults.rate_limit_429(1)  # the sync's first request (auth/me) gets a 429
        feed.sync()
        with trio.fail_after(30):
            async for event in feed.events():
                if event.event == "sync_failed":
                    break
        assert event.detail == {"request": "auth/me", "code": 429}
        await trio.sleep(30)
        assert len(sim.connections) == 1 and sim.stats.connections_opened == 1  # no reconnect
        stats = feed.statistics()
        assert stats["account"]["sync_failures"] == 1 and stats["account"]["snapshots"] == 0
        assert stats["events"].get("disconnected", 0) == 0
        assert feed.confirmed() == {"ESZ6"}


async def test_a_sync_without_an_answer_ends_the_connection_and_the_next_one_syncs(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed(user_id=5) as (sim, feed):
        await until(lambda: feed.statistics()["connection"]["connects"])
        sim.faults.drop_requests(1)  # the user/syncrequest goes unanswered
        feed.sync()
        snapshot = await next_snapshot(feed.account(), timeout=60)
        assert snapshot.connection == 2  # the first connection ended at the deadline
        assert sim.stats.requests_by_endpoint["user/syncrequest"] == 2
        events = feed.statistics()["events"]
        assert events["request_timeout"] == 1 and events["disconnected"] == 1


# ---- a slow consumer of the account --------------------------------------------------------


async def test_block_holds_the_reader_without_staleness_or_timeouts(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed(sync=True, account_buffer=3) as (sim, feed):
        recorder = Recorder()
        answers: list[Any] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder.run, feed)
            await until(lambda: feed.statistics()["account"]["snapshots"])
            await place_over_rest(sim)  # 11 events: one read takes them (one batch over)
            await trio.sleep(1)
            await place_over_rest(sim)  # 11 more: the queue is full, the reader waits
            await trio.sleep(5)
            stats = feed.statistics()["account"]
            assert stats["queue"]["producer_blocked"] == 1  # the reader waits for us
            waiting = stats["queue"]["waiting"]

            async def order() -> None:  # its answer waits unread behind the full queue
                answers.append(await feed.request("order/placeorder", body=ORDER))

            nursery.start_soon(order)
            await trio.sleep(120)  # far beyond stale_after (10 s) and request_timeout (10 s)
            assert answers == []
            assert feed.statistics()["account"]["queue"]["waiting"] == waiting
            assert not recorder.named("stale") and not recorder.named("request_timeout")
            assert not recorder.named("disconnected")
            updates = feed.account()
            got = [await next_update(updates) for _ in range(1 + 3 * len(FILLED))]
            assert isinstance(got[0], SyncSnapshot)
            kinds = [u.entity_type for u in got[1:]]
            assert kinds == [kind for kind, _ in FILLED] * 3  # nothing lost, in order
            await until(lambda: answers, timeout=5)
            assert "orderId" in answers[0]
            stats = feed.statistics()["account"]
            assert stats["queue"]["dropped"] == 0 and len(sim.connections) == 1
            nursery.cancel_scope.cancel()


async def test_drop_oldest_counts_and_announces_what_it_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading_feed(sync=True, account_buffer=4, account_policy="drop-oldest") as (
        sim,
        feed,
    ):
        recorder = Recorder()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder.run, feed)
            await until(lambda: feed.statistics()["account"]["snapshots"])
            await place_over_rest(sim)
            await until(lambda: feed.statistics()["account"]["events"] >= len(FILLED))
            await trio.sleep(2)
            stats = feed.statistics()["account"]["queue"]
            assert stats["dropped"] == 1 + len(FILLED) - 4 and stats["waiting"] == 4
            assert sum(stats["dropped_by_type"].values()) == stats["dropped"]
            assert stats["dropped_by_type"]["sync"] == 1  # the oldest went first
            gaps = recorder.named("gap")
            assert gaps and sum(g.detail["dropped"] for g in gaps) == stats["dropped"]
            assert gaps[-1].detail["total"] == stats["dropped"]
            assert all("account" in g.detail for g in gaps)
            updates = feed.account()
            kept = [await next_update(updates) for _ in range(4)]
            assert [(u.entity_type, u.event_type) for u in kept] == FILLED[-4:]  # the newest
            nursery.cancel_scope.cancel()


# ---- refusals ----------------------------------------------------------------------------


async def test_sync_is_refused_where_there_is_no_account(autojump_clock: trio.abc.Clock) -> None:
    with pytest.raises(ValueError, match="keeps no account"):
        async with tickactors.open_feed(AllTick(url="ws://127.0.0.1:1/x", token="t"), sync=True):
            pass
    with pytest.raises(ValueError, match="market-data socket"):
        async with tickactors.open_feed(Tradovate(token="t"), sync=True):  # MD_URL
            pass
    with pytest.raises(ValueError, match="account_policy"):
        async with tickactors.open_feed(
            Tradovate(url="ws://127.0.0.1:1/v1/websocket", token="t"), account_policy="conflate"
        ):
            pass
    with pytest.raises(ValueError, match="user id"):
        async with tickactors.open_feed(
            Tradovate(url="ws://127.0.0.1:1/v1/websocket", token="t"), sync=True, user_id=0
        ):
            pass


def test_a_market_data_token_is_refused_for_the_trading_socket() -> None:
    credentials = TradovateCredentials("u", "p", "app", "1", "8", "s")
    md = TradovateTokenSource("http://127.0.0.1:1/v1", credentials)  # which="md", the default
    access = TradovateTokenSource("http://127.0.0.1:1/v1", credentials, which="access")
    for url in (Tradovate.DEMO_URL, Tradovate.LIVE_URL):
        with pytest.raises(ValueError, match="access token"):
            Tradovate(url=url, token=md)
        assert Tradovate(url=url, token=access).dialect.user_sync
    assert not Tradovate(url=Tradovate.MD_URL, token=md).dialect.user_sync


async def test_a_feed_refuses_to_sync_with_a_market_data_token(
    autojump_clock: trio.abc.Clock,
) -> None:
    credentials = TradovateCredentials("u", "p", "app", "1", "8", "s")
    md = TradovateTokenSource("http://127.0.0.1:1/v1", credentials)
    venue = Tradovate(url="ws://127.0.0.1:1/v1/websocket", token=md)  # the sim's own URL
    with pytest.raises(ValueError, match="access token"):
        async with tickactors.open_feed(venue, sync=True):
            pass
    await md.aclose()


async def test_a_token_source_for_the_access_token_syncs(autojump_clock: trio.abc.Clock) -> None:
    config = SimConfig(tradovate_user="tess", tradovate_password="pw-5")
    credentials = TradovateCredentials("tess", "pw-5", "app", "1", "8", "s")
    async with open_simulator("tradovate", config=config, seed=23) as sim:
        source = TradovateTokenSource(sim.rest_url, credentials, which="access")
        async with source, tickactors.open_feed(Tradovate(url=sim.url, token=source)) as feed:
            feed.sync()
            snapshot = await next_snapshot(feed.account())
            assert snapshot.user_id == sim.tradovate.accounts.user("tess").id
            (conn,) = sim.connections
            status, me = await rest(sim.port, "GET", "/v1/auth/me", token=conn.requests[0][4])
            assert status == 200 and me["userId"] == snapshot.user_id
            assert me["name"] == "tess"


# ---- the order of one read: answer and events in one frame (a scripted venue) ------------


class Wire(FakeTransport):
    """A Tradovate socket played by the test: raw frames out, ``(endpoint, id)`` recorded."""

    def __init__(self, url: str, token: tickactors.Secret | None) -> None:
        super().__init__(url, token)
        self.calls: list[tuple[str, int, str]] = []

    async def send(self, message: str) -> None:
        if self.closed:
            raise tickactors.TransportClosed(1006, "closed")
        if message != "[]":
            endpoint, request_id, _, body = message.split("\n", 3)
            self.calls.append((endpoint, int(request_id), body))
        await trio.lowlevel.checkpoint()

    async def call(self, endpoint: str) -> tuple[int, str]:
        """Wait until the client sent ``endpoint``; its request id and body."""
        with trio.fail_after(30):
            while True:
                for sent, request_id, body in self.calls:
                    if sent == endpoint:
                        return request_id, body
                await trio.sleep(0.01)


class WireNetwork(FakeNetwork):
    async def __call__(self, nursery, url, token, ssl_context, connect_timeout) -> Wire:  # type: ignore[no-untyped-def, override]
        await trio.lowlevel.checkpoint()
        wire = Wire(url, token)
        self.transports.append(wire)
        return wire


def a_frame(*items: dict[str, Any]) -> str:
    return "a" + orjson.dumps(list(items)).decode()


def props(entity_type: str, event_type: str, entity: dict[str, Any]) -> dict[str, Any]:
    return {
        "e": "props",
        "d": {"entityType": entity_type, "eventType": event_type, "entity": entity},
    }


async def test_one_frame_with_events_around_the_sync_answer_keeps_its_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    net = WireNetwork()
    venue = Tradovate(url="ws://127.0.0.1:1/v1/websocket", token="t")
    async with tickactors.open_feed(venue, transport_factory=net, sync=True, user_id=9) as feed:
        await until(lambda: net.transports)
        wire = net.transports[0]
        assert isinstance(wire, Wire)
        wire.push("o")
        authorize, _ = await wire.call("authorize")
        wire.push(a_frame({"i": authorize, "s": 200}))
        sync, body = await wire.call("user/syncrequest")
        assert orjson.loads(body) == {"users": [9]}
        answer = {"i": sync, "s": 200, "d": {"users": [{"id": 9}], "orders": [], "x": 1}}
        before = props("order", "Created", {"id": 1, "ordStatus": "PendingNew"})
        after = props("order", "Updated", {"id": 1, "ordStatus": "Working"})
        broken = {"e": "props", "d": {"entityType": "order"}}  # no eventType, no entity
        wire.push(a_frame(before, answer, broken, after))
        updates = feed.account()
        got = [await next_update(updates) for _ in range(3)]
        assert [type(u).__name__ for u in got] == ["EntityEvent", "SyncSnapshot", "EntityEvent"]
        first, snapshot, last = got
        assert isinstance(first, EntityEvent) and isinstance(last, EntityEvent)
        assert (first.event_type, last.event_type) == ("Created", "Updated")
        assert isinstance(snapshot, SyncSnapshot)
        assert snapshot.entities == {"users": ({"id": 9},), "orders": ()}  # lists only
        assert snapshot.user_id == 9 and snapshot.connection == 1
        assert first.received_at == snapshot.received_at == last.received_at  # one read
        stats = feed.statistics()["account"]
        assert stats["malformed"] == 1 and stats["events"] == 2 and stats["snapshots"] == 1
        # the connection is ready only now: the sync went first, the user's request after
        assert [c[0] for c in wire.calls] == ["authorize", "user/syncrequest"]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed.request, "account/list")
            request_id, _ = await wire.call("account/list")
            wire.push(a_frame({"i": request_id, "s": 200, "d": []}))
        assert [c[0] for c in wire.calls] == ["authorize", "user/syncrequest", "account/list"]


async def test_a_rotation_overlap_delivers_each_event_once(autojump_clock: trio.abc.Clock) -> None:
    async with trading_feed(sync=True, max_connection_age=300.0) as (sim, feed):
        feed.subscribe("ESZ6")
        updates = feed.account()
        first = await next_snapshot(updates)
        second = await next_snapshot(updates, timeout=600)  # the replacement's, before handover
        assert (first.connection, second.connection) == (1, 2)
        assert len(sim.connections) == 2  # both synced, both get the user's events
        order_id = await place_over_rest(sim)
        events = await events_until_filled(updates, order_id)
        assert [(e.entity_type, e.event_type) for e in events] == FILLED  # once each
        assert {e.connection for e in events} == {2}  # from the newest snapshot's connection
        stats = feed.statistics()["account"]
        assert stats["superseded"] == len(FILLED) and stats["source"] == 2
