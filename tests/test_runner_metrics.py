"""``--metrics``: the runner serves Prometheus' text format over HTTP, and the values move.

The runner runs as a subprocess against the simulator (in this test's Trio run), on a
port the system picks (``--metrics 127.0.0.1:0``; the ``metrics`` status line names
it). Each scrape is a real HTTP GET on loopback, parsed with prometheus_client's own
parser, the way Prometheus reads it. Real time, bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tickactors.sim import SimConfig, open_simulator

from .test_runner import TOKEN, Child, start

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


async def scrape(url: str) -> Samples:
    content_type, text = await trio.to_thread.run_sync(_get, url)
    assert content_type.startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


async def until(
    url: str, name: str, at_least: float, timeout: float = 20, **labels: str
) -> Samples:
    """Scrape every 0.2 s until ``name{labels}`` reaches ``at_least``."""
    with trio.fail_after(timeout):
        while True:
            samples = await scrape(url)
            if value(samples, name, **labels) >= at_least:
                return samples
            await trio.sleep(0.2)


async def metrics_url(child: Child) -> str:
    status = await child.wait_for(lambda o: o["kind"] == "status" and o["event"] == "metrics")
    url = status["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    assert not url.endswith(":0/metrics")  # the port the system picked
    return url


async def test_the_runner_serves_metrics_and_they_move():
    async with open_simulator("alltick", config=SimConfig(tokens={TOKEN}), seed=5) as sim:
        child = await start(
            sim.url, "--symbols", "BTCUSDT,EURUSD", "--book-symbols", "BTCUSDT",
            "--metrics", "127.0.0.1:0",
        )  # fmt: skip
        async with child:
            url = await metrics_url(child)
            first = await until(url, "tickactors_ticks_total", 1, connection="0")
            assert value(first, "tickactors_connections", state="connected") == 1
            labels = {"feed": "alltick", "venue": "alltick"}
            assert value(first, "tickactors_subscriptions", stream="book", state="desired") == 1
            assert value(first, "process_cpu_seconds_total") > 0  # the process collectors
            ticks = value(first, "tickactors_ticks_total", connection="0", **labels)
            await until(url, "tickactors_ticks_total", ticks + 1, connection="0")

            sim.faults.drop()  # TCP reset, no close frame
            dropped = await until(url, "tickactors_reconnects_total", 1, cause="drop")
            assert value(dropped, "tickactors_reconnects_total", cause="kick") == 0
            # counted when the connection ended: the next one opens after the backoff
            await until(url, "tickactors_connections", 1, state="connected")
            sim.faults.kick()  # 606, then close frame 1008
            kicked = await until(url, "tickactors_reconnects_total", 1, cause="kick")
            assert value(kicked, "tickactors_reconnects_total", cause="drop") == 1
            assert value(kicked, "tickactors_events_total", event="disconnected") == 2
            await until(url, "tickactors_connections", 1, state="connected")

            child.process.send_signal(signal.SIGINT)
            with trio.fail_after(5):
                assert await child.process.wait() == 0
        with pytest.raises(urllib.error.URLError):  # the endpoint closed with the runner
            await trio.to_thread.run_sync(_get, url)


async def test_a_port_in_use_is_refused_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        child = await start("ws://127.0.0.1:1/quote-b-ws-api", "--metrics", str(port),
                            stderr=subprocess.PIPE)  # fmt: skip
        async with child:
            error = await child.wait_for(lambda o: o["kind"] == "status" and o["event"] == "error")
            with trio.fail_after(10):
                assert await child.process.wait() == 2
            assert child.process.stderr is not None
            err = (await child.process.stderr.receive_some(65536)).decode()
            await child.process.stderr.aclose()
    assert error["message"].startswith(f"--metrics: cannot listen on http://127.0.0.1:{port}: ")
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"error: {error['message']}"]


@pytest.mark.slow
async def test_the_demo_serves_metrics_too():
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tickactors", "--duration", "6", "--metrics", "0",
         "--format", "jsonl", "--no-script"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    async with Child(process) as child:
        url = await metrics_url(child)
        samples = await until(url, "tickactors_ticks_total", 1, connection="0")
        assert value(samples, "tickactors_connections", state="connected") == 1
        with trio.fail_after(15):
            assert await process.wait() == 0
