"""Background tasks for the ``async with`` of a sink, without leaking an ExceptionGroup.

:func:`running` lives in ``tickactors._feed.unwrap``, shared with ``open_feed``.
:func:`file_sink_life` is the life both file sinks (``jsonl:``, ``parquet:``) share:
open, a task that rotates on time while the body runs, and a close that a cancellation
cannot cut short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import trio

from .._feed.unwrap import running
from ._events import SinkError


class FileSink(Protocol):
    """What :func:`file_sink_life` needs of a sink."""

    async def open(self) -> None: ...

    async def rotate_on_time(self) -> None: ...

    async def close(self) -> None: ...


@asynccontextmanager
async def file_sink_life(sink: FileSink, display: str) -> AsyncIterator[None]:
    """Open ``sink`` (an ``OSError`` becomes a :class:`SinkError` naming ``display``), run
    its ``rotate_on_time`` while the body runs, then close it, shielded: the close is
    bounded by the sink's own timeout."""
    try:
        await sink.open()
    except OSError as exc:
        raise SinkError(f"{display}: cannot open it: {exc.strerror or exc}") from exc
    try:
        async with running(sink.rotate_on_time, stop=_nothing):
            yield
    finally:
        with trio.CancelScope(shield=True):
            await sink.close()


def _nothing() -> None:
    pass


__all__ = ["FileSink", "file_sink_life", "running"]
