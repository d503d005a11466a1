"""TLS end to end, in-process: the simulator serves wss:// and https:// with a certificate
from a throwaway CA; a feed that does not trust that CA stops at once with
``CertificateError`` (one attempt, no backoff), and one that does gets its ticks.

Both transports, both venues, Tradovate's REST token fetch and renewal included.
"""

from __future__ import annotations

import argparse
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import tickactors
from tickactors import CertificateError, connect_batched, connect_websocket
from tickactors.sim import SimConfig, Simulator, open_simulator
from tickactors.sim._cli import add_arguments, run_from_args
from tickactors.venues import AllTick, Tradovate
from tickactors.venues._tradovate_auth import TradovateCredentials, TradovateTokenSource

from .tls_ca import client_context, server_context, write_server_files

TOKEN = "tls-TOKEN-51e0"
EPOCH = 1_700_000_000.0
CREDENTIALS = TradovateCredentials(
    name="erin", password="tls-PASSWORD-2b2b", app_id="app", app_version="1.0", cid="8", sec="s"
)
TRANSPORTS = pytest.mark.parametrize(
    "transport", [connect_batched, connect_websocket], ids=["batched", "trio-websocket"]
)


class Counting:
    """A transport factory that counts connection attempts."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.calls = 0

    async def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return await self.factory(*args)


@asynccontextmanager
async def tls_sim(venue: str, *hosts: str, **config: Any) -> AsyncIterator[Simulator]:
    settings = SimConfig(epoch=EPOCH, **config)
    async with open_simulator(
        venue, config=settings, seed=11, ssl_context=server_context(*hosts)
    ) as sim:
        yield sim


def venue_for(sim: Simulator, token: Any = TOKEN) -> AllTick | Tradovate:
    if sim.venue == "alltick":
        return AllTick(url=sim.url, token=token)
    return Tradovate(url=sim.url, token=token)


async def refused(sim: Simulator, transport: Any, **feed_kw: Any) -> tuple[CertificateError, Any]:
    """Run a feed that must end with CertificateError; the error and the feed."""
    feed = None
    with trio.fail_after(60), pytest.raises(CertificateError) as caught:  # a retry loop fails
        venue = venue_for(sim)
        async with tickactors.open_feed(venue, transport_factory=transport, **feed_kw) as f:
            feed = f
            f.subscribe("BTCUSDT" if sim.venue == "alltick" else "ESZ6")
            await trio.sleep_forever()
    return caught.value, feed


@TRANSPORTS
@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
async def test_an_untrusted_certificate_ends_the_feed_after_one_attempt(
    venue: str, transport: Any, autojump_clock: trio.abc.Clock
) -> None:
    counting = Counting(transport)
    async with tls_sim(venue, tokens={TOKEN}) as sim:
        assert sim.url.startswith("wss://127.0.0.1:")
        error, feed = await refused(sim, counting)
        assert counting.calls == 1 and sim.stats.tcp_accepted == 1
        assert sim.stats.connections_opened == 0
    assert trio.current_time() < 1.0  # no backoff: AllTick's floor alone is 3 s
    message = str(error)
    assert "cannot verify the TLS certificate of 127.0.0.1:" in message
    assert "--ca-file" in message and "ssl_context" in message
    assert error.__cause__ is None  # nothing below it: the URL (and token) stay out of sight
    assert TOKEN not in "".join(traceback.format_exception(error))
    assert feed._health.counts["certificate_failed"] == 1
    assert "reconnecting" not in feed._health.counts
    assert feed._supervisor.state == "failed"


async def test_a_certificate_for_another_host_is_refused_too(autojump_clock: trio.abc.Clock):
    async with tls_sim("alltick", "venue.example") as sim:
        error, _ = await refused(sim, connect_batched, ssl_context=client_context())
    assert "mismatch" in str(error).lower() or "not valid" in str(error)


@TRANSPORTS
@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
async def test_a_context_that_trusts_the_ca_gets_ticks(
    venue: str, transport: Any, autojump_clock: trio.abc.Clock
) -> None:
    symbol = "BTCUSDT" if venue == "alltick" else "ESZ6"
    async with tls_sim(venue, tokens={TOKEN}) as sim:
        async with tickactors.open_feed(
            venue_for(sim), transport_factory=transport, ssl_context=client_context()
        ) as feed:
            feed.subscribe(symbol)
            with trio.fail_after(20):
                ticks = [t for t in await feed.get_batch() if t.symbol == symbol]
                while len(ticks) < 5:
                    ticks += await feed.get_batch()
            assert feed.statistics()["connection"]["connects"] == 1


def token_source(sim: Simulator, **options: Any) -> TradovateTokenSource:
    assert sim.rest_url.startswith("https://127.0.0.1:")
    return TradovateTokenSource(
        sim.rest_url, CREDENTIALS, wall_clock=lambda: EPOCH + trio.current_time(), **options
    )


async def test_tradovate_rest_without_the_ca_ends_the_feed_before_any_call(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tls_sim("tradovate") as sim:
        async with token_source(sim) as source:
            counting = Counting(connect_batched)
            with trio.fail_after(60), pytest.raises(CertificateError) as caught:
                venue = Tradovate(url=sim.url, token=source)
                async with tickactors.open_feed(
                    venue, transport_factory=counting, ssl_context=client_context()
                ) as feed:
                    await trio.sleep_forever()
        assert sim.stats.tcp_accepted == 1 and not sim.stats.rest_calls
    assert counting.calls == 0  # no token, no socket
    assert "Tradovate's REST API (POST /auth/accesstokenrequest)" in str(caught.value)
    assert "TradovateTokenSource(ssl_context=...)" in str(caught.value)
    assert feed._health.counts["certificate_failed"] == 1
    assert "token_failed" not in feed._health.counts  # not retried
    assert trio.current_time() < 1.0


async def test_tradovate_rest_with_the_ca_fetches_renews_and_streams(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tls_sim("tradovate", token_lifetime=120.0) as sim:
        async with token_source(sim, ssl_context=client_context()) as source:
            venue = Tradovate(url=sim.url, token=source)
            async with tickactors.open_feed(venue, ssl_context=client_context()) as feed:
                feed.subscribe("ESZ6")
                with trio.fail_after(20):
                    await feed.wait_confirmed("ESZ6")
                with trio.fail_after(120):  # renewed 30 s before expiry, over https
                    async for event in feed.events():
                        if event.event == "token_refreshed" and event.detail["generation"] == 2:
                            break
        assert sim.stats.rest_calls == {
            "POST /v1/auth/accesstokenrequest": 1,
            "GET /v1/auth/renewaccesstoken": 1,
        }
        assert sim.stats.tokens_renewed == 1


async def test_the_simulator_command_line_serves_tls(
    tmp_path: Path, autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = write_server_files(tmp_path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--venue", "tradovate", "--duration", "1"]
    args = parser.parse_args([*base, "--tls-cert", str(cert), "--tls-key", str(key)])
    assert await run_from_args(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("listening wss://127.0.0.1:") and " rest https://127.0.0.1:" in first
    for wrong, why in (
        (["--tls-cert", str(key)], "--tls-cert/--tls-key: no PEM certificate chain"),
        (["--tls-cert", str(tmp_path / "missing.pem")], "--tls-cert/--tls-key: cannot read"),
        (["--tls-key", str(key)], "--tls-key needs --tls-cert"),
    ):
        assert await run_from_args(parser.parse_args([*base, *wrong])) == 2
        assert capsys.readouterr().err.startswith(f"error: {why}")
