"""``open_feed(on_batch=...)``: the reader calls user code, no queue, no second task.

Against the fake venue under the autojump clock, as ``test_feed_actors.py``; a real socket
in the last test (the batched transport's reads are what ``on_batch`` is called per).
"""

from __future__ import annotations

import functools
from decimal import Decimal

import pytest
import trio
import trio.testing

import tickactors
from tickactors import BOOK, TRADES, MarketData, Tick
from tickactors.sim import open_simulator
from tickactors.venues import AllTick

from .fake_venue import FakeNetwork
from .test_feed_actors import TOKEN, subscribed, venue


async def test_the_reader_calls_on_batch_with_each_reads_wanted_items(autojump_clock):
    net = FakeNetwork()
    calls: list[list[MarketData]] = []
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=1000, on_batch=calls.append
    ) as feed:
        conn = await subscribed(net, feed, "A", "B")
        for seq in range(3):
            conn.trade("A", price="1.25", seq=seq)
        conn.trade("GHOST", seq=9)  # never subscribed: a ghost, not delivered
        conn.trade("B", seq=3)
        await trio.sleep(1)
        # The fake transport hands over everything waiting in one read: one call.
        assert [[(t.symbol, t.seq) for t in batch] for batch in calls] == [
            [("A", 0), ("A", 1), ("A", 2), ("B", 3)]
        ]
        tick = calls[0][0]
        assert isinstance(tick, Tick) and tick.price == Decimal("1.25")
        conn.trade("B", seq=4)
        await trio.sleep(1)
        assert [[t.seq for t in batch] for batch in calls[1:]] == [[4]]
        stats = feed.statistics()
        assert stats["callback"] == {"calls": 2, "items": 5}
        assert stats["connection"]["ghost_ticks"] == 1
        # Nothing was queued on the way.
        assert stats["queue"]["put"] == 0 and stats["queue"]["waiting"] == 0
        # An unsubscribe takes effect for the very next read.
        feed.unsubscribe("A")
        conn.trade("A", seq=5)
        conn.trade("B", seq=6)
        await trio.sleep(1)
        assert [[t.seq for t in batch] for batch in calls[2:]] == [[6]]


async def test_a_feed_with_on_batch_has_no_queue_to_read(autojump_clock):
    net = FakeNetwork()
    async with tickactors.open_feed(
        venue(), transport_factory=net, stale_after=1000, on_batch=lambda batch: None
    ) as feed:
        for call in (
            feed.batches,
            feed.ticks,
            functools.partial(feed.batches, kind=TRADES),
            functools.partial(feed.ticks, kind=BOOK),
        ):
            with pytest.raises(RuntimeError, match="on_batch"):
                call()
        with pytest.raises(RuntimeError, match="on_batch"):
            await feed.get_batch()
        # The rest of the feed works as ever.
        await subscribed(net, feed, "A")
        async for event in feed.events():
            if event.event == "subscribed":
                break


@pytest.mark.parametrize("error", [ValueError("bad tick"), OSError(28, "No space left")])
async def test_an_exception_of_on_batch_ends_the_feed_and_comes_back_as_itself(
    autojump_clock, error
):
    """An OSError of the user's is not taken for the connection's: no reconnect, no retry."""
    net = FakeNetwork()
    seen: list[int] = []

    def on_batch(batch: list[MarketData]) -> None:
        seen.extend(t.seq or 0 for t in batch if isinstance(t, Tick))
        if len(seen) >= 2:
            raise error

    with pytest.raises(type(error)) as raised:
        async with tickactors.open_feed(
            venue(), transport_factory=net, stale_after=1000, on_batch=on_batch
        ) as feed:
            conn = await subscribed(net, feed, "A")
            for seq in range(5):
                conn.trade("A", seq=seq)
                await trio.sleep(0.1)
            await trio.sleep(60)
            pytest.fail("the feed should have ended")
    assert raised.value is error
    assert seen == [0, 1]  # no call after the one that raised
    assert len(net.transports) == 1  # never reconnected


async def test_a_slow_on_batch_loses_nothing_whatever_the_buffer(autojump_clock):
    """No queue, no policy: a function that takes its time holds the reader back, and every
    tick arrives, in order (the venue's frames wait in the transport meanwhile)."""
    net = FakeNetwork()
    got: list[int] = []
    clock = autojump_clock
    all_in = trio.Event()

    def on_batch(batch: list[MarketData]) -> None:
        got.extend(t.seq or 0 for t in batch if isinstance(t, Tick))
        clock.jump(0.2)  # the function "took" 200 ms of the feed's clock
        if len(got) >= 200:
            all_in.set()

    async with tickactors.open_feed(
        venue(),
        transport_factory=net,
        stale_after=5,
        buffer=1,
        policies="trades=drop-oldest",
        on_batch=on_batch,
    ) as feed:
        conn = await subscribed(net, feed, "A")
        for seq in range(200):
            conn.trade("A", seq=seq)
            if seq % 7 == 0:
                await trio.sleep(0.01)
        await all_in.wait()
        assert got == list(range(200))
        stats = feed.statistics()
        assert stats["queue"]["dropped_by_symbol"] == {}
        assert stats["connection"]["connects"] == 1
        assert feed._health.counts.get("gap", 0) == 0


async def _no(batch: list[MarketData]) -> None:
    del batch


class _AsyncCall:
    async def __call__(self, batch: list[MarketData]) -> None:
        del batch


@pytest.mark.parametrize(
    ("on_batch", "message"),
    [
        (_no, "plain synchronous function"),
        (functools.partial(_no), "plain synchronous function"),
        (_AsyncCall(), "plain synchronous function"),
        ("print", "must be a function, not str"),
    ],
)
async def test_on_batch_must_be_a_plain_function(on_batch, message):
    with pytest.raises(TypeError, match=message):
        async with tickactors.open_feed(venue(), on_batch=on_batch):
            pass  # pragma: no cover


async def test_on_batch_over_a_real_socket_against_the_simulator():
    """The default transport on loopback: every trade the simulator sends for the symbol
    arrives, through on_batch, as validated ``Tick`` values."""
    got: list[Tick] = []
    enough = trio.Event()

    def on_batch(batch: list[MarketData]) -> None:
        got.extend(t for t in batch if isinstance(t, Tick))
        if len(got) >= 20:
            enough.set()

    async with open_simulator("alltick", seed=3) as sim:
        with trio.fail_after(30):
            async with tickactors.open_feed(
                AllTick(url=sim.url, token=TOKEN), on_batch=on_batch
            ) as f:
                f.subscribe("BTCUSDT")
                await enough.wait()
    assert {t.symbol for t in got} == {"BTCUSDT"}
    assert all(t.price > 0 for t in got)


async def test_on_batch_sees_each_trade_once_across_a_rotation(autojump_clock):
    """Make-before-break with on_batch: during the overlap both connections' readers call
    it, and the rotation's de-duplication still hands over each trade exactly once."""
    from .test_feed_rotation import AGE, URL, Market

    net = FakeNetwork()
    market = Market(net)
    got: list[tuple[str, int | None]] = []

    def on_batch(batch: list[MarketData]) -> None:
        got.extend((t.symbol, t.seq) for t in batch if isinstance(t, Tick))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(market.run)
        venue = AllTick(url=URL, token=TOKEN)
        async with tickactors.open_feed(
            venue, transport_factory=net, seed=4, on_batch=on_batch, **AGE
        ) as feed:
            feed.subscribe("A", "B")
            async for event in feed.events():
                if event.event == "rotated":
                    rotated = event
                    break
            await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert rotated.detail["duplicates"] > 0  # the overlap carried trades twice ...
    for code in ("A", "B"):  # ... and the user saw each once, in order
        assert [seq for symbol, seq in got if symbol == code] == list(
            range(1, market.seq[code] + 1)
        )
