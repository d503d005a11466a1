"""Account updates (``feed.account()``) in the sinks: one JSON form, JSONL lines, NATS subjects.

The JSON form is ``_json_lines.account_dict``, the same for stdout, files and NATS; the
NATS test runs a real ``nats-server -js`` (skipped without one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from tickactors import EntityEvent, HealthEvent, SyncSnapshot
from tickactors._json_lines import account_dict, encode_line
from tickactors.sinks import open_jsonl_sink, open_nats_sink
from tickactors.sinks._nats_encode import NatsEncoder, kind_of

from .nats_support import NatsServer, read_stream

SNAPSHOT = SyncSnapshot(
    7,
    {"users": ({"id": 7, "name": "x"},), "orders": (), "cashBalances": ({"amount": 5e4},)},
    connection=1,
    received_at=10.0,
)
EVENTS = [
    EntityEvent("order", "Created", {"id": 1, "ordStatus": "PendingNew"}, 1, 11.0),
    EntityEvent("fill", "Created", {"id": 2, "orderId": 1, "price": 5000.25}, 1, 12.5),
    EntityEvent("cashBalance", "Updated", {"id": 3, "realizedPnL": -12.5}, 1, 12.5),
]


def test_one_json_form_for_snapshots_and_events() -> None:
    assert account_dict(SNAPSHOT, 100.0) == {
        "kind": "sync",
        "user_id": 7,
        "connection": 1,
        "time": 110.0,
        "entities": SNAPSHOT.entities,
    }
    line = json.loads(encode_line(account_dict(SNAPSHOT, 100.0)))
    assert line["entities"] == {
        "users": [{"id": 7, "name": "x"}],
        "orders": [],
        "cashBalances": [{"amount": 50000.0}],
    }
    assert json.loads(encode_line(account_dict(EVENTS[1], 100.0))) == {
        "kind": "props",
        "entity_type": "fill",
        "event_type": "Created",
        "entity": {"id": 2, "orderId": 1, "price": 5000.25},
        "connection": 1,
        "time": 112.5,
    }
    # an entity built from another mapping still encodes (the hot path never raises)
    from types import MappingProxyType

    odd = EntityEvent("order", "Updated", MappingProxyType({"id": 1}), 2, 0.0)
    assert json.loads(encode_line(account_dict(odd)))["entity"] == {"id": 1}


def test_nats_subjects_and_loss_kinds() -> None:
    encoder = NatsEncoder(venue="tradovate", clock_offset=100.0)
    sync = encoder.encode(SNAPSHOT)
    assert (sync.subject, sync.kind) == ("ticks.tradovate.sync.7", "sync")
    assert json.loads(sync.payload) == json.loads(encode_line(account_dict(SNAPSHOT, 100.0)))
    props = [encoder.encode(event) for event in EVENTS]
    assert [p.subject for p in props] == [
        "ticks.tradovate.props.order",
        "ticks.tradovate.props.fill",
        "ticks.tradovate.props.cashBalance",
    ]
    assert {kind_of(SNAPSHOT), kind_of(EVENTS[0])} == {"sync", "props"}
    unknown = SyncSnapshot(None, {}, 1, 0.0)
    assert encoder.encode(unknown).subject == "ticks.tradovate.sync.unknown"


def retired_lines(directory: Path) -> list[dict[str, Any]]:
    (retired,) = directory.glob("account.*Z.jsonl")
    return [json.loads(line) for line in retired.read_text().splitlines()]


async def test_the_jsonl_sink_writes_a_line_per_update(tmp_path: Path, autojump_clock: Any) -> None:
    path = tmp_path / "account.jsonl"
    async with open_jsonl_sink(f"jsonl:{path}", clock_offset=100.0) as sink:
        sink.account([SNAPSHOT, *EVENTS])
        sink.event(HealthEvent("resynced", 13.0, 2, "again", {"counts": {"orders": 0}}))
        await sink.flush()
        assert sink.statistics()["lines"] == 5
    lines = await trio.to_thread.run_sync(retired_lines, tmp_path)
    assert [line["kind"] for line in lines] == ["sync", "props", "props", "props", "status"]
    assert lines[:4] == [
        json.loads(encode_line(account_dict(u, 100.0))) for u in [SNAPSHOT, *EVENTS]
    ]
    assert lines[4]["event"] == "resynced"


async def test_the_nats_sink_publishes_updates_in_order(nats_server: NatsServer) -> None:
    seen: list[HealthEvent] = []
    with trio.fail_after(30):
        async with open_nats_sink(
            nats_server.url, venue="tradovate", clock_offset=0.0, emit=seen.append
        ) as sink:
            sink.account([SNAPSHOT, *EVENTS])
    (closed,) = [e for e in seen if e.event == "sink_closed"]
    assert closed.detail["published"] == {"sync": 1, "props": 3}
    messages = await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.tradovate.>")
    assert [subject for subject, _ in messages] == [
        "ticks.tradovate.sync.7",
        "ticks.tradovate.props.order",
        "ticks.tradovate.props.fill",
        "ticks.tradovate.props.cashBalance",
    ]
    assert [payload for _, payload in messages] == [
        json.loads(encode_line(account_dict(u))) for u in [SNAPSHOT, *EVENTS]
    ]
