"""The batch hand-off: batches, bounds, policies, closing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tickactors import Policy
from tickactors._actors.queues import BatchQueue


async def test_consumer_takes_everything_waiting_in_one_batch():
    q: BatchQueue[int] = BatchQueue()
    q.put_nowait([1, 2])
    q.put_nowait([3])
    assert await q.get_batch() == [1, 2, 3]
    assert len(q) == 0


async def test_get_waits_for_data_and_wakes_once():
    q: BatchQueue[int] = BatchQueue()
    got: list[list[int]] = []

    async def consumer():
        got.append(await q.get_batch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        q.put_nowait([1])
        q.put_nowait([2, 3])
    assert got == [[1, 2, 3]]


async def test_block_policy_waits_for_room(autojump_clock):
    q: BatchQueue[int] = BatchQueue(capacity=4)
    q.put_nowait([1, 2, 3, 4])
    done_at: list[float] = []

    async def producer():
        await q.put([5])
        done_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.sleep(7)
        assert done_at == []
        assert q.blocked == 1
        assert await q.get_batch() == [1, 2, 3, 4]
    assert done_at == [7.0]
    assert await q.get_batch() == [5]


async def test_drop_oldest_never_waits_and_counts():
    q: BatchQueue[int] = BatchQueue(capacity=3, policy=Policy.DROP_OLDEST)
    assert q.put_nowait(range(5)) == 2
    assert await q.get_batch() == [2, 3, 4]
    assert q.statistics()["dropped"] == 2


async def test_max_items_leaves_the_rest():
    q: BatchQueue[int] = BatchQueue()
    q.put_nowait(range(5))
    assert await q.get_batch(max_items=2) == [0, 1]
    assert await q.get_batch() == [2, 3, 4]


async def test_close_drains_then_ends():
    q: BatchQueue[int] = BatchQueue()
    q.put_nowait([1])
    q.close()
    assert await q.get_batch() == [1]
    with pytest.raises(trio.EndOfChannel):
        await q.get_batch()
    with pytest.raises(trio.ClosedResourceError):
        q.put_nowait([2])


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        BatchQueue(capacity=0)
