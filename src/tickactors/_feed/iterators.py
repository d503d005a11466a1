"""Async iterators over batches: one item at a time, or one batch at a time.

Plain classes rather than async generators, so that a user who breaks out of
``async for`` leaves nothing for the garbage collector to finalize. They end
(``StopAsyncIteration``) when the queue behind them closes with the feed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class ItemIterator(Generic[T]):
    """Items of the batches ``get_batch()`` returns, in order."""

    def __init__(self, get_batch: Callable[[], Awaitable[list[T]]]) -> None:
        self._get_batch = get_batch
        self._batch: list[T] = []
        self._index = 0

    def __aiter__(self) -> ItemIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._index >= len(self._batch):
            try:
                self._batch = await self._get_batch()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            self._index = 0
        item = self._batch[self._index]
        self._index += 1
        return item


class BatchIterator(Generic[T]):
    """The batches ``get_batch()`` returns."""

    def __init__(self, get_batch: Callable[[], Awaitable[list[T]]]) -> None:
        self._get_batch = get_batch

    def __aiter__(self) -> BatchIterator[T]:
        return self

    async def __anext__(self) -> list[T]:
        try:
            return await self._get_batch()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
