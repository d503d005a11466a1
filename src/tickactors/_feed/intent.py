"""The user's side of a feed's subscriptions: what is wanted, and how far the venue came.

A :class:`FeedIntent` is owned by the :class:`~tickactors.Feed`, which hands it its public
``subscribe``, ``unsubscribe``, ``desired``, ``confirmed``, ``rejected``,
``wait_confirmed``, ``is_converged`` and ``wait_converged``. It owns the desired sets
(:attr:`FeedIntent.wanted`; for a feed of one slot they are slot 0's too, read by its
readers' ghost filter, and changed by nobody else) and validates every symbol before
anything changes.

A call changes the desired set of its stream kind and hands the change over: for a feed of
one slot, straight to slot 0's current reconciler, through that reconciler's
``IntentQueue`` (``put``: the first change since the actor last took them wakes it, unless
it keeps changes back until it could send a request); with several slots, through the
shard plan (``Slots.place``), which gives each slot its share. A burst of calls thus costs
one inbox item and one step of the actor, which takes the list whole (one ``Intents``
event, handled exactly as the Want/Unwant events of each change in turn), never one
channel hop per call. A call that changes nothing hands nothing over. When a rotation
replaces slot 0's reconciler, the slot says so (:meth:`FeedIntent.adopted`) and the next
change goes to the new one.

The hot path is one symbol of the main stream that the feed validated before: the intent
remembers a bounded number of symbols (as written, exactly ``str``) with their validated
spelling and the two changes that want and unwant them, so that such a call is one set
operation and one ``list.append``. ``validate_symbol`` is a pure function of the symbol, so
remembering it changes no outcome: an invalid symbol is never remembered and raises
``InvalidSymbolError`` every time, before anything changes. A closed feed remembers
nothing, so every call takes the way that refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._actors.reconciling import IntentQueue
from .._actors.slot import Slot
from .._core.reconciler import IntentChange
from .._errors import FeedClosedError, VenueRejectedError
from .._values import MarketData, StreamKind
from ..venues._dialect import Dialect
from .slot_table import Slots

__all__ = ["FeedIntent"]

#: Symbols whose validation the feed remembers (beyond: it forgets them all and starts anew).
_KNOWN_SYMBOLS = 4096


class FeedIntent:
    """What the user wants streamed, and its way to the slots' reconcilers.

    Built before the feed's :class:`Slots` (whose slot 0 shares :attr:`wanted` when the feed
    has one slot), then handed them with :meth:`hand_to`.
    """

    #: The feed's slots (set by :meth:`hand_to`).
    _slots: Slots
    #: Slot 0's current reconciler's queue: where a change goes on the fast path.
    _queue: IntentQueue

    def __init__(self, dialect: Dialect, *, sharded: bool) -> None:
        self._dialect = dialect
        #: The desired sets by kind. Read them (the feed, slot 0's readers), never change
        #: them: only this object does.
        self.wanted: dict[StreamKind, set[str]] = {kind: set() for kind in dialect.kinds}
        #: Several slots under a shard plan: every change goes through ``Slots.place``, and
        #: no symbol is remembered for the fast path (which knows slot 0 alone).
        self._sharded = sharded
        self._main_kind = dialect.kinds[0]
        self._main = self.wanted[self._main_kind]  # the same set, for the hot path
        # As written -> (as validated, the change that wants it, the one that unwants it).
        self._known: dict[str, tuple[str, IntentChange, IntentChange]] = {}
        self._closed = False
        #: An unsubscribe happened since the oldest item waiting for the user was queued:
        #: the feed passes batches through :meth:`refilter` until the queue ran dry.
        self.filter_again = False

    def hand_to(self, slots: Slots) -> None:
        """Changes of intent go to ``slots`` from now on (to slot 0's reconciler directly,
        for a feed of one slot)."""
        self._slots = slots
        self.adopted(slots.first)

    def adopted(self, slot: Slot) -> None:
        """``slot`` has a new reconciler (a rotation took over): the fast path follows."""
        if slot.number == 0:
            self._queue = slot.intents

    def close(self) -> None:
        """The feed is closed: every call from now on raises ``FeedClosedError``."""
        self._closed = True
        self._known.clear()  # the hot path finds nothing, and the way it falls back refuses

    # -- changes -----------------------------------------------------------------------

    def subscribe(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Want these symbols' ``kind`` stream. Validated at once; reconciled in the background.

        Raises ``InvalidSymbolError`` (and changes nothing) if any symbol is invalid.
        """
        if len(symbols) == 1 and kind is None:
            # The hot path: one symbol of the main stream, validated before (the same as below).
            known = self._known.get(symbols[0]) if type(symbols[0]) is str else None
            if known is not None:
                wanted = self._main
                if known[0] not in wanted:
                    wanted.add(known[0])
                    self._queue.put(known[1])
                return
        kind = self._kind(kind)
        new = self._validate(symbols, kind) - self.wanted[kind]
        if new:
            if self._sharded:
                self._slots.place(kind, new, True)  # CapacityError: nothing changed
                self.wanted[kind] |= new
                return
            self.wanted[kind] |= new
            self._queue.put((kind, tuple(new), True))

    def unsubscribe(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Stop wanting these symbols; their ticks stop reaching you at once."""
        if len(symbols) == 1 and kind is None:
            known = self._known.get(symbols[0]) if type(symbols[0]) is str else None
            if known is not None:
                wanted = self._main
                if known[0] in wanted:
                    wanted.remove(known[0])
                    self.filter_again = True
                    self._queue.put(known[2])
                return
        kind = self._kind(kind)
        gone = self._validate(symbols, kind) & self.wanted[kind]
        if gone:
            self.wanted[kind] -= gone
            self.filter_again = True
            if self._sharded:
                self._slots.place(kind, gone, False)
                return
            self._queue.put((kind, tuple(gone), False))

    def _validate(self, symbols: Iterable[object], kind: StreamKind) -> frozenset[str]:
        if self._closed:
            raise FeedClosedError("the feed is closed")
        if kind not in self.wanted:
            raise ValueError(f"{self._dialect.name} has no {kind} stream")
        validate = self._dialect.validate_symbol
        known = self._known
        main = self._main_kind
        out = []
        remember = not self._sharded
        for symbol in symbols:
            spelled = validate(symbol)
            if remember and type(symbol) is str and symbol not in known:
                if len(known) >= _KNOWN_SYMBOLS:
                    known.clear()
                known[symbol] = (spelled, (main, (spelled,), True), (main, (spelled,), False))
            out.append(spelled)
        return frozenset(out)

    def _kind(self, kind: StreamKind | None) -> StreamKind:
        """``kind``, or the venue's main stream (AllTick: trades; Tradovate: quotes)."""
        return self._main_kind if kind is None else kind

    # -- views -------------------------------------------------------------------------

    def desired(self, kind: StreamKind | None = None) -> frozenset[str]:
        return frozenset(self.wanted[self._kind(kind)])

    def confirmed(self, kind: StreamKind | None = None) -> frozenset[str]:
        return self._slots.confirmed(self._kind(kind))

    def rejected(self, kind: StreamKind | None = None) -> dict[str, tuple[int, str]]:
        return self._slots.rejected(self._kind(kind))

    async def wait_confirmed(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Wait until the venue confirmed every one of ``symbols`` (all desired ones if none).

        Raises ``VenueRejectedError`` if the venue rejected one of them. Put it under
        ``trio.fail_after`` for a deadline.
        """
        kind = self._kind(kind)
        wanted = self._validate(symbols, kind) if symbols else None
        slots = self._slots
        while True:
            target = self.wanted[kind] if wanted is None else wanted
            rejected = slots.rejected(kind)
            for symbol in target:
                if symbol in rejected:
                    code, reason = rejected[symbol]
                    raise VenueRejectedError(code, reason, request=f"subscribe {symbol}")
            if target <= slots.confirmed(kind):
                return
            await slots.wait_changed()

    def is_converged(self) -> bool:
        """True when the venue confirmed every desired symbol (minus rejected ones) and nothing
        undesired is still subscribed, as far as the feed knows (on every connection)."""
        return self._slots.is_converged()

    async def wait_converged(self) -> None:
        """Wait until the venue streams exactly what is desired (minus rejected symbols)."""
        slots = self._slots
        while not slots.is_converged():
            await slots.wait_changed()

    # -- the user's queue --------------------------------------------------------------

    def refilter(self, batch: list[MarketData], *, drained: bool) -> list[MarketData]:
        """``batch`` (queued before an unsubscribe, maybe) without the items of symbols no
        longer desired: a tick of an unwanted symbol never reaches the user. ``drained``:
        nothing older waits any more, so later batches need no second look (until the next
        unsubscribe)."""
        if drained:
            self.filter_again = False
        wanted = self.wanted
        return [item for item in batch if item.symbol in wanted[item.kind]]
