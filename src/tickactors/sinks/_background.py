"""Background tasks for the ``async with`` of a sink, without leaking an ExceptionGroup."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

from .._unwrap import unwrap as _unwrap

__all__ = ["running"]


@asynccontextmanager
async def running(
    *tasks: Callable[[], Awaitable[object]], stop: Callable[[], None]
) -> AsyncIterator[None]:
    """Run ``tasks`` while the body runs; when it ends, call ``stop()`` and cancel them.

    A task that must finish its work (a publisher draining its buffer) shields itself;
    ``stop()`` is its signal. The body's own exception comes back unchanged; a failing
    task comes back as a :class:`~tickactors.FeedError`.
    """
    body_errors: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            for task in tasks:
                nursery.start_soon(task)
            try:
                yield
            except BaseException as exc:
                body_errors.append(exc)
                raise
            finally:
                stop()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = _unwrap(group, body_errors)
        if error is group:
            raise
        raise error from error.__cause__
