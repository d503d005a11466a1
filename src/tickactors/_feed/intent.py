"""The user's side of a feed's subscriptions: ``subscribe``, ``unsubscribe``, ``desired``.

:class:`FeedIntent` is a base class of :class:`~tickactors.Feed`. A call validates its
symbols, changes the desired set of its stream kind, and hands the change to the
reconciler actor: it appends it to the actor's ``intents`` list, and the first change
since the actor last took them puts that list in the actor's inbox (unless the actor keeps
changes back until it could send a request: ``ReconcilerActor.eager``). A burst of calls
thus costs one inbox item and one step of the actor, which takes the list whole (one
``Intents`` event, handled exactly as the Want/Unwant events of each change in turn),
never one channel hop per call. A call that changes nothing hands nothing over.

The hot path is one symbol of the main stream that the feed validated before: the feed
remembers a bounded number of symbols (as written, exactly ``str``) with their validated
spelling and the two changes that want and unwant them, so that such a call is one set
operation and one list append. ``validate_symbol`` is a pure function of the symbol, so
remembering it changes no outcome: an invalid symbol is never remembered and raises
``InvalidSymbolError`` every time, before anything changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._actors.reconciling import ReconcilerActor
from .._core.reconciler import IntentChange
from .._errors import FeedClosedError
from .._values import StreamKind
from ..venues._dialect import Dialect
from .slot_table import Slots

__all__ = ["FeedIntent"]

#: Symbols whose validation the feed remembers (beyond: it forgets them all and starts anew).
_KNOWN_SYMBOLS = 4096


class FeedIntent:
    """What the user wants streamed, and its way to the reconciler actor."""

    _dialect: Dialect
    _reconciler: ReconcilerActor
    _slots: Slots
    _closed: bool
    _filter_again: bool  # an unsubscribe happened: filter ticks already queued again

    def _init_intent(self, dialect: Dialect, *, sharded: bool = False) -> None:
        self._wanted: dict[StreamKind, set[str]] = {kind: set() for kind in dialect.kinds}
        #: Several slots under a shard plan: every change goes through ``slots.place``, and
        #: no symbol is remembered for the fast path (which knows slot 0 alone).
        self._sharded = sharded
        self._main_kind = dialect.kinds[0]
        self._main = self._wanted[self._main_kind]  # the same set, for the hot path
        # As written -> (as validated, the change that wants it, the one that unwants it).
        self._known: dict[str, tuple[str, IntentChange, IntentChange]] = {}

    def _hand_intents_to(self, reconciler: ReconcilerActor) -> None:
        self._intents = reconciler.intents

    def subscribe(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Want these symbols' ``kind`` stream. Validated at once; reconciled in the background.

        Raises ``InvalidSymbolError`` (and changes nothing) if any symbol is invalid.
        """
        if len(symbols) == 1 and kind is None and not self._closed:
            # The hot path: one symbol of the main stream, validated before (the same as below).
            known = self._known.get(symbols[0]) if type(symbols[0]) is str else None
            if known is not None:
                wanted = self._main
                if known[0] not in wanted:
                    wanted.add(known[0])
                    intents = self._intents
                    if not intents and self._reconciler.eager:
                        self._reconciler.inbox.send_nowait(intents)
                    intents.append(known[1])
                return
        kind = self._kind(kind)
        new = self._validate(symbols, kind) - self._wanted[kind]
        if new:
            if self._sharded:
                self._slots.place(kind, new, True)  # CapacityError: nothing changed
                self._wanted[kind] |= new
                return
            self._wanted[kind] |= new
            self._intend((kind, tuple(new), True))

    def unsubscribe(self, *symbols: str, kind: StreamKind | None = None) -> None:
        """Stop wanting these symbols; their ticks stop reaching you at once."""
        if len(symbols) == 1 and kind is None and not self._closed:
            known = self._known.get(symbols[0]) if type(symbols[0]) is str else None
            if known is not None:
                wanted = self._main
                if known[0] in wanted:
                    wanted.remove(known[0])
                    self._filter_again = True
                    intents = self._intents
                    if not intents and self._reconciler.eager:
                        self._reconciler.inbox.send_nowait(intents)
                    intents.append(known[2])
                return
        kind = self._kind(kind)
        gone = self._validate(symbols, kind) & self._wanted[kind]
        if gone:
            self._wanted[kind] -= gone
            self._filter_again = True
            if self._sharded:
                self._slots.place(kind, gone, False)
                return
            self._intend((kind, tuple(gone), False))

    def _intend(self, change: IntentChange) -> None:
        """Hand a change to the reconciler: the first one since it last took them wakes it
        (the hot paths above do the same inline)."""
        intents = self._intents
        if not intents and self._reconciler.eager:
            self._reconciler.inbox.send_nowait(intents)
        intents.append(change)

    def _validate(self, symbols: Iterable[object], kind: StreamKind) -> frozenset[str]:
        if self._closed:
            raise FeedClosedError("the feed is closed")
        if kind not in self._wanted:
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
        return self._dialect.kinds[0] if kind is None else kind

    def desired(self, kind: StreamKind | None = None) -> frozenset[str]:
        return frozenset(self._wanted[self._kind(kind)])
