"""SIGINT and SIGTERM for the runner's commands: a request to stop, never a KeyboardInterrupt.

:func:`open_stop` installs a handler for both signals for as long as its block runs,
even when SIGINT started ignored (a background job of a non-interactive shell starts
so, and Python then never raises KeyboardInterrupt for it), and a task that takes every
signal as it comes. The first sets :attr:`Stop.first`, any later one
:attr:`Stop.again` (a command may take that as "now, not gracefully"). Taking them all
matters: Trio delivers a signal left unread when the receiver closes once more, to the
handler before it: a KeyboardInterrupt for SIGINT, death for SIGTERM.

Before that, the entry point holds both signals back (:func:`hold`, a blocked signal
mask, so no handler runs at a bad moment while Python parses and Trio starts);
:func:`open_stop` lets them through (:func:`release`) once its handler is in place,
and a signal that came meanwhile arrives then, as a stop request.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio

from .._feed.unwrap import running

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def hold() -> set[int | signal.Signals] | None:
    """Block SIGINT and SIGTERM in this thread; the mask before (None: no signal masks here)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def release() -> None:
    """Unblock SIGINT and SIGTERM in this thread (a held one is delivered now)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def restore(mask: set[int | signal.Signals] | None) -> None:
    """Put back the mask :func:`hold` returned."""
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class Stop:
    """What the signals asked for so far."""

    def __init__(self) -> None:
        self.first = trio.Event()
        self.again = trio.Event()
        self.name: str | None = None  # the first signal's name, "SIGINT" or "SIGTERM"

    def request(self, name: str) -> None:
        """Stop as if signal ``name`` had come (the first time; later, :attr:`again`)."""
        if self.first.is_set():
            self.again.set()
            return
        self.name = name
        self.first.set()

    async def _take(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            self.request(signal.Signals(signum).name)


@asynccontextmanager
async def open_stop() -> AsyncIterator[Stop]:
    """A :class:`Stop` that SIGINT and SIGTERM set while the block runs."""
    stop = Stop()
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        release()
        async with running(partial(stop._take, signals), stop=lambda: None):
            yield stop
