"""The one exception a user should see when a feed (or a sink's background task) fails,
and :func:`running`, the ``async with`` body that keeps it so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

from .._actors.hand_off import CallbackFailed
from .._errors import FeedError


def unwrap(
    group: BaseExceptionGroup[BaseException], body_errors: list[BaseException]
) -> BaseException:
    """The one exception a user should see for a failed feed.

    The user's own exception comes back exactly as the body raised it (a group
    from the user's own nursery included), and so does the exception of the user's
    ``on_batch`` (it left the actors wrapped in ``CallbackFailed``). A failure of the feed
    comes back as a ``FeedError`` (an unexpected one wrapped, its cause kept).
    """

    def leaves_of(exc: BaseException) -> list[BaseException]:
        if isinstance(exc, BaseExceptionGroup):
            return [leaf for inner in exc.exceptions for leaf in leaves_of(inner)]
        return [] if isinstance(exc, trio.Cancelled) else [exc]

    for body_error in body_errors:
        if leaves_of(body_error):
            return body_error  # not merely the cancellation a failing actor caused
    leaves = leaves_of(group)
    if not leaves:
        return group  # only cancellations: the enclosing cancel scope absorbs them
    for leaf in leaves:
        if not isinstance(leaf, Exception):
            return leaf  # KeyboardInterrupt and friends
    for leaf in leaves:
        if isinstance(leaf, CallbackFailed):
            return leaf.error  # the first failure; what followed was the feed ending
    if len(leaves) == 1 and isinstance(leaves[0], FeedError):
        return leaves[0]
    error = FeedError("the feed failed: " + "; ".join(f"{type(e).__name__}: {e}" for e in leaves))
    error.__cause__ = leaves[0] if len(leaves) == 1 else group
    return error


@asynccontextmanager
async def running(
    *tasks: Callable[[], Awaitable[object]],
    stop: Callable[[], None],
    started: Callable[..., Awaitable[object]] | None = None,
) -> AsyncIterator[None]:
    """Run ``tasks`` while the body runs; when it ends, call ``stop()`` and cancel them.

    ``started`` (a ``nursery.start`` task) is up before the body begins. A task that must
    finish its work (a publisher draining its buffer) shields itself; ``stop()`` is its
    signal. The body's own exception comes back unchanged; a failing task comes back as a
    :class:`~tickactors.FeedError` (:func:`unwrap`), with its own cause, never the group
    it travelled in.
    """
    body_errors: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            if started is not None:
                await nursery.start(started)
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
        error = unwrap(group, body_errors)
        if error is group:
            raise
        raise error from error.__cause__
