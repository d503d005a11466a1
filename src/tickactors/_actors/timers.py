"""Wait for a message or a machine's deadline, whichever comes first: the request tracker's loop."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def receive_or_deadline(
    inbox: trio.MemoryReceiveChannel[T], next_deadline: Callable[[], float | None]
) -> T | None:
    """The next message, or None once ``next_deadline()`` has passed (time for ``poll``)."""
    deadline = next_deadline()
    with trio.move_on_at(math.inf if deadline is None else deadline):
        return await inbox.receive()
    return None
