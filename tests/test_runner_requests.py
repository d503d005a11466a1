"""The runner's stdin ``request`` lines: answers, failures, ids, refusals, never a resend.

The runner's own code path (``run_feed`` reading a real pipe as its stdin, the JSON-lines
writer) runs in this Trio run against the in-process Tradovate simulator, under the
autojump clock, so deadlines (the 10 s request timeout) cost nothing and the time from
a request to its failure is measured on the feed's clock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import trio

from tickactors._cli import user_requests
from tickactors._cli.commands import CommandError, RequestCommand, parse_command
from tickactors._cli.fanout import Fanout
from tickactors._cli.output import JsonLines, MemoryLines, TextLines
from tickactors._cli.request_outcome import RequestOutcome
from tickactors._cli.run import apply_line, run_feed
from tickactors._core.shard_share import Shard
from tickactors._feed.feed import Feed
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

TOKEN = "requests-SECRET-5b5b"
Line = dict[str, Any]


def args(**over: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "symbols": "ESZ6",
        "book_symbols": "",
        "duration": None,
        "stale_after": None,
        "symbol_stale_after": None,
        "seed": 1,
        "policy": None,
        "shard": None,
        "sink": None,
        "buffer": None,
    }
    base.update(over)
    return argparse.Namespace(**base)


class _Stdin:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


class Runner:
    """``run_feed`` in this Trio run: stdin a pipe we write, stdout lines in memory."""

    def __init__(self, write_end: int) -> None:
        self._stdin = write_end
        self.out = MemoryLines()
        self.writer = JsonLines(self.out, clock_offset=0.0)
        self.feeds: list[Feed] = []
        self.code: int | None = None
        self._parsed: list[Line] = []
        self._taken = 0

    def send(self, text: str) -> None:
        os.write(self._stdin, text.encode())

    def close_stdin(self) -> None:
        os.close(self._stdin)

    @property
    def lines(self) -> list[Line]:
        data = self.out.data
        end = data.rfind(b"\n") + 1
        if end > self._taken:
            self._parsed += [orjson.loads(x) for x in data[self._taken : end].splitlines()]
            self._taken = end
        return self._parsed

    async def wait_for(self, predicate: Callable[[Line], bool], timeout: float = 120) -> Line:
        with trio.fail_after(timeout):
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                await trio.sleep(0.01)

    async def outcome(self, number: int, timeout: float = 120) -> Line:
        return await self.wait_for(
            lambda o: o["kind"] in ("answer", "request_failed") and o["id"] == number, timeout
        )

    def count(self, event: str) -> int:
        return sum(1 for line in self.lines if line.get("event") == event)


@asynccontextmanager
async def running(
    venue: Any, monkeypatch: pytest.MonkeyPatch, **over: Any
) -> AsyncIterator[Runner]:
    """The runner on ``venue`` while the body runs; then stdin closes and it is cancelled."""
    read_end, write_end = os.pipe()
    monkeypatch.setattr(sys, "stdin", _Stdin(read_end))
    runner = Runner(write_end)
    try:
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                runner.code = await run_feed(
                    venue, args(**over), runner.writer, extra=lambda f, _: runner.feeds.append(f)
                )

            nursery.start_soon(run)
            yield runner
            nursery.cancel_scope.cancel()
    finally:
        os.close(read_end)
        with contextlib.suppress(OSError):  # closed by the test
            os.close(write_end)


def tradovate(sim: Any) -> Tradovate:
    return Tradovate(url=sim.url, token=TOKEN)


def config() -> SimConfig:
    return SimConfig(tokens={TOKEN}, tick_interval=1.0)


ORDER = {"action": "Buy", "symbol": "ESZ6", "orderQty": 1, "orderType": "Market"}


def order_line(client_id: str) -> str:
    body = orjson.dumps({**ORDER, "clOrdId": client_id, "isAutomated": True}).decode()
    return f"request order/placeorder {body}\n"


async def ready(runner: Runner, authorized: int = 1) -> None:
    """Until the ``authorized``-th connection is authorized and ESZ6 subscribed on it."""
    await runner.wait_for(lambda o: o.get("event") == "subscribed")
    with trio.fail_after(600):
        while runner.count("authorized") < authorized:  # noqa: ASYNC110 (lines in memory)
            await trio.sleep(0.01)


# ---- against the simulator ----------------------------------------------------------


async def test_answers_rejections_bad_lines_and_ids(autojump_clock, monkeypatch):
    async with open_simulator("tradovate", config=config(), seed=1) as sim:
        async with running(tradovate(sim), monkeypatch) as runner:
            await ready(runner)
            runner.send(
                order_line("c-1")
                + "request\n"  # no endpoint
                + 'request {"action": "Buy"}\n'  # a body, no endpoint
                + 'request order/placeorder {"action": "Buy",\n'  # not JSON
                + "request contract/find name=ESZ6 extra\n"  # a second query word
                + "request order/frobnicate {}\n"
                + "request\tcontract/find\tname=ESZ6\n"
                + 'request product/find name=ES ["body", "after", "the query"]\n'
            )
            placed = await runner.outcome(1)
            rejected = await runner.outcome(2)
            found = await runner.outcome(3)
            both = await runner.outcome(4)
            lines = runner.lines
    # every line acknowledged in stdin order: ids only for the requests sent
    acks = [
        (o["event"], o.get("id"), o.get("request"))
        for o in lines
        if o.get("event") in ("command", "command_error")
    ]
    assert acks == [
        ("command", 1, "order/placeorder"),
        ("command_error", None, None),
        ("command_error", None, None),
        ("command_error", None, None),
        ("command_error", None, None),
        ("command", 2, "order/frobnicate"),
        ("command", 3, "contract/find"),
        ("command", 4, "product/find"),
    ]
    errors = [o["message"] for o in lines if o.get("event") == "command_error"]
    assert "the endpoint is missing" in errors[0] and "the endpoint is missing" in errors[1]
    assert "request order/placeorder: the body is not JSON" in errors[2]
    assert "unexpected 'extra' after the query" in errors[3]
    # each outcome is one line of its own kind, with the id of its command line
    assert placed["kind"] == "answer" and placed["request"] == "order/placeorder"
    assert placed["status"] == 200 and isinstance(placed["data"]["orderId"], int)
    assert placed["elapsed"] >= 0 and placed["time"] > 0
    assert rejected == {
        "kind": "request_failed",
        "request": "order/frobnicate",
        "id": 2,
        "reason": "rejected",
        "code": 404,
        "message": "Unknown operation: order/frobnicate",
        "elapsed": rejected["elapsed"],
        "time": rejected["time"],
    }
    assert found["kind"] == "answer" and found["data"]["name"] == "ESZ6"
    assert both["kind"] == "answer" and both["data"]["name"] == "ES"  # the query was used
    # nothing of the refused lines reached the venue; each request went once
    endpoints = sim.stats.requests_by_endpoint
    assert endpoints["order/placeorder"] == 1 and endpoints["order/frobnicate"] == 1
    assert endpoints["product/find"] == 1 and endpoints["contract/find"] == 2  # + the feed's
    assert dict(sim.stats.orders_received) == {"c-1": 1}


async def test_a_swallowed_request_times_out_at_the_deadline(autojump_clock, monkeypatch):
    async with open_simulator("tradovate", config=config(), seed=2) as sim:
        async with running(tradovate(sim), monkeypatch) as runner:
            await ready(runner)
            sim.faults.drop_requests(1)
            runner.send(order_line("c-slow") + "request contract/find name=NQZ6\n")
            failed = await runner.outcome(1)
            after = await runner.outcome(2)
    assert failed["reason"] == "timeout" and failed["request"] == "order/placeorder"
    assert 10.0 <= failed["elapsed"] < 10.5  # Tradovate's request_timeout, 10 s
    assert after["kind"] == "answer"  # the other request was not held up by it
    assert after["elapsed"] < 1.0
    assert sim.stats.orders_received["c-slow"] == 1


@pytest.mark.parametrize("accepted", [False, True])
async def test_a_drop_fails_the_order_at_once_and_it_is_never_sent_again(
    autojump_clock, monkeypatch, accepted
):
    async with open_simulator("tradovate", config=config(), seed=3) as sim:
        async with running(tradovate(sim), monkeypatch) as runner:
            await ready(runner)
            sim.faults.drop_after_order(accepted=accepted)
            runner.send(order_line("c-drop"))
            failed = await runner.outcome(1)
            await ready(runner, authorized=2)  # the feed reconnected
            await trio.sleep(30)  # time for a resend, if there were one
            runner.send('request user/syncrequest {"users": [1]}\n')
            synced = await runner.outcome(2)
    assert failed["kind"] == "request_failed" and failed["reason"] == "connection_lost"
    assert failed["elapsed"] < 0.1  # at once, not after the 10 s deadline
    assert sim.stats.closes["drop_after_order"] == 1
    assert sim.stats.orders_received["c-drop"] == 1  # sent once, never again
    ids = [c.get("clOrdId") for c in synced["data"]["commands"]]
    assert ids == (["c-drop"] if accepted else [])


async def test_a_request_out_when_the_runner_stops_ends_closed(autojump_clock, monkeypatch):
    async with open_simulator("tradovate", config=config(), seed=4) as sim:
        async with running(tradovate(sim), monkeypatch, duration=5.0) as runner:
            await ready(runner)
            sim.faults.drop_requests(1)
            runner.send(order_line("c-late"))
            failed = await runner.outcome(1)
            await runner.wait_for(lambda o: o.get("event") == "stopped")
    assert failed["reason"] == "closed" and "stopped before an answer" in failed["message"]
    assert runner.code == 0


async def test_a_captcha_fails_the_request_and_stops_the_runner(autojump_clock, monkeypatch):
    async with open_simulator("tradovate", config=config(), seed=8) as sim:
        async with running(tradovate(sim), monkeypatch) as runner:
            await ready(runner)
            sim.faults.p_ticket(1, p_time=60, captcha=True)
            runner.send(order_line("c-captcha"))
            failed = await runner.outcome(1)
            fatal = await runner.wait_for(lambda o: o.get("event") == "fatal")
    assert failed["reason"] == "captcha" and "requires a captcha" in failed["message"]
    assert fatal["error"] == "CaptchaRequiredError" and runner.code == 1


async def test_alltick_takes_no_requests(autojump_clock, monkeypatch):
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=5) as sim:
        venue = AllTick(url=sim.url, token=TOKEN)
        async with running(venue, monkeypatch, symbols="BTCUSDT") as runner:
            await runner.wait_for(lambda o: o.get("event") == "subscribed")
            before = dict(sim.stats.requests_by_cmd)
            runner.send('request order/placeorder {"x": 1}\n')
            error = await runner.wait_for(lambda o: o.get("event") == "command_error")
            await trio.sleep(30)
            lines = runner.lines
        after = dict(sim.stats.requests_by_cmd)
        assert after.pop(22000) > before.pop(22000, 0)  # heartbeats went on; nothing else did
        assert after == before
    assert error["message"] == (
        "request order/placeorder: AllTick has no requests beyond subscriptions and heartbeats"
    )
    assert not [o for o in lines if o["kind"] in ("answer", "request_failed")]
    assert not [o for o in lines if o.get("event") == "command"]


async def test_requests_beyond_the_bound_are_refused(autojump_clock, monkeypatch):
    monkeypatch.setattr(user_requests, "MAX_IN_FLIGHT", 2)
    async with open_simulator("tradovate", config=config(), seed=6) as sim:
        async with running(tradovate(sim), monkeypatch) as runner:
            await ready(runner)
            sim.faults.drop_requests(2)
            runner.send("".join(order_line(f"c-{n}") for n in range(3)))
            refused = await runner.wait_for(lambda o: o.get("event") == "command_error")
            await runner.outcome(2)
            runner.send(order_line("c-3"))  # room again
            again = await runner.outcome(3)
    assert "2 requests are waiting for an answer already; not sent" in refused["message"]
    assert again["kind"] == "answer"
    assert dict(sim.stats.orders_received) == {"c-0": 1, "c-1": 1, "c-3": 1}


@pytest.mark.slow
async def test_orders_under_drops_are_never_sent_twice(autojump_clock, monkeypatch):
    """The measurement of ``bench/orders.py`` on the feed's clock: 100 orders, every 5th
    dropped, alternately before the venue accepts it and right after."""
    orders, every = 100, 5
    dropped: dict[str, bool] = {}  # client order id -> accepted before the drop?
    outcomes: dict[str, Line] = {}
    async with open_simulator("tradovate", config=config(), seed=7) as sim:
        async with running(tradovate(sim), monkeypatch) as runner:
            await ready(runner)
            connections = 1
            for number in range(1, orders + 1):
                client_id = f"o-{number}"
                if number % every == 0:
                    dropped[client_id] = accepted = (number // every) % 2 == 0
                    sim.faults.drop_after_order(accepted=accepted)
                runner.send(order_line(client_id))
                outcomes[client_id] = outcome = await runner.outcome(number)
                if outcome["kind"] == "request_failed":
                    connections += 1
                    await ready(runner, connections)  # the next order goes on a connection
            runner.send('request user/syncrequest {"users": [1]}\n')
            synced = await runner.outcome(orders + 1)
    answered = {c for c, o in outcomes.items() if o["kind"] == "answer"}
    failed = {c: o for c, o in outcomes.items() if o["kind"] == "request_failed"}
    at_venue = {c["clOrdId"] for c in synced["data"]["commands"] if "clOrdId" in c}
    assert len(outcomes) == orders and set(failed) == set(dropped)
    assert {o["reason"] for o in failed.values()} == {"connection_lost"}
    assert max(o["elapsed"] for o in failed.values()) < 0.1  # the deadline is 10 s
    received = sim.stats.orders_received
    assert set(received) == set(outcomes) and set(received.values()) == {1}  # none twice
    after = {c for c, accepted in dropped.items() if accepted}
    assert at_venue == answered | after and len(after) == orders // every // 2
    assert sim.stats.closes["drop_after_order"] == len(dropped)


# ---- the pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("request order/list", RequestCommand("order/list")),
        ("  request  contract/find  name=ESZ6 ", RequestCommand("contract/find", "name=ESZ6")),
        ('request a/b {"k": "two words"}', RequestCommand("a/b", "", {"k": "two words"})),
        ("request a/b q=1\t[1, 2]", RequestCommand("a/b", "q=1", [1, 2])),
        ("REQUEST a/b", RequestCommand("a/b")),
    ],
)
def test_request_lines_parse(line: str, command: RequestCommand) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("request", "the endpoint is missing"),
        ("request [1]", "the endpoint is missing"),
        ("request a/b {", "the body is not JSON"),
        ('request a/b {"k": 1} tail', "the body is not JSON"),
        ("request a/b q=1 r=2", "unexpected 'r=2' after the query"),
        ("request a/b\x0bc", "holds a control character"),
    ],
)
def test_bad_request_lines_are_refused(line: str, error: str) -> None:
    with pytest.raises(CommandError, match=error):
        parse_command(line)


async def test_with_shards_only_shard_0_sends_requests() -> None:
    venue = Tradovate(url="wss://127.0.0.1:1/v1/websocket", token=TOKEN)
    for index in (1, 0):
        status: list[tuple[str, dict[str, Any]]] = []
        sent: list[Any] = []
        started: list[Any] = []
        tracker = SimpleNamespace(inbox=SimpleNamespace(send_nowait=sent.append))
        feed: Any = SimpleNamespace(venue=venue, _closed=False, _tracker=tracker)
        writer: Any = SimpleNamespace(status=lambda e, m="", _s=status, **d: _s.append((e, d)))
        nursery: Any = SimpleNamespace(start_soon=lambda *a, _s=started: _s.append(a))
        shard = Shard(index, 2)
        requests = user_requests.UserRequests(feed, writer, nursery, shard)
        apply_line(feed, writer, b"request order/list", shard, requests=requests)
        if index == 1:  # left to shard 0: no id, nothing sent
            assert status == [("command", {"request": "order/list", "others": 1})]
            assert sent == started == []
        else:
            assert status == [("command", {"id": 1, "request": "order/list", "others": 0})]
            assert [m.endpoint for m in sent] == ["order/list"] and len(started) == 1


def test_outcomes_in_text_and_in_the_sinks() -> None:
    answer = RequestOutcome(7, "order/placeorder", 0.25, status=200, data={"orderId": 3})
    failed = RequestOutcome(8, "x/y", 0.5, reason="rejected", code=404, message="Not found")
    out = MemoryLines()
    text = TextLines(out)
    text.request_outcome(answer)
    text.request_outcome(failed)
    assert out.text().splitlines() == [
        '[answer]  request=order/placeorder id=7 status=200 data={"orderId":3} elapsed=0.25',
        "[request_failed] Not found request=x/y id=8 reason=rejected code=404 elapsed=0.5",
    ]
    records: list[tuple[str, str, dict[str, Any]]] = []
    sink = SimpleNamespace(status=lambda e, m="", **d: records.append((e, m, d)))
    stdout_lines = MemoryLines()
    fanout = Fanout(JsonLines(stdout_lines))
    fanout._add(sink)  # type: ignore[arg-type]  # a sink's status() is all it needs
    fanout.request_outcome(answer)
    fanout.request_outcome(failed)
    assert records == [
        ("answer", "", answer.detail()),
        ("request_failed", "Not found", failed.detail()),
    ]
    stdout = [orjson.loads(x) for x in stdout_lines.data.splitlines()]
    assert [o["kind"] for o in stdout] == ["answer", "request_failed"]
