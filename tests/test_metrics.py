"""The Prometheus collector (``tickactors.FeedCollector``) against the fake venue.

Under the autojump clock the counters are exact: a scrape here is
``prometheus_client.generate_latest`` on a registry of the test's own, parsed back with
``prometheus_client.parser.text_string_to_metric_families``, the way Prometheus reads it.
The runner's HTTP endpoint, in real time against the simulator, is in
``tests/test_runner_metrics.py``.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import tickactors
from tickactors import ConnectError, IssuedToken, Secret, TransportClosed
from tickactors._actors.session import AuthRefused, StaleConnection, VenueClosed
from tickactors._actors.supervisor import RECONNECT_CAUSES, reconnect_cause
from tickactors._feed.metrics import METRICS, FeedCollector
from tickactors.venues import AllTick

from .fake_venue import FakeNetwork, FakeTransport
from .test_feed_rotation import rotating_feed

URL = "ws://127.0.0.1:9/quote-b-ws-api"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def scrape(registry: CollectorRegistry) -> Samples:
    return parse(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample ``name`` whose labels include ``labels``."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def venue() -> AllTick:
    return AllTick(url=URL, token="tok")


async def test_every_family_is_exposed_with_its_labels(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        registry = CollectorRegistry()
        FeedCollector(feed, registry=registry)
        with trio.fail_after(60):  # virtual seconds: a mistake fails, never spins
            conn = await net.wait_connections(1)
            feed.subscribe("A")
            await conn.wait_sent(1)
            conn.answer(conn.requests(22004)[0])
            await feed.wait_confirmed("A")
        text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for spec in METRICS:
        family = families[spec.name]
        assert family.type == spec.type
        typed = spec.sample_names[0] if spec.type == "counter" else spec.name
        assert text.count(f"# TYPE {typed} {spec.type}\n") == 1
        if spec.name == "tickactors_token_expires_in_seconds":
            assert family.samples == []  # AllTick's token never expires
            continue
        assert family.samples, spec.name
        for sample in family.samples:
            assert sample.name in spec.sample_names
            expected = {"feed", "venue", *spec.labels}
            if spec.type == "histogram" and sample.name.endswith("_bucket"):
                expected.add("le")
            assert set(sample.labels) == expected, sample
            assert sample.labels["feed"] == "alltick" and sample.labels["venue"] == "alltick"


async def test_values_move_with_the_feed(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        registry = CollectorRegistry()
        FeedCollector(feed, registry=registry)
        conn = await net.wait_connections(1)
        await trio.testing.wait_all_tasks_blocked()  # the supervisor has seen it open
        before = scrape(registry)
        assert value(before, "tickactors_connections", state="connected") == 1
        assert value(before, "tickactors_connections", state="backoff") == 0
        assert value(before, "tickactors_ticks_total", connection="0") == 0

        feed.subscribe("A", "B")
        with trio.fail_after(60):
            await conn.wait_sent(1)
            await trio.sleep(0.25)  # the venue takes a quarter of a second to answer
            conn.answer(conn.requests(22004)[0])
            await feed.wait_confirmed("A", "B")
            for seq in range(1, 4):
                conn.trade("A", seq=seq)
            conn.trade("GHOST")
            batch = await feed.get_batch()
        assert len(batch) == 3
        await trio.sleep(7)
        after = scrape(registry)
        assert value(after, "tickactors_ticks_total", connection="0") == 3
        assert value(after, "tickactors_ghost_ticks_total", connection="0") == 1
        assert value(after, "tickactors_frames_received_total", connection="0") == 5
        assert value(after, "tickactors_last_message_age_seconds", connection="0") == 7.0
        for state, count in (("desired", 2), ("confirmed", 2), ("rejected", 0)):
            labels = {"stream": "trades", "state": state}
            assert value(after, "tickactors_subscriptions", **labels) == count
        assert value(after, "tickactors_requests_total", outcome="answered") == 1
        latency = {"request": "subscription"}
        assert value(after, "tickactors_request_latency_seconds_count", **latency) == 1
        assert value(after, "tickactors_request_latency_seconds_sum", **latency) == 0.25
        assert value(after, "tickactors_request_latency_seconds_bucket", le="0.1", **latency) == 0
        assert value(after, "tickactors_request_latency_seconds_bucket", le="0.25", **latency) == 1
        assert value(after, "tickactors_request_latency_seconds_bucket", le="+Inf", **latency) == 1
        assert value(after, "tickactors_events_total", event="subscribed") == 1
        assert value(after, "tickactors_events_total", event="stale") == 0

        await trio.sleep(3.5)  # the first heartbeat (10 s), on time under the mock clock
        beat = scrape(registry)
        lateness = {"connection": "0"}
        assert value(beat, "tickactors_heartbeat_lateness_seconds_count", **lateness) == 1
        assert value(beat, "tickactors_heartbeat_lateness_seconds_sum", **lateness) == 0
        assert value(beat, "tickactors_heartbeat_lateness_seconds_bucket", le="0.001") == 1


async def test_reconnects_are_counted_by_cause_on_a_stable_connection_label(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=5, seed=2) as feed:
        registry = CollectorRegistry()
        FeedCollector(feed, registry=registry)

        def reconnects() -> dict[str, float]:
            samples = scrape(registry)
            return {
                cause: value(samples, "tickactors_reconnects_total", connection="0", cause=cause)
                for cause in RECONNECT_CAUSES
            }

        assert set(reconnects().values()) == {0}
        with trio.fail_after(600):
            (await net.wait_connections(1)).close_by_peer(1006)  # lost without a close frame
            (await net.wait_connections(2)).close_by_peer(1008)  # the venue's close frame
            net.refuse = 1
            await net.wait_connections(3)  # one refused attempt, then a silent connection
            await net.wait_connections(4)  # that one went stale after 5 s
        counts = reconnects()
        assert counts == {**dict.fromkeys(RECONNECT_CAUSES, 0), "drop": 1, "kick": 1} | {
            "connect_failed": 1,
            "stale": 1,
        }
        assert feed.statistics()["connection"]["reconnects"] == counts
        samples = scrape(registry)
        # one slot, whatever the connection numbers (the fourth connection is coming)
        slots = {dict(ls)["connection"] for (n, ls) in samples if n == "tickactors_ticks_total"}
        assert slots == {"0"}
        assert value(samples, "tickactors_events_total", event="stale") == 1


class ExpiringTokens:
    """A 120 s token; the second fetch fails, the third works."""

    def __init__(self) -> None:
        self.fetches = 0
        self.failed = trio.Event()

    async def fetch(self) -> IssuedToken:
        self.fetches += 1
        if self.fetches == 2:
            self.failed.set()
            raise OSError("token endpoint down")
        return IssuedToken(Secret(f"tok-{self.fetches}"), lifetime=120.0)


async def test_the_token_metrics_follow_its_life(autojump_clock):
    net = FakeNetwork()
    source = ExpiringTokens()
    options = dict(transport_factory=net, stale_after=1000)
    async with tickactors.open_feed(AllTick(url=URL, token=source), **options) as feed:
        registry = CollectorRegistry()
        FeedCollector(feed, registry=registry)
        await net.wait_connections(1)
        fetched_at = trio.current_time()
        await trio.sleep(20)
        samples = scrape(registry)
        assert value(samples, "tickactors_token_expires_in_seconds") == 100.0
        assert value(samples, "tickactors_token_refreshes_total") == 1
        assert value(samples, "tickactors_token_refresh_failures_total") == 0
        with trio.fail_after(600):
            await source.failed.wait()  # renewed 30 s before expiry: that fetch fails
        await trio.testing.wait_all_tasks_blocked()
        samples = scrape(registry)
        assert value(samples, "tickactors_token_refresh_failures_total") == 1
        assert value(samples, "tickactors_token_consecutive_failures") == 1
        expires_in = value(samples, "tickactors_token_expires_in_seconds")
        assert expires_in == fetched_at + 120 - trio.current_time()
        assert value(samples, "tickactors_events_total", event="token_failed") == 1


async def test_a_rotation_is_a_reconnect_with_cause_rotation(autojump_clock):
    async with rotating_feed(4) as run:
        registry = CollectorRegistry()
        FeedCollector(run.feed, registry=registry)
        run.feed.subscribe("A")
        await run.wait_event("rotated")
        samples = scrape(registry)
        assert value(samples, "tickactors_reconnects_total", cause="rotation") == 1
        assert value(samples, "tickactors_reconnects_total", cause="shutdown") == 0
        assert value(samples, "tickactors_connections", state="connected") == 1


async def test_each_slot_is_a_connection_label(autojump_clock):
    net = FakeNetwork()
    options = dict(
        transport_factory=net, stale_after=1000, max_symbols_per_connection=1, max_connections=2
    )
    async with tickactors.open_feed(venue(), **options) as feed:
        registry = CollectorRegistry()
        FeedCollector(feed, registry=registry)
        feed.subscribe("A")  # slot 0 (full now)
        feed.subscribe("B")  # slot 1, opened for it
        carrying: dict[str, FakeTransport] = {}
        with trio.fail_after(60):
            # the two slots connect in either order (both wait for the first token)
            for conn in (await net.wait_connections(1), await net.wait_connections(2)):
                await conn.wait_sent(1)
                request = conn.requests(22004)[0]
                conn.answer(request)
                carrying[request["data"]["symbol_list"][0]["code"]] = conn
            await feed.wait_confirmed("A", "B")
            carrying["B"].trade("B")
            await feed.get_batch()
        samples = scrape(registry)
        assert value(samples, "tickactors_ticks_total", connection="0") == 0
        assert value(samples, "tickactors_ticks_total", connection="1") == 1
        assert value(samples, "tickactors_connections", state="connected") == 2
        assert value(samples, "tickactors_subscriptions", stream="trades", state="confirmed") == 2


async def test_counters_are_read_on_the_feeds_trio_thread_whoever_scrapes(
    autojump_clock, monkeypatch
):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net, stale_after=1000) as feed:
        registry = CollectorRegistry()
        FeedCollector(feed, registry=registry)
        await net.wait_connections(1)
        await trio.testing.wait_all_tasks_blocked()
        trio_thread = threading.get_ident()
        read_on: list[int] = []
        statistics = feed.statistics

        def recorded() -> dict:
            read_on.append(threading.get_ident())
            return statistics()

        monkeypatch.setattr(feed, "statistics", recorded)
        scraped_on: list[int] = []

        def scrape_elsewhere() -> bytes:
            scraped_on.append(threading.get_ident())
            return generate_latest(registry)

        text = await trio.to_thread.run_sync(scrape_elsewhere)
        assert scraped_on != [trio_thread]
        assert read_on == [trio_thread]
        assert value(parse(text.decode()), "tickactors_connections", state="connected") == 1


async def test_two_feeds_share_one_family_per_name(autojump_clock):
    nets = FakeNetwork(), FakeNetwork()
    async with (
        tickactors.open_feed(venue(), transport_factory=nets[0]) as one,
        tickactors.open_feed(venue(), transport_factory=nets[1]) as two,
    ):
        registry = CollectorRegistry()
        collector = FeedCollector(one, name="east", registry=registry)
        with pytest.raises(ValueError, match="east"):
            collector.add(two, name="east")
        collector.add(two, name="west")
        await nets[0].wait_connections(1)
        await nets[1].wait_connections(1)
        await trio.testing.wait_all_tasks_blocked()
        text = generate_latest(registry).decode()
        assert text.count("# TYPE tickactors_connections gauge") == 1
        samples = parse(text)
        for name in ("east", "west"):
            assert value(samples, "tickactors_connections", feed=name, state="connected") == 1
        collector.remove(two)
        assert {dict(ls).get("feed") for (n, ls) in scrape(registry)} == {"east"}


async def test_a_closed_feed_leaves_the_collector(autojump_clock):
    registry = CollectorRegistry()
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        collector = FeedCollector(feed, registry=registry)
        await net.wait_connections(1)
        assert scrape(registry)
    assert scrape(registry) == {}
    assert collector._entries == ()


def test_a_scrape_after_the_trio_run_is_empty_not_an_error():
    registry = CollectorRegistry()

    async def main() -> None:
        net = FakeNetwork()
        async with tickactors.open_feed(venue(), transport_factory=net) as feed:
            FeedCollector(feed, registry=registry)
            await net.wait_connections(1)

    trio.run(main)
    assert scrape(registry) == {}


async def test_the_default_registry_and_the_trio_run_it_needs(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(venue(), transport_factory=net) as feed:
        collector = FeedCollector(feed)  # prometheus_client's global registry
        try:
            assert "tickactors_connections" in generate_latest(REGISTRY).decode()
        finally:
            REGISTRY.unregister(collector)  # type: ignore[arg-type]
        other = FeedCollector(registry=CollectorRegistry())
        with pytest.raises(RuntimeError, match="Trio run"):
            await trio.to_thread.run_sync(other.add, feed)


def test_reconnect_causes():
    cases = {
        StaleConnection("silent"): "stale",
        AuthRefused("no"): "auth",
        VenueClosed(1000, "bye"): "kick",
        ConnectError("refused"): "connect_failed",
        TransportClosed(1006, "reset"): "drop",
        TransportClosed(None, None): "drop",
        TransportClosed(1008, "kicked"): "kick",
        TransportClosed(1009, "too big", by_us=True): "error",
        TransportClosed(1000, "closed locally", by_us=True): "error",
        trio.TooSlowError(): "send_timeout",
        ConnectionResetError(): "drop",
        trio.BrokenResourceError(): "drop",
        RuntimeError("setup failed"): "error",
    }
    for reason, cause in cases.items():
        assert reconnect_cause(reason) == cause, reason
    assert set(cases.values()) | {"rotation", "shutdown"} == set(RECONNECT_CAUSES)


def test_import_tickactors_does_not_import_prometheus_client():
    """The first collector imports it; a feed without metrics never pays for it."""
    probe = "import sys, tickactors; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
