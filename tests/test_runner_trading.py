"""The runner on Tradovate's trading socket: ``--sync`` prints the account as JSON lines.

A subprocess in real time, like ``test_runner_tradovate.py``; the simulator runs in the
test's own Trio run, and an order placed over its REST API (same user) makes the events.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_probe import rest

from .test_runner import start
from .test_runner_tradovate import TOKEN, environment, sigint_exits_0

FILLED_TYPES = ["order", "command", "orderVersion", "commandReport", "executionReport",
                "order", "executionReport", "fill", "position", "cashBalance", "order"]  # fmt: skip


async def test_sync_prints_a_sync_line_then_props_lines_to_stdout_and_the_sink(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture" / "account.jsonl"
    stderr = tmp_path / "stderr"
    async with open_simulator("tradovate", config=SimConfig(tokens={TOKEN}), seed=31) as sim:
        with stderr.open("wb") as err:
            child = await start(
                sim.url,
                "--sync",
                "--sink",
                f"jsonl:{capture}",
                venue="tradovate",
                auth=("--token", TOKEN),
                env=environment(),
                stderr=err,
            )
        async with child:
            sync = await child.wait_for(lambda o: o["kind"] == "sync")
            user = sim.tradovate.accounts.user("sim-user")
            assert sync["user_id"] == user.id and sync["connection"] == 1
            assert sync["entities"]["users"][0]["id"] == user.id
            assert sync["entities"]["orders"] == []
            token = sim.tradovate.accounts.issue("sim-user").access
            order = {"action": "Buy", "symbol": "ESZ6", "orderQty": 1, "orderType": "Market"}
            status, placed = await rest(
                sim.port, "POST", "/v1/order/placeOrder", order, token=token
            )
            assert status == 200
            props = []
            while len(props) < len(FILLED_TYPES):
                props.append(await child.wait_for(lambda o: o["kind"] == "props"))
            assert [p["entity_type"] for p in props] == FILLED_TYPES
            assert props[-1]["entity"] == {**props[-1]["entity"], "id": placed["orderId"]}
            assert props[-1]["event_type"] == "Updated"
            assert props[-1]["entity"]["ordStatus"] == "Filled"
            assert {"time", "connection"} <= props[0].keys()
            (conn,) = sim.connections
            sent = [request[1] for request in conn.requests]
            assert sent[:3] == ["authorize", "auth/me", "user/syncrequest"]
            await sigint_exits_0(child)
        assert "nothing to subscribe" not in stderr.read_text()  # --sync is something to do
    files = sorted(capture.parent.glob("account*.jsonl"))
    lines = [json.loads(line) for file in files for line in file.read_text().splitlines()]
    account = [line for line in lines if line["kind"] in ("sync", "props")]
    assert account[0] == sync and account[1:] == props  # the sink got what stdout got


async def run_refused(*args: str) -> tuple[int, str]:
    done = await trio.run_process(
        [sys.executable, "-m", "tickactors", "run", "--format", "jsonl", *args],
        env=environment(),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, done.stderr.decode()


async def test_sync_is_refused_where_there_is_no_account() -> None:
    alltick = ("--venue", "alltick", "--url", "ws://127.0.0.1:1/x", "--token", "t", "--sync")
    code, err = await run_refused(*alltick)
    assert code == 2 and "--sync: for --venue tradovate only" in err
    md = ("--venue", "tradovate", "--url", "wss://md.tradovateapi.com/v1/websocket")
    code, err = await run_refused(*md, "--token", "t", "--sync")
    assert code == 2 and "market-data socket keeps no account" in err
    code, err = await run_refused(*md, "--token", "t", "--user-id", "5")
    assert code == 2 and "--user-id: needs --sync" in err


async def test_text_and_live_formats_show_account_updates_too() -> None:
    from tickactors import EntityEvent, SyncSnapshot
    from tickactors._cli.live_view import LiveView
    from tickactors._cli.output import MemoryLines, TextLines

    snapshot = SyncSnapshot(7, {"orders": ({"id": 1},), "fills": ()}, 1, 0.0)
    event = EntityEvent("order", "Updated", {"id": 1, "ordStatus": "Filled\x1b[2J"}, 1, 0.5)
    out = MemoryLines()
    await TextLines(out).account([snapshot, event])
    assert out.text().splitlines() == [
        "sync  user 7 conn 1 orders=1",
        "props order Updated id=1 Filled\\x1b[2J",  # the venue's text cannot drive a terminal
    ]
    view = LiveView("t")
    await view.account([snapshot, event])
    assert [line[2:4] for line in view._events] == [
        ("sync", "user 7 conn 1 orders=1"),
        ("props", "order Updated id=1 Filled\\x1b[2J"),
    ]
