"""The account's route (``_core/account_route.py``): one connection at a time, resyncs named.

Plain machine tests, plus the Tradovate wire helpers the session reads the sync with.
"""

from __future__ import annotations

from tickactors._core.account_route import AccountRoute, Admission
from tickactors.venues._tradovate import TradovateDialect
from tickactors.venues._tradovate_wire import entity_parts, me_user_id, sync_lists


def test_the_first_snapshot_delivers_and_later_ones_are_resyncs() -> None:
    route = AccountRoute()
    assert route.event(1) is Admission.DELIVER  # before any snapshot: delivered, in order
    assert route.snapshot(1) is Admission.DELIVER
    assert route.event(1) is Admission.DELIVER
    route.connection_closed(1)
    assert route.source is None
    assert route.event(2) is Admission.DELIVER  # a new connection before its snapshot
    assert route.snapshot(2) is Admission.RESYNCED
    stats = route.statistics()
    assert (stats.source, stats.snapshots, stats.events, stats.superseded) == (2, 2, 3, 0)


def test_during_an_overlap_the_account_follows_the_newest_snapshot() -> None:
    route = AccountRoute()
    route.snapshot(1)
    assert route.event(2) is Admission.SUPERSEDED  # the replacement, not synced yet
    assert route.event(1) is Admission.DELIVER
    assert route.snapshot(2) is Admission.RESYNCED
    assert route.event(1) is Admission.SUPERSEDED  # the old one's copies
    assert route.event(2) is Admission.DELIVER
    route.connection_closed(1)  # not the source: nothing changes
    assert route.source == 2
    assert route.superseded == 2


def test_the_wire_helpers_read_only_the_documented_shapes() -> None:
    assert me_user_id({"userId": 12, "name": "x"}) == 12
    for bad in (None, [], {"userId": "12"}, {"userId": 0}, {"userId": True}, {}):
        assert me_user_id(bad) is None
    lists = sync_lists({"users": [{"id": 1}], "orders": [], "mixed": [1, {}], "n": 3})
    assert lists == {"users": ({"id": 1},), "orders": ()}
    assert sync_lists([]) is None and sync_lists("x") is None
    entity = {"id": 3}
    parts = entity_parts({"entityType": "fill", "eventType": "Created", "entity": entity})
    assert parts == ("fill", "Created", entity)
    assert entity_parts({"entityType": "fill", "eventType": "Created", "entity": [1]}) is None
    assert entity_parts({"entityType": 1, "eventType": "Created", "entity": entity}) is None
    dialect = TradovateDialect("wss://demo.tradovateapi.com/v1/websocket")
    assert dialect.user_sync
    assert dialect.sync_call(5) == ("user/syncrequest", "", {"users": [5]})
    assert dialect.user_call() == ("auth/me", "", None)
    assert not TradovateDialect().user_sync  # the market-data socket
