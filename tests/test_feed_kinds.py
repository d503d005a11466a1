"""Consuming one stream kind: ``feed.ticks(kind=...)`` and ``feed.batches(kind=...)``.

A consumer of one kind takes from that kind's lane of the hand-off and leaves the other
kinds for their own consumer; its items are typed precisely (``tests/test_examples.py``
type-checks the examples that rely on it, ``test_one_kind_is_typed_precisely`` a snippet).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import trio
import trio.testing

import tickactors
from tickactors import BOOK, QUOTES, TRADES, BookSnapshot, Tick
from tickactors.venues import AllTick

from .fake_venue import FakeNetwork, FakeTransport
from .mypy_support import run_mypy

URL = "ws://127.0.0.1:1/quote-b-ws-api"


def depth(transport: FakeTransport, symbol: str, price: str = "2.5", seq: int = 1) -> None:
    transport.push(
        {
            "cmd_id": 22999,
            "data": {
                "code": symbol,
                "seq": seq,
                "tick_time": 1,
                "bids": [{"price": price, "volume": "1"}],
                "asks": [{"price": price, "volume": "2"}],
            },
        }
    )


async def test_each_kind_to_its_own_consumer_and_every_kind_without(autojump_clock):
    net = FakeNetwork()
    venue = AllTick(url=URL, token="t")
    async with tickactors.open_feed(venue, transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("A", "B")
        feed.subscribe("A", kind=BOOK)
        trades: list[Tick] = []
        books: list[BookSnapshot] = []

        async def take_trades() -> None:
            async for tick in feed.ticks(kind=TRADES):
                trades.append(tick)

        async def take_books() -> None:
            async for batch in feed.batches(kind=BOOK):
                books.extend(batch)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(take_trades)
            nursery.start_soon(take_books)
            for seq in range(1, 4):
                conn.trade("A", seq=seq)
                depth(conn, "A", seq=seq)
                conn.trade("B", seq=seq)
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert [(t.symbol, t.seq) for t in trades] == [
            (symbol, seq) for seq in range(1, 4) for symbol in ("A", "B")
        ]
        assert all(type(t) is Tick for t in trades)
        assert [(b.symbol, b.seq) for b in books] == [("A", 1), ("A", 2), ("A", 3)]
        assert all(type(b) is BookSnapshot for b in books)

        # Without kind: every kind in one batch, as before.
        conn.trade("A", seq=9)
        depth(conn, "A", seq=9)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(type(item).__name__ for item in await feed.get_batch()) == [
            "BookSnapshot",
            "Tick",
        ]


async def test_one_kind_leaves_the_others_waiting_and_drops_nothing(autojump_clock):
    net = FakeNetwork()
    venue = AllTick(url=URL, token="t")
    async with tickactors.open_feed(venue, transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("A")
        feed.subscribe("A", kind=BOOK)
        conn.trade("A", seq=1)
        depth(conn, "A", seq=1)
        await trio.testing.wait_all_tasks_blocked()
        got = await feed.batches(kind=TRADES).__anext__()
        assert [(t.symbol, t.seq) for t in got] == [("A", 1)]
        assert feed.statistics()["queue"]["waiting"] == 1  # the book waits for its consumer
        (book,) = await feed.batches(kind=BOOK).__anext__()
        assert book.seq == 1
        assert feed.statistics()["queue"]["dropped"] == 0


async def test_one_kind_after_an_unsubscribe_never_yields_the_symbol(autojump_clock):
    net = FakeNetwork()
    venue = AllTick(url=URL, token="t")
    async with tickactors.open_feed(venue, transport_factory=net, stale_after=1000) as feed:
        conn = await net.wait_connections(1)
        feed.subscribe("A", "B")
        conn.trade("A", seq=1)
        conn.trade("B", seq=1)
        await trio.testing.wait_all_tasks_blocked()
        feed.unsubscribe("A")  # its tick is queued already
        conn.trade("B", seq=2)
        await trio.testing.wait_all_tasks_blocked()
        ticks = feed.ticks(kind=TRADES)
        assert [(t.symbol, t.seq) for t in [await ticks.__anext__(), await ticks.__anext__()]] == [
            ("B", 1),
            ("B", 2),
        ]


async def test_a_kind_the_venue_lacks_is_refused_and_iteration_ends_with_the_feed(
    autojump_clock,
):
    net = FakeNetwork()
    venue = AllTick(url=URL, token="t")
    async with tickactors.open_feed(venue, transport_factory=net, stale_after=1000) as feed:
        with pytest.raises(ValueError, match="alltick has no quotes stream"):
            feed.ticks(kind=QUOTES)
        with pytest.raises(ValueError, match="alltick has no quotes stream"):
            feed.batches(kind=QUOTES)
        ticks = feed.ticks(kind=TRADES)
    with pytest.raises(StopAsyncIteration):
        await ticks.__anext__()  # the feed closed: the iteration ends


def test_one_kind_is_typed_precisely(tmp_path: Path) -> None:
    """``mypy --strict``: each kind's items without ``isinstance``; without kind, the union."""
    snippet = tmp_path / "user_code.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from decimal import Decimal

            import tickactors
            from tickactors import BOOK, QUOTES, TRADES, StreamKind


            async def consume(feed: tickactors.Feed) -> None:
                async for tick in feed.ticks(kind=TRADES):
                    price: Decimal = tick.price
                async for book in feed.ticks(kind=tickactors.BOOK):
                    best = book.bids[0].price
                async for quote in feed.ticks(kind=StreamKind.QUOTES):
                    bid: Decimal | None = quote.bid
                async for trades in feed.batches(kind=TRADES):
                    prices = [tick.price for tick in trades]
                async for books in feed.batches(kind=BOOK):
                    asks = [book.asks for book in books]
                async for quotes in feed.batches(kind=QUOTES):
                    offers = [quote.offer for quote in quotes]
                async for item in feed.ticks():
                    reveal_type(item)
                async for batch in feed.batches():
                    reveal_type(batch)
            """
        )
    )
    status, report = run_mypy(snippet)
    notes = [line for line in report.splitlines() if "Revealed type" in line]
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert errors == [], report
    union = "tickactors._values.Tick | tickactors._values.BookSnapshot | tickactors._values.Quote"
    assert len(notes) == 2 and union in notes[0] and f"list[{union}]" in notes[1], report
    assert status == 0, report
