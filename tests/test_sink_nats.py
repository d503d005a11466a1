"""The NATS sink against a real ``nats-server -js``, through the library API.

Real time (a thread and a real server cannot share a mock clock); every wait is under
``trio.fail_after``. Closing the sink drains it, so the tests read back after the close
instead of polling.
"""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from typing import Any

import trio

from tickactors import BookLevel, BookSnapshot, HealthEvent, Quote, Tick
from tickactors._json_lines import market_dict
from tickactors.sinks import decode_symbol_token, open_nats_sink

from .nats_support import NatsServer, configured_nats_server, free_port, read_stream

SYMBOLS = ("BTCUSDT", "700.HK", "X_Y-Z", "@ES.Z6", "#42", "a%b")


def ticks(count: int, start: int = 0) -> list[Tick]:
    return [
        Tick(
            symbol=SYMBOLS[n % len(SYMBOLS)],
            price=Decimal(f"{100 + n}.{n % 100:02d}10"),  # a trailing zero must survive
            volume=Decimal("0.0010"),
            exchange_time=1_700_000_000.0 + n,
            seq=n,
            received_at=float(n),
        )
        for n in range(start, start + count)
    ]


async def publish(
    url: str, items: list[Any], *, events: list[HealthEvent] | None = None, **options: str
) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    spec = f"{url}?{query}" if query else url
    seen: list[HealthEvent] = [] if events is None else events
    with trio.fail_after(30):
        async with open_nats_sink(
            spec, venue="alltick", clock_offset=0.0, emit=seen.append
        ) as sink:
            for start in range(0, len(items), 100):
                sink.market(items[start : start + 100])
            sink.event(HealthEvent("stale", 5.0, 1, "nothing received", {"silent_for": 4.0}))
            sink.status("command", "subscribe", symbols=["BTCUSDT"])
    closed = [e for e in seen if e.event == "sink_closed"]
    assert len(closed) == 1
    return dict(closed[0].detail)


async def test_ticks_books_and_quotes_arrive_on_their_subjects_exactly(nats_server: NatsServer):
    book = BookSnapshot(
        "700.HK",
        bids=(BookLevel(Decimal("9.50"), Decimal("100")),),
        asks=(BookLevel(Decimal("9.60"), Decimal("200")),),
        seq=7,
        received_at=1.5,
    )
    quote = Quote("ESZ6", contract_id=9, bid=Decimal("5000.25"), offer=Decimal("5000.50"))
    items: list[Any] = [*ticks(1_000), book, quote]
    events: list[HealthEvent] = []
    stats = await publish(nats_server.url, items, events=events, batch="64")

    assert stats["published"] == {"tick": 1_000, "book": 1, "quote": 1, "status": 2}
    assert stats["dropped_total"] == 0 and stats["rejected"] == {}
    assert stats["state"] == "closed" and stats["connects"] == 1
    connected = [e for e in events if e.event == "sink_connected"]
    assert [e.detail["created"] for e in connected] == [True]
    assert connected[0].detail["stream"] == "TICKACTORS"

    messages = await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.>")
    assert [payload for _, payload in messages] == [market_dict(item) for item in items]
    for subject, payload in messages:
        prefix, venue, kind, token = subject.split(".")
        assert (prefix, venue, kind) == ("ticks", "alltick", payload["kind"])
        assert decode_symbol_token(token) == payload["symbol"]
    subjects = {subject for subject, _ in messages}
    assert "ticks.alltick.tick.700%2EHK" in subjects
    assert "ticks.alltick.tick.X_Y-Z" in subjects
    assert "ticks.alltick.tick.%40ES%2EZ6" in subjects
    assert "ticks.alltick.tick.%2342" in subjects
    assert "ticks.alltick.tick.a%25b" in subjects
    assert messages[0][1]["price"] == "100.0010"  # exact decimal strings

    health = await trio.to_thread.run_sync(read_stream, nats_server.url, "health.>")
    assert [(s, p["event"]) for s, p in health] == [
        ("health.alltick.stale", "stale"),
        ("health.alltick.command", "command"),
    ]
    assert health[0][1]["silent_for"] == 4.0 and health[0][1]["connection"] == 1


async def test_an_existing_stream_is_reused_and_batches_stay_within_the_batch_size(
    nats_server: NatsServer,
):
    events: list[HealthEvent] = []
    await publish(nats_server.url, ticks(10), events=events)
    events.clear()
    stats = await publish(nats_server.url, ticks(250, start=10), events=events, batch="100")
    assert [e.detail["created"] for e in events if e.event == "sink_connected"] == [False]
    assert stats["published"]["tick"] == 250
    assert stats["batches"] >= 3  # 250 ticks, at most 100 a batch
    messages = await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.>")
    assert [p["seq"] for _, p in messages] == list(range(260))


async def test_unreachable_nats_never_blocks_and_loses_only_what_overflows():
    """Nothing listens: the sink takes every batch at once, keeps at most ``buffer``
    entries, and accounts for each entry it accepted."""
    url = f"nats://127.0.0.1:{free_port()}"
    events: list[HealthEvent] = []
    with trio.fail_after(30):
        async with open_nats_sink(
            f"{url}?buffer=500&drain=0.5", venue="alltick", clock_offset=0.0, emit=events.append
        ) as sink:
            for n in range(50):
                sink.market(ticks(100, start=n * 100))  # returns at once, every time
                assert len(sink._handoff) <= 500
    stats = dict(next(e for e in events if e.event == "sink_closed").detail)
    assert stats["accepted"] == 5_000
    assert stats["published_total"] == 0
    assert stats["dropped_total"] == 5_000  # 4,500 overflowed, 500 left at close
    assert stats["lost_at_close"] == 500
    assert stats["high_water"] == 500
    losses = [e for e in events if e.event == "sink_loss"]
    assert sum(e.detail["lost"] for e in losses) == 5_000
    assert losses[-1].detail["lost_total"] == 5_000
    assert any(e.event == "sink_connect_failed" for e in events)


async def test_credentials_are_used_but_never_shown(tmp_path):
    """A server that wants a user and password: the sink logs in; no event, statistic or
    error shows the password."""
    config = 'authorization { user: "capture", password: "pw-S3CRET-77" }\n'
    async with configured_nats_server(tmp_path, config) as server:
        events: list[HealthEvent] = []
        url = f"nats://capture:pw-S3CRET-77@127.0.0.1:{server.port}"
        stats = await publish(url, ticks(20), events=events)
    assert stats["published"]["tick"] == 20
    assert stats["sink"] == f"nats://***@127.0.0.1:{server.port}"
    shown = repr(events) + repr(stats)
    assert "pw-S3CRET-77" not in shown and "capture" not in shown


async def test_a_stalled_server_is_given_up_on_and_the_retry_stores_each_tick_once(
    nats_server: NatsServer,
):
    """SIGSTOP: the server accepts our bytes into its socket buffer and answers nothing.
    The batch times out, goes back to the buffer and is published again on a new
    connection once the server wakes; meanwhile the old connection's copy was stored
    too, and JetStream drops the second copy by its ``Nats-Msg-Id``."""
    assert nats_server.process is not None
    pid = nats_server.process.pid
    events: list[HealthEvent] = []
    seen = {name: trio.Event() for name in ("sink_connected", "sink_disconnected")}

    def emit(event: HealthEvent) -> None:
        events.append(event)
        if event.event in seen:
            seen[event.event].set()

    spec = f"{nats_server.url}?ack_timeout=0.5&connect_timeout=0.5&drain=10"
    try:
        with trio.fail_after(30):
            async with open_nats_sink(
                spec, venue="alltick", clock_offset=0.0, emit=emit, report_interval=0.05
            ) as sink:
                await seen["sink_connected"].wait()
                # Its own event published: nothing in flight. The counter lives in the
                # publisher thread, with no event to wait on (nor a mock clock to jump).
                while sink.statistics()["published_total"] < 1:  # noqa: ASYNC110
                    await trio.sleep(0.01)
                os.kill(pid, signal.SIGSTOP)
                sink.market(ticks(100))
                await seen["sink_disconnected"].wait()
                os.kill(pid, signal.SIGCONT)
    finally:
        os.kill(pid, signal.SIGCONT)
    stats = dict(next(e for e in events if e.event == "sink_closed").detail)
    assert stats["retried"] == 100 and stats["published"]["tick"] == 100
    assert stats["dropped_total"] == 0 and stats["connects"] >= 2
    messages = await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.>")
    assert sorted(p["seq"] for _, p in messages) == list(range(100))  # each once
    # Some or all of the stalled copies were stored after all, and dropped as duplicates
    # when sent again (how many the stalled server still took in varies).
    assert 1 <= stats["deduplicated"] <= stats["retried"]


async def test_a_message_too_large_for_the_server_is_rejected_not_retried(tmp_path):
    level = BookLevel(Decimal("9.50"), Decimal("100"))
    huge = BookSnapshot("700.HK", bids=(level,) * 200, asks=(level,) * 200)
    events: list[HealthEvent] = []
    async with configured_nats_server(tmp_path, "max_payload: 2048\n") as server:
        stats = await publish(server.url, [*ticks(5), huge, *ticks(5, start=5)], events=events)
    assert stats["rejected"] == {"book": 1}
    assert stats["published"]["tick"] == 10 and stats["retried"] == 0
    rejected = [e for e in events if e.event == "sink_rejected"]
    assert "max_payload" in rejected[0].message
    losses = [e for e in events if e.event == "sink_loss"]
    assert sum(e.detail["lost"] for e in losses) == 1
