"""Feed-side pieces for the Tradovate dialect: untracked heartbeats, quote filtering, output."""

from __future__ import annotations

import math
from decimal import Decimal
from types import SimpleNamespace

import orjson
import trio

from tickactors import BOOK, QUOTES, TRADES, Quote, Tick
from tickactors._actors.health_bus import HealthBus
from tickactors._actors.market_delivery import SessionCounters
from tickactors._actors.messages import Heartbeat, LinkUp
from tickactors._actors.session import Session
from tickactors._actors.tracker import RequestTracker
from tickactors._cli.output import JsonLines, MemoryLines, TextLines, market_dict
from tickactors._core.reconciler import GhostSeen
from tickactors.venues import AllTick, Tradovate
from tickactors.venues._dialect import MarketBatch


def tracker_for(dialect):
    inbox = trio.open_memory_channel(math.inf)
    writer, written = trio.open_memory_channel[str](math.inf)
    tracker = RequestTracker(dialect, HealthBus(), inbox, request_timeout=5.0)
    tracker._handle(LinkUp(1, writer), 0.0)
    return tracker, written


async def test_an_untracked_heartbeat_goes_straight_to_the_writer():
    tracker, written = tracker_for(Tradovate(url="ws://127.0.0.1:1/v1/websocket").dialect)
    tracker._handle(Heartbeat(1), 0.0)
    tracker._handle(Heartbeat(1), 2.5)
    assert [written.receive_nowait(), written.receive_nowait()] == ["[]", "[]"]
    stats = tracker.table.statistics()
    assert (stats.opened, stats.open) == (0, 0)
    assert tracker.table.next_deadline() is None


async def test_a_tracked_heartbeat_still_opens_a_request():
    tracker, written = tracker_for(AllTick(url="ws://127.0.0.1:1/quote-b-ws-api").dialect)
    tracker._handle(Heartbeat(1), 0.0)
    frame = orjson.loads(written.receive_nowait())
    assert (frame["cmd_id"], frame["seq_id"]) == (22000, 1)
    assert tracker.table.statistics().open == 1
    assert tracker.table.next_deadline() == 5.0


def session_stub(wanted):
    ghosts_to, ghosts = trio.open_memory_channel(math.inf)
    seen: list[str] = []
    stub = SimpleNamespace(
        _monitor=SimpleNamespace(
            symbol_seen=lambda symbol, now: seen.append(symbol),
            symbols_seen=lambda symbols, now: seen.extend(sorted(symbols)),
        ),
        _wanted=wanted,
        _counters=SessionCounters(),
        _reconciler=SimpleNamespace(inbox=ghosts_to),
    )
    return stub, seen, ghosts


def drain(channel):
    out = []
    while True:
        try:
            out.append(channel.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_quotes_are_filtered_under_their_own_kind():
    stub, seen, ghosts = session_stub({QUOTES: {"ESZ6"}, BOOK: {"ESZ6"}})
    batch = MarketBatch()
    batch.quotes += [Quote("ESZ6", 1, last=Decimal(5)), Quote("#2", 2), Quote("ESZ6", 1)]
    out = Session._filter(stub, batch, 3.0)  # type: ignore[arg-type]
    assert out == [(QUOTES, [batch.quotes[0], batch.quotes[2]])]
    assert seen == ["ESZ6", "ESZ6"]
    assert drain(ghosts) == [GhostSeen(QUOTES, "#2")]
    assert stub._counters.ghosts_by_symbol == {"#2": 1}


async def test_ghosts_by_symbol_stops_growing_at_its_bound():
    from tickactors._actors.market_delivery import MAX_GHOST_SYMBOLS

    stub, _, _ = session_stub({QUOTES: {"ESZ6"}, BOOK: set()})
    batch = MarketBatch()
    batch.quotes += [Quote(f"#{i}", i) for i in range(MAX_GHOST_SYMBOLS + 10)]
    Session._filter(stub, batch, 1.0)  # type: ignore[arg-type]
    Session._filter(stub, batch, 2.0)  # type: ignore[arg-type]
    assert len(stub._counters.ghosts_by_symbol) == MAX_GHOST_SYMBOLS
    assert stub._counters.ghosts_by_symbol["#0"] == 2
    assert stub._counters.ghost_ticks == 2 * (MAX_GHOST_SYMBOLS + 10)


async def test_a_kind_the_feed_keeps_no_set_for_is_all_ghosts():
    stub, _, ghosts = session_stub({TRADES: {"BTCUSDT"}, BOOK: set()})
    batch = MarketBatch()
    batch.trades.append(Tick("BTCUSDT", Decimal(1)))
    batch.quotes.append(Quote("BTCUSDT"))
    assert bool(batch)
    out = Session._filter(stub, batch, 3.0)  # type: ignore[arg-type]
    assert out == [(TRADES, batch.trades)]
    assert drain(ghosts) == [GhostSeen(QUOTES, "BTCUSDT")]
    assert not MarketBatch()


QUOTE = Quote(
    "ESZ6",
    123456,
    bid=Decimal("18405.12"),
    bid_size=Decimal(7),
    offer=Decimal("18410.0"),
    offer_size=None,
    last=Decimal("18405.0"),
    last_size=Decimal(2),
    total_volume=Decimal(4118),
    exchange_time=1618289946.588,
    received_at=1.25,
    fields={"HighPrice": Decimal("18500.25")},
)


async def test_the_runner_writes_a_quote_as_json_and_as_text():
    assert market_dict(QUOTE, 100.0) == {
        "kind": "quote",
        "symbol": "ESZ6",
        "price": "18405.0",
        "bid": "18405.12",
        "bid_size": "7",
        "offer": "18410.0",
        "offer_size": None,
        "last_size": "2",
        "total_volume": "4118",
        "contract_id": 123456,
        "exchange_time": 1618289946.588,
        "received_at": 101.25,
        "HighPrice": Decimal("18500.25"),
    }
    stream = MemoryLines()
    await JsonLines(stream).market([QUOTE, Quote("#9", 9)])
    first, second = (orjson.loads(line) for line in stream.text().splitlines())
    assert first["HighPrice"] == "18500.25" and first["price"] == "18405.0"
    assert second["price"] is None and second["bid"] is None
    stream = MemoryLines()
    await TextLines(stream).market([QUOTE, Quote("#9", 9)])
    assert stream.text().splitlines() == [
        "quote ESZ6         18405.12 / 18410.0 last 18405.0 x 2",
        "quote #9           - / - last - x None",
    ]
