"""Prometheus metrics of feeds, read at scrape time: :class:`FeedCollector`.

Theory of operation
-------------------

A feed already counts what an operator wants to watch: every actor keeps plain counters
and ``Feed.statistics()`` gathers them (ticks delivered, frames, decode errors, drops,
request outcomes, reconnects by cause, the connection states, the last message's time).
The collector adds nothing to the feed's hot path. It is a Prometheus *custom collector*:
when Prometheus scrapes, the registry calls :meth:`FeedCollector.collect`, which takes
one snapshot of each feed's statistics and turns it into metric families
(:data:`METRICS` lists them: name, type, labels, meaning). Between two scrapes it costs
nothing at all.

Where the snapshot is taken. The actors live on one Trio thread and change their
counters between two of its steps; a scrape usually comes from another thread
(``prometheus_client.start_http_server``'s, or a worker thread of the runner). Reading
the dictionaries of a running feed from there could meet one in the middle of a change,
and ``trio.current_time()`` (the feed's clock, which ``last_message_age_seconds`` needs)
cannot be read from there at all. So the snapshot is always taken *on the feed's own
Trio thread*: from another thread with ``trio.from_thread.run_sync`` and the feed's
``TrioToken`` (captured by :meth:`FeedCollector.add`), which runs it as a callback
between two steps of the Trio loop; directly when ``collect`` is already running there.
That costs the Trio thread one ``statistics()`` call per scrape (tens of microseconds
for a feed of a few slots, ``docs/performance.md``), consistent by construction, and no
lock: the scraping thread merely waits for the result. Building the metric families and
formatting the text (the larger part) stays on the scraping thread.

Labels. Every sample carries ``feed`` (the name given to :meth:`FeedCollector.add`,
by default the venue's) and ``venue``. Per-connection metrics carry ``connection``: the
connection *slot* (``0``, ``1``, ...), stable across reconnects and rotations, not the
connection numbers of health events, which grow with every reconnect and would make a
new series each time. Per-stream metrics carry ``stream`` (``trades``, ``book``,
``quotes``). Label values come from a fixed vocabulary (states, causes, outcomes,
event names, slots), never from symbols: a universe of 30,000 symbols makes no more
series than one of four.

A closed feed (its ``async with`` is over), or one whose Trio run has ended, is
dropped from the collector at the next scrape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from .._actors.supervisor import RECONNECT_CAUSES
from .._values import EventName
from .feed import Feed

if TYPE_CHECKING:
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector, CollectorRegistry

    Family = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily

__all__ = ["CONNECTION_STATES", "METRICS", "FeedCollector", "MetricSpec", "families"]


@attrs.frozen
class MetricSpec:
    """One metric family the collector exposes."""

    name: str  #: the family's name (a counter's samples add ``_total``)
    type: str  #: ``counter``, ``gauge`` or ``histogram``
    labels: tuple[str, ...]  #: labels besides ``feed`` and ``venue``
    help: str

    @property
    def sample_names(self) -> tuple[str, ...]:
        """The names its samples carry in the text format."""
        if self.type == "counter":
            return (f"{self.name}_total",)
        if self.type == "histogram":
            return tuple(f"{self.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.name,)


_C = ("connection",)

#: Every metric family a :class:`FeedCollector` exposes (docs/operations.md has the table).
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "tickactors_ticks",
        "counter",
        _C,
        "Market data items (trades, books, quotes) the connection slot handed to the "
        "consumer's queue, ghosts and rotation duplicates left out.",
    ),
    MetricSpec("tickactors_frames_received", "counter", _C, "WebSocket frames received."),
    MetricSpec(
        "tickactors_last_message_age_seconds",
        "gauge",
        _C,
        "Seconds since the slot's connection received anything (data, answers, "
        "heartbeats); it keeps growing while the slot is disconnected.",
    ),
    MetricSpec(
        "tickactors_connections",
        "gauge",
        ("state",),
        "Connection slots by state: starting, connecting, connected, backoff, failed.",
    ),
    MetricSpec(
        "tickactors_reconnects",
        "counter",
        ("connection", "cause"),
        "Times a slot had to connect again, by cause: stale, drop, kick, send_timeout, auth, "
        "connect_failed, error (counted when the connection ended or the attempt failed; "
        "the next one follows the backoff), rotation, shutdown (counted when the "
        "replacement took over).",
    ),
    MetricSpec(
        "tickactors_rotation_failures",
        "counter",
        _C,
        "Make-before-break rotations that found no working replacement (tried again later).",
    ),
    MetricSpec(
        "tickactors_subscriptions",
        "gauge",
        ("stream", "state"),
        "Symbols by stream and state: desired (by the user), confirmed (by the venue), "
        "rejected (by the venue, not retried).",
    ),
    MetricSpec(
        "tickactors_queue_depth",
        "gauge",
        ("stream",),
        "Items waiting for the consumer in the stream's lane of the hand-off.",
    ),
    MetricSpec(
        "tickactors_queue_capacity",
        "gauge",
        (),
        "Items one lane holds before its policy acts (open_feed(buffer=...), --buffer).",
    ),
    MetricSpec(
        "tickactors_dropped",
        "counter",
        ("stream",),
        "Items dropped for a slow consumer by a conflate or drop-oldest lane.",
    ),
    MetricSpec(
        "tickactors_decode_errors",
        "counter",
        _C,
        "Frames that could not be decoded (counted and skipped).",
    ),
    MetricSpec(
        "tickactors_ghost_ticks",
        "counter",
        _C,
        "Items of symbols nobody wants (after an unsubscribe), filtered out.",
    ),
    MetricSpec(
        "tickactors_requests",
        "counter",
        ("outcome",),
        "Requests to the venue (subscriptions, heartbeats, lookups, authorize, the user's) "
        "by how they ended: answered, timed_out, connection_lost, closed.",
    ),
    MetricSpec(
        "tickactors_request_latency_seconds",
        "histogram",
        ("request",),
        "Seconds from sending a request to its answer, by request: heartbeat, "
        "subscription, lookup, authorize, user (answered requests only).",
    ),
    MetricSpec(
        "tickactors_heartbeat_lateness_seconds",
        "histogram",
        _C,
        "Seconds the heartbeat sender woke after its due time: how busy the Trio thread was.",
    ),
    MetricSpec("tickactors_token_refreshes", "counter", (), "Tokens fetched."),
    MetricSpec("tickactors_token_refresh_failures", "counter", (), "Token fetches that failed."),
    MetricSpec(
        "tickactors_token_consecutive_failures",
        "gauge",
        (),
        "Token fetches that failed since the last one that worked.",
    ),
    MetricSpec(
        "tickactors_token_expires_in_seconds",
        "gauge",
        (),
        "Seconds until the token in hand expires (only for a token that expires: Tradovate).",
    ),
    MetricSpec(
        "tickactors_events",
        "counter",
        ("event",),
        "Health events emitted, by name (docs/architecture.md, Health events).",
    ),
)

#: The states of a connection slot (``Supervisor.state``), each a series, zeros included.
CONNECTION_STATES = ("starting", "connecting", "connected", "backoff", "failed")
#: How a request ends (``RequestTable``): the ``outcome`` label.
_OUTCOMES = ("answered", "timed_out", "connection_lost", "closed")
#: The feed's own event names (the sinks' are the runner's business), zeros included.
_FEED_EVENTS = tuple(e.value for e in EventName if not e.value.startswith("sink_"))

#: One feed's snapshot: its name, ``Feed.statistics()`` and the feed's clock when taken.
Snapshot = tuple[str, Mapping[str, Any], float]


@attrs.frozen(eq=False)
class _Entry:
    feed: Feed
    name: str
    token: trio.lowlevel.TrioToken


class FeedCollector:
    """Prometheus metrics of feeds, read from their counters when Prometheus scrapes.

    ``FeedCollector(feed, registry=registry)`` registers with ``registry`` (default:
    ``prometheus_client``'s global ``REGISTRY``, which ``start_http_server(port)``
    serves) and exposes ``feed``'s metrics under the label ``feed=name`` (default: the
    venue's name, ``alltick`` or ``tradovate``); :meth:`add` and :meth:`remove` manage
    more feeds in one collector (one collector per registry: two would expose the same
    names twice). Create it, and call :meth:`add`, on the feed's Trio thread (inside
    its ``async with open_feed(...)``). Scraping is safe from any thread: each feed's
    counters are read on its own Trio thread, between two of its steps, and the feed's
    hot path pays nothing. A feed that closed leaves the collector by itself.
    ``docs/operations.md`` lists the metrics.

    Needs ``prometheus-client`` (a dependency of tickactors), imported on first use.
    """

    def __init__(
        self,
        feed: Feed | None = None,
        *,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        from prometheus_client import REGISTRY

        self._entries: tuple[_Entry, ...] = ()
        if feed is not None:
            self.add(feed, name=name)
        (REGISTRY if registry is None else registry).register(cast("Collector", self))

    def add(self, feed: Feed, *, name: str | None = None) -> None:
        """Expose ``feed``'s metrics too, labelled ``feed=name`` (default: its venue's name).

        Call it on the feed's Trio thread. ``ValueError`` when another feed of this
        collector has that name already (their series would be one).
        """
        label = feed.venue.dialect.name if name is None else name
        if any(entry.name == label for entry in self._entries):
            raise ValueError(f"a feed named {label!r} is in this collector already")
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            raise RuntimeError("FeedCollector.add: call it in the feed's Trio run") from None
        self._entries = (*self._entries, _Entry(feed, label, token))

    def remove(self, feed: Feed) -> None:
        """Stop exposing ``feed``'s metrics (nothing happens if it was not here)."""
        self._entries = tuple(entry for entry in self._entries if entry.feed is not feed)

    def describe(self) -> list[Metric]:
        """The families this collector exposes, without samples (for the registry's check
        that no two collectors expose one name)."""
        return [_family(spec) for spec in METRICS]

    def collect(self) -> Iterator[Metric]:
        """The metric families of every feed, from one snapshot of each (see the module
        docstring for where the snapshot is taken)."""
        snapshots: list[Snapshot] = []
        for entry in self._entries:
            taken = _snapshot_of(entry)
            if taken is None:
                self.remove(entry.feed)
                continue
            stats, now = taken
            snapshots.append((entry.name, stats, now))
        yield from families(snapshots)


def _take(feed: Feed) -> tuple[dict[str, Any], float] | None:
    """On the feed's Trio thread: its statistics and its clock (None once it closed)."""
    if feed._closed:
        return None
    return feed.statistics(), trio.current_time()


def _snapshot_of(entry: _Entry) -> tuple[dict[str, Any], float] | None:
    """``_take`` on the entry's Trio thread, from wherever we are (None: the run is over)."""
    try:
        here: trio.lowlevel.TrioToken | None = trio.lowlevel.current_trio_token()
    except RuntimeError:  # not in a Trio run: a thread of the HTTP server, a worker thread
        here = None
    if here is entry.token:
        return _take(entry.feed)
    try:
        return trio.from_thread.run_sync(_take, entry.feed, trio_token=entry.token)
    except trio.RunFinishedError:
        return None


# -- from snapshots to metric families (pure) ------------------------------------------------


def _family(spec: MetricSpec) -> Family:
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    labels = ["feed", "venue", *spec.labels]
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=labels)
    if spec.type == "gauge":
        return GaugeMetricFamily(spec.name, spec.help, labels=labels)
    return HistogramMetricFamily(spec.name, spec.help, labels=labels)


def families(snapshots: Sequence[Snapshot]) -> list[Metric]:
    """The metric families of :data:`METRICS` for these snapshots, every feed's samples in
    one family per name (a name twice in one scrape would be invalid)."""
    from prometheus_client.metrics_core import HistogramMetricFamily

    out = {spec.name: _family(spec) for spec in METRICS}

    def add(name: str, base: list[str], labels: Sequence[str], value: float) -> None:
        family = out[name]
        assert not isinstance(family, HistogramMetricFamily)
        family.add_metric([*base, *labels], float(value))

    def histogram(name: str, base: list[str], labels: Sequence[str], stats: Any) -> None:
        family = out[name]
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric([*base, *labels], _buckets(stats), float(stats["sum"]))

    for feed_name, stats, now in snapshots:
        base = [feed_name, str(stats["venue"])]
        states = dict.fromkeys(CONNECTION_STATES, 0)
        for slot in stats["slots"]:
            c = [str(slot["slot"])]
            states[slot["state"]] = states.get(slot["state"], 0) + 1
            add("tickactors_ticks", base, c, slot["ticks_delivered"])
            add("tickactors_frames_received", base, c, slot["frames_received"])
            last = slot["staleness"]["last_message_at"]
            if last is not None:
                add("tickactors_last_message_age_seconds", base, c, max(0.0, now - last))
            for cause in RECONNECT_CAUSES:
                add("tickactors_reconnects", base, [*c, cause], slot["reconnects"][cause])
            add("tickactors_rotation_failures", base, c, slot["rotation_failures"])
            add("tickactors_decode_errors", base, c, slot["decode_errors"])
            add("tickactors_ghost_ticks", base, c, slot["ghost_ticks"])
            histogram("tickactors_heartbeat_lateness_seconds", base, c, slot["heartbeat_lateness"])
        for state, count in states.items():
            add("tickactors_connections", base, [state], count)
        for state in ("desired", "confirmed", "rejected"):
            for stream, count in stats[state].items():
                add("tickactors_subscriptions", base, [stream, state], count)
        queue = stats["queue"]
        for stream, count in queue["waiting_by_kind"].items():
            add("tickactors_queue_depth", base, [stream], count)
        for stream, count in queue["dropped_by_kind"].items():
            add("tickactors_dropped", base, [stream], count)
        add("tickactors_queue_capacity", base, [], queue["capacity"])
        requests = stats["requests"]
        for outcome in _OUTCOMES:
            add("tickactors_requests", base, [outcome], requests[outcome])
        for request, latency in sorted(requests["latency"].items()):
            histogram("tickactors_request_latency_seconds", base, [request], latency)
        tokens = stats["tokens"]
        add("tickactors_token_refreshes", base, [], tokens["refreshes"])
        add("tickactors_token_refresh_failures", base, [], tokens["failures"])
        add("tickactors_token_consecutive_failures", base, [], tokens["consecutive_failures"])
        if tokens["expires_at"] is not None:
            add("tickactors_token_expires_in_seconds", base, [], tokens["expires_at"] - now)
        events = stats["events"]
        for event in _FEED_EVENTS:
            add("tickactors_events", base, [event], events.get(event, 0))
    return list(out.values())


def _buckets(stats: Mapping[str, Any]) -> list[tuple[str, float]]:
    """A ``Histogram.statistics()`` as Prometheus wants it: cumulative, ``+Inf`` last."""
    bounds: list[float] = stats["bounds"]
    counts: list[int] = stats["counts"]
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip([*bounds, float("inf")], counts, strict=True):
        total += count
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(total)))
    return out
