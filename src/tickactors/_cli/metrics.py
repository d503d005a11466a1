"""``--metrics HOST:PORT``: the runner's feed metrics over HTTP, in Prometheus' text format.

:func:`serve_metrics` registers a :class:`~tickactors._feed.metrics.FeedCollector` for
the feed, with the process collectors (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ...; Python's GC and platform), in a registry of the
run's own, and serves it with ``prometheus_client.start_http_server``: the exposition
(text or OpenMetrics by the scraper's ``Accept``, gzip when asked) is prometheus_client's,
not ours.

Why its server thread and not a Trio HTTP handler. The server is a daemon thread of
prometheus_client's (a thread per request), so nothing of HTTP runs on the Trio thread:
no parsing, no formatting, no compression, and a slow or hostile client costs the feed
nothing. The one thing that must run on the Trio thread, reading the feed's counters,
does: the collector takes its snapshot there through ``trio.from_thread.run_sync`` (a
callback between two steps of the loop, about as long as one ``Feed.statistics()``
call), so the counters are read consistently, the scrape thread reads no structure the
actors are changing, and no lock is shared with the Trio thread (the thread only waits
for the snapshot). A Trio handler calling ``generate_latest`` in a worker thread would
put the same work in the same places plus an HTTP server of our own to keep.

Starting (the address is resolved and bound) and stopping (the server's loop notices
within its half-second poll) are blocking calls, so both run in a worker thread.
Loopback by default: ``--metrics PORT`` listens on 127.0.0.1 (``_arg_types.listen_address``);
another interface must be named.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .._feed.feed import Feed
from .._feed.metrics import FeedCollector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer


class MetricsError(Exception):
    """The metrics endpoint could not start (the port is taken, the host unknown)."""


def metrics_url(host: str, port: int) -> str:
    """The endpoint's URL (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/metrics"


@asynccontextmanager
async def serve_metrics(feed: Feed, host: str, port: int, *, name: str) -> AsyncIterator[str]:
    """Serve ``feed``'s metrics (label ``feed=name``) at ``http://host:port/metrics`` while
    the block runs; yields the URL (with the port the system picked for port 0).

    Raises :class:`MetricsError` with one line when it cannot listen.
    """
    async with open_endpoint(host, port) as (collector, url):
        collector.add(feed, name=name)
        yield url


@asynccontextmanager
async def open_endpoint(host: str, port: int) -> AsyncIterator[tuple[FeedCollector, str]]:
    """An endpoint at ``http://host:port/metrics`` with a collector of no feed yet (``run
    --config``: each feed adds itself, ``FeedCollector.add``, and leaves) and the process
    collectors, while the block runs; yields it and the URL.

    Raises :class:`MetricsError` with one line when it cannot listen.
    """
    from prometheus_client import (
        GCCollector,
        PlatformCollector,
        ProcessCollector,
        start_http_server,
    )
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    collector = FeedCollector(registry=registry)
    start = functools.partial(start_http_server, port, addr=host, registry=registry)
    try:
        server, thread = await trio.to_thread.run_sync(start)
    except (OSError, ValueError) as exc:  # taken, not ours, unknown host; bad address
        where = metrics_url(host, port).removesuffix("/metrics")
        raise MetricsError(f"cannot listen on {where}: {exc}") from None
    try:
        yield collector, metrics_url(host, server.server_port)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_stop, server, thread)


def _stop(server: WSGIServer, thread: threading.Thread) -> None:
    """End the server's loop and close its socket (blocks up to its poll interval)."""
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
