"""A slot's shift: the reconciler actor and the staleness monitor its connections serve.

A shift serves the slot's connection and every connection that replaces it after a
failure (a reconnect resends everything desired, as ever). A make-before-break rotation
begins a new shift for the replacement connection, which becomes the slot's when the
replacement proved itself; the old one is retired with its connection
(``_actors/slot.py``, ``_actors/rotation.py``).

A connection tells its shift when it opens and when it is gone
(:meth:`Shift.connection_opened`, :meth:`Shift.connection_closed`): the staleness clock
starts and stops, and the reconciler hears it in messages, ``ConnectionOpened`` (the
connection's number: where its requests go from now on) and ``ConnectionLost``. Nobody
else touches the reconciler's state.

What the connection streams (:meth:`Shift.carried`: desired and confirmed) is what a
rotation's replacement must prove it delivers. A connection the venue ends in the very
step that starts the rotation (Tradovate's ``shutdown`` event and ``c[...]`` in one read)
is gone before the rotator asks; so the shift keeps what its connection streamed when it
went, until the next one opens.
"""

from __future__ import annotations

import trio

from .._core.reconciler import ConnectionLost
from .._core.staleness import StalenessMonitor
from .._values import StreamKind
from .messages import ConnectionOpened
from .reconciling import ReconcilerActor


class Shift:
    """A reconciler actor and its staleness monitor, and the scope that ends the actor."""

    def __init__(self, actor: ReconcilerActor, monitor: StalenessMonitor) -> None:
        self.actor = actor
        self.monitor = monitor
        self._scope = trio.CancelScope()
        #: what the last connection streamed when it went (None while one serves)
        self._carried_at_close: dict[StreamKind, frozenset[str]] | None = None

    async def run(self) -> None:
        """Run the shift's reconciler actor until :meth:`retire`."""
        with self._scope:
            await self.actor.run()

    def connection_opened(self, connection: int, now: float) -> None:
        """Connection ``connection`` serves this shift from ``now``."""
        self._carried_at_close = None
        self.monitor.connection_opened(now)
        self.actor.inbox.send_nowait(ConnectionOpened(connection))

    def connection_closed(self) -> None:
        """The connection that served this shift is gone (whatever the reason)."""
        self._carried_at_close = self.carried()  # before the reconciler forgets it
        self.actor.inbox.send_nowait(ConnectionLost())
        self.monitor.connection_closed()

    def carried(self) -> dict[StreamKind, frozenset[str]]:
        """What the connection streams: desired and confirmed, per kind (once it is gone,
        what it streamed when it went)."""
        if self._carried_at_close is not None:
            return self._carried_at_close
        machine = self.actor.machine
        out = {}
        for kind in machine.kinds:
            symbols = machine.confirmed(kind) & machine.desired(kind)
            if symbols:
                out[kind] = symbols
        return out

    def retire(self) -> None:
        """No connection will serve this shift again: its actor stops."""
        self._scope.cancel()
