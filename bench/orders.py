"""Orders through the runner while the connection drops at the worst moments (issue 14).

``python bench/orders.py`` (about 4 minutes with the defaults), ``--json`` for one JSON
object on stdout; progress goes to stderr.

The Tradovate simulator runs in this process (its fault controls at hand, its counts
read directly); the runner (``python -m tickactors run --venue tradovate``) is a child
process with pipes for stdin and stdout, in real time. The script writes ``--orders``
stdin ``request order/placeorder {...}`` lines, each a market order with a client order
id of its own (``clOrdId``), and reads the runner's ``answer`` / ``request_failed``
lines. Before every ``--every``-th order it arms ``sim.faults.drop_after_order``,
alternately ``accepted=False`` (the connection drops before the venue accepts the order:
it never exists) and ``accepted=True`` (right after: it exists and fills, and the answer
never comes). ``--window`` orders may be out at once (default 1: each waits for the
previous one's line; more, and a drop also catches the normal orders in flight).

After a failure the script sends nothing until the runner says its next connection is
authorized (what a user who watches the ``authorized`` events does; an order sent with no
connection up fails at once, unsent). Before arming a drop it waits until the connection
has lived ``HEALTHY_AFTER`` seconds: the feed's backoff resets only after a healthy
connection, and otherwise twenty drops in a row would grow the reconnect delay to its
60 s cap. That wait is most of the run's time.

At the end the runner itself asks the venue for its state (``request user/syncrequest``)
and the script counts:

- orders sent (stdin lines), answered, failed (by reason), and for ``connection_lost``
  the time from sending to failing, as the runner measured it (``elapsed``): a drop must
  fail the order at once, far below the request timeout (Tradovate's, 10 s);
- **sent twice**: orders the venue received more than once
  (``sim.stats.orders_received``, per ``clOrdId``), must be 0: a request is never re-sent;
- orders that exist at the venue (commands with our ``clOrdId``) against answered +
  failed-but-applied: every answered order must exist, a drop before acceptance must
  leave none, a drop after it exactly one.

A benchmark, not a test: it reports; ``tests/test_runner_requests.py`` asserts the same
on the feed's clock.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import orjson
import trio

from _common import machine, percentile
from tickactors.sim import SimConfig, open_simulator

TOKEN = "bench-orders-token"
#: seconds a connection must live before a drop (the feed's healthy_after is 10 s)
HEALTHY_AFTER = 10.5
#: the runner's request deadline on Tradovate (the venue's default)
REQUEST_TIMEOUT = 10.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Runner:
    """The runner child: stdin lines out, its stdout lines parsed and sorted as they come."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.outcomes: dict[int, dict[str, Any]] = {}
        self.arrived: dict[int, trio.Event] = {}
        self.authorized_at: list[float] = []  # perf_counter() of each "authorized" line
        self.changed = trio.Event()  # set (and replaced) on every line that matters
        self.command_errors: list[str] = []
        #: "authorized" lines seen when the last failure came: up again once there are more
        self.down = 0

    async def send(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(text.encode())

    async def read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        while chunk := await self.process.stdout.receive_some(1 << 16):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                self._line(orjson.loads(raw))

    def _line(self, line: dict[str, Any]) -> None:
        kind, event = line["kind"], line.get("event")
        if kind in ("answer", "request_failed"):
            self.outcomes[line["id"]] = line
            self.arrived.setdefault(line["id"], trio.Event()).set()
            if line.get("reason") == "connection_lost":
                self.down = len(self.authorized_at)
        elif event == "authorized":
            self.authorized_at.append(time.perf_counter())
        elif event == "command_error":
            self.command_errors.append(line["message"])
        else:
            return
        self.changed.set()
        self.changed = trio.Event()

    async def outcome(self, number: int) -> dict[str, Any]:
        await self.arrived.setdefault(number, trio.Event()).wait()
        return self.outcomes[number]

    @property
    def up(self) -> bool:
        """A connection was authorized after the last failure."""
        return len(self.authorized_at) > self.down

    async def until(self, predicate: Any) -> None:
        while not predicate():
            await self.changed.wait()


def order_body(client_id: str) -> bytes:
    order = {
        "action": "Buy",
        "symbol": "ESZ6",
        "orderQty": 1,
        "orderType": "Market",
        "isAutomated": True,
        "clOrdId": client_id,
    }
    return orjson.dumps(order)


async def measure(orders: int, every: int, window: int, seed: int) -> dict[str, Any]:
    config = SimConfig(tokens={TOKEN}, tick_interval=0.5)
    dropped: dict[str, bool] = {}  # client id -> accepted before the drop?
    sent_at: dict[int, float] = {}
    async with open_simulator("tradovate", config=config, seed=seed) as sim:
        command = [sys.executable, "-m", "tickactors", "run", "--venue", "tradovate"]
        command += ["--url", sim.url, "--token", TOKEN, "--format", "jsonl", "--symbols", "ESZ6"]
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ)
        )
        runner = Runner(process)
        started = time.perf_counter()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runner.read)
                with trio.fail_after(120):
                    await runner.until(lambda: runner.authorized_at)
                limiter = trio.CapacityLimiter(window)

                async def wait_done(number: int) -> None:
                    await runner.outcome(number)
                    limiter.release_on_behalf_of(number)

                for number in range(1, orders + 1):
                    await limiter.acquire_on_behalf_of(number)
                    with trio.fail_after(300):  # the next connection is up
                        await runner.until(lambda: runner.up)
                    client_id = f"bench-{number}"
                    if number % every == 0:
                        healthy = runner.authorized_at[-1] + HEALTHY_AFTER
                        await trio.sleep(max(0.0, healthy - time.perf_counter()))
                        dropped[client_id] = accepted = (number // every) % 2 == 0
                        sim.faults.drop_after_order(accepted=accepted)
                    sent_at[number] = time.perf_counter()
                    await runner.send(
                        f"request order/placeorder {order_body(client_id).decode()}\n"
                    )
                    nursery.start_soon(wait_done, number)
                    if number % 10 == 0:
                        log(f"orders: {number}/{orders} sent")
                with trio.fail_after(REQUEST_TIMEOUT * 3):
                    for number in range(1, orders + 1):
                        await runner.outcome(number)
                    await runner.until(lambda: runner.up)
                await runner.send('request user/syncrequest {"users": [1]}\n')
                with trio.fail_after(REQUEST_TIMEOUT * 3):
                    synced = await runner.outcome(orders + 1)
                elapsed = time.perf_counter() - started
                process.send_signal(signal.SIGINT)
                with trio.fail_after(10):
                    exit_code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
        received = dict(sim.stats.orders_received)
        drops = sim.stats.closes["drop_after_order"]
    return tally(runner, orders, dropped, received, synced, drops, elapsed, exit_code)


def tally(
    runner: Runner,
    orders: int,
    dropped: dict[str, bool],
    received: dict[str, int],
    synced: dict[str, Any],
    drops: int,
    elapsed: float,
    exit_code: int,
) -> dict[str, Any]:
    outcomes = {f"bench-{n}": runner.outcomes[n] for n in range(1, orders + 1)}
    answered = {c for c, o in outcomes.items() if o["kind"] == "answer"}
    failed = {c: o for c, o in outcomes.items() if o["kind"] == "request_failed"}
    reasons: dict[str, int] = {}
    for outcome in failed.values():
        reasons[outcome["reason"]] = reasons.get(outcome["reason"], 0) + 1
    lost_ms = [o["elapsed"] * 1000 for o in failed.values() if o["reason"] == "connection_lost"]
    answer_ms = [outcomes[c]["elapsed"] * 1000 for c in answered]
    at_venue = {c["clOrdId"] for c in synced.get("data", {}).get("commands", []) if "clOrdId" in c}
    at_venue &= set(outcomes)
    before = {c for c, accepted in dropped.items() if not accepted}
    after = {c for c, accepted in dropped.items() if accepted}
    return {
        "orders_sent": orders,
        "answered": len(answered),
        "failed": reasons,
        "failed_fast": sum(1 for ms in lost_ms if ms < REQUEST_TIMEOUT * 1000 / 10),
        "connection_lost_ms_p50": round(percentile(lost_ms, 0.5), 2) if lost_ms else None,
        "connection_lost_ms_max": round(max(lost_ms), 2) if lost_ms else None,
        "request_timeout_ms": REQUEST_TIMEOUT * 1000,
        "answer_ms_p50": round(percentile(answer_ms, 0.5), 2) if answer_ms else None,
        "answer_ms_p99": round(percentile(answer_ms, 0.99), 2) if answer_ms else None,
        "sent_twice": sum(1 for count in received.values() if count > 1),
        "never_received": len(set(outcomes) - set(received)),
        "drops_armed_before_accept": len(before),
        "drops_armed_after_accept": len(after),
        "connections_dropped": drops,
        "at_venue": len(at_venue),
        "answered_at_venue": len(answered & at_venue),
        "answered_missing_at_venue": len(answered - at_venue),
        "failed_at_venue": len(set(failed) & at_venue),
        "failed_not_at_venue": len(set(failed) - at_venue),
        "dropped_before_accept_at_venue": len(before & at_venue),
        "dropped_after_accept_at_venue": len(after & at_venue),
        "command_errors": len(runner.command_errors),
        "seconds": round(elapsed, 1),
        "runner_exit": exit_code,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python bench/orders.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--orders", type=int, default=100, help="orders to place (default 100)")
    parser.add_argument("--every", type=int, default=5, help="drop at every Nth order (default 5)")
    parser.add_argument("--window", type=int, default=1, help="orders out at once (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the simulator's seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.every < 1 or args.window < 1:
        parser.error("--orders, --every and --window are at least 1")
    result = trio.run(measure, args.orders, args.every, args.window, args.seed)
    if args.json:
        print(json.dumps({"machine": machine(), "orders": result}))
        return
    for key, value in result.items():
        print(f"{key:34} {value}")


if __name__ == "__main__":
    main()
