"""Slow-consumer policies per stream kind (``_core/lanes.py``, ``_handoff.MarketQueue``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from tickactors import BOOK, QUOTES, TRADES, BookSnapshot, Quote, Tick
from tickactors._actors.queues import MarketQueue
from tickactors._core.lanes import DEFAULT_POLICIES, Lanes, Policy, parse_policies


def ticks(*symbols: str) -> list[Tick]:
    return [Tick(s, Decimal(n + 1), seq=n) for n, s in enumerate(symbols)]


def books(*symbols: str) -> list[BookSnapshot]:
    return [BookSnapshot(s, (), (), seq=n) for n, s in enumerate(symbols)]


def test_defaults_block_trades_and_conflate_books_and_quotes():
    assert DEFAULT_POLICIES == {
        TRADES: Policy.BLOCK,
        BOOK: Policy.CONFLATE,
        QUOTES: Policy.CONFLATE,
    }


def test_block_never_drops_and_says_when_full():
    lanes = Lanes(3)
    assert lanes.put(TRADES, ticks("A", "B")) == 0 and not lanes.full([TRADES])
    assert lanes.put(TRADES, ticks("C", "D")) == 0  # one batch may overshoot
    assert lanes.full([TRADES]) and not lanes.full([BOOK])
    assert len(lanes.take()) == 4 and not lanes.full([TRADES]) and lanes.dropped == 0


def test_conflate_keeps_the_latest_per_symbol_in_its_first_place():
    lanes = Lanes(10)
    first = books("A", "B", "A", "C", "A")
    assert lanes.put(BOOK, first) == 2
    taken = lanes.take()
    assert [b.symbol for b in taken] == ["A", "B", "C"]
    assert taken[0] is first[4]  # the latest A, where the first A stood
    assert lanes.drops == {"book:A": 2} and not lanes.full([BOOK])


def test_drop_oldest_is_bounded_and_counts_by_symbol():
    lanes = Lanes(3, {TRADES: Policy.DROP_OLDEST})
    assert lanes.put(TRADES, ticks("A", "B", "A", "C", "D")) == 2
    assert [t.symbol for t in lanes.take()] == ["A", "C", "D"]
    assert lanes.drops == {"trades:A": 1, "trades:B": 1}
    assert not lanes.full([TRADES])


def test_take_goes_lane_by_lane_and_honours_max_items():
    lanes = Lanes(100)
    lanes.put(BOOK, books("X", "Y"))
    lanes.put(TRADES, ticks("A", "B", "C"))
    lanes.put(QUOTES, [Quote("Q")])
    assert [i.symbol for i in lanes.take(4)] == ["A", "B", "C", "X"]
    assert [i.symbol for i in lanes.take()] == ["Y", "Q"]
    assert lanes.take() == [] and not lanes


def test_take_kind_takes_one_lane_and_leaves_the_others():
    lanes = Lanes(100, {TRADES: Policy.DROP_OLDEST})
    lanes.put(BOOK, books("X", "Y", "X"))
    lanes.put(TRADES, ticks("A", "B", "C"))
    assert [i.symbol for i in lanes.take_kind(TRADES, 2)] == ["A", "B"]
    assert [i.symbol for i in lanes.take_kind(BOOK, 1)] == ["X"]
    assert len(lanes.lane(TRADES)) == 1 and len(lanes.lane(BOOK)) == 1
    assert [i.symbol for i in lanes.take_kind(BOOK)] == ["Y"]
    assert lanes.take_kind(QUOTES) == [] and not lanes.lane(QUOTES)
    assert [i.symbol for i in lanes.take()] == ["C"] and not lanes


async def test_a_consumer_of_one_kind_waits_for_that_kind_alone(autojump_clock):
    queue = MarketQueue(2)
    got: list[str] = []

    async def books_consumer() -> None:
        got.extend(i.symbol for i in await queue.get_kind_batch(BOOK))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(books_consumer)
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait([(TRADES, ticks("A", "B"))])
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # trades do not wake it for good
        queue.put_nowait([(BOOK, books("X"))])
    assert got == ["X"]
    assert queue.would_block([(TRADES, ticks("C"))])  # the trades still wait, untouched
    assert [i.symbol for i in await queue.get_kind_batch(TRADES)] == ["A", "B"]
    assert not queue.would_block([(TRADES, ticks("C"))])
    queue.close()
    with pytest.raises(trio.EndOfChannel):
        await queue.get_kind_batch(TRADES)


def test_parse_policies():
    assert parse_policies("trades=drop-oldest, quotes=block") == {
        TRADES: Policy.DROP_OLDEST,
        BOOK: Policy.CONFLATE,
        QUOTES: Policy.BLOCK,
    }
    assert parse_policies("") == DEFAULT_POLICIES
    for bad in ("trades", "trades=fast", "ticks=block", "=block"):
        with pytest.raises(ValueError, match="KIND=POLICY"):
            parse_policies(bad)


@given(
    st.sampled_from(list(Policy)),
    st.integers(1, 8),
    st.lists(
        st.one_of(
            st.lists(st.sampled_from("ABCDE"), max_size=12).map(lambda s: ("put", s)),
            st.integers(0, 10).map(lambda n: ("take", n)),
        ),
        max_size=30,
    ),
)
def test_every_item_is_taken_dropped_or_waiting_and_memory_is_bounded(policy, capacity, steps):
    lanes = Lanes(capacity, {TRADES: policy})
    put = taken = 0
    for action, arg in steps:
        if action == "put":
            if policy is Policy.BLOCK and lanes.full([TRADES]):
                continue  # a reader waits here
            lanes.put(TRADES, ticks(*arg))
            put += len(arg)
        else:
            taken += len(lanes.take(arg or None))
        bound = {Policy.BLOCK: capacity + 12, Policy.DROP_OLDEST: capacity, Policy.CONFLATE: 5}
        assert len(lanes) <= bound[policy]
    assert put == taken + lanes.dropped + len(lanes)
    assert sum(lanes.drops.values()) == lanes.dropped


async def test_a_reader_waits_for_a_full_block_lane_and_only_for_it(autojump_clock):
    queue = MarketQueue(2)
    queue.put_nowait([(TRADES, ticks("A", "B"))])
    done: list[str] = []

    async def reader() -> None:
        await queue.put([(TRADES, ticks("C"))])
        done.append("trades")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert done == [] and queue.blocked == 1
        assert queue.put_nowait([(BOOK, books("X", "X"))]) == 1  # conflate: never waits
        await trio.sleep(5)
        assert done == []
        assert [i.symbol for i in await queue.get_batch()] == ["A", "B", "X"]
        await trio.testing.wait_all_tasks_blocked()
        assert done == ["trades"]
    assert [i.symbol for i in await queue.get_batch()] == ["C"]
    queue.close()
    with pytest.raises(trio.EndOfChannel):
        await queue.get_batch()
