"""The one exception a user should see when a feed (or a sink's background task) fails."""

from __future__ import annotations

import trio

from ._errors import FeedError


def unwrap(
    group: BaseExceptionGroup[BaseException], body_errors: list[BaseException]
) -> BaseException:
    """The one exception a user should see for a failed feed.

    The user's own exception comes back exactly as the body raised it (a group
    from the user's own nursery included). A failure of the feed comes back as a
    ``FeedError`` (an unexpected one wrapped, its cause kept).
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
    if len(leaves) == 1 and isinstance(leaves[0], FeedError):
        return leaves[0]
    error = FeedError("the feed failed: " + "; ".join(f"{type(e).__name__}: {e}" for e in leaves))
    error.__cause__ = leaves[0] if len(leaves) == 1 else group
    return error
