"""The demo's scripted faults (``_cli/demo_scripts.py``) play on the user's symbols.

Each script runs against the simulator under the autojump clock, with a feed set up as the
demo sets it up, for its whole scripted minute. With ``--symbols``/``--book-symbols`` given,
the faults hit those symbols, nothing else is ever subscribed (neither by the script's
calls nor in what the simulator streamed), and a step that needs a book is skipped, saying
so, when there is none.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

import tickactors
from tickactors import BOOK
from tickactors._cli.demo_scripts import ALLTICK, DEMO_TOKEN, TRADOVATE, DemoSymbols, DemoVenue
from tickactors.sim import SimConfig, open_simulator

from .event_log import EventLog


class RecordingFeed:
    """The feed, with every subscribe and unsubscribe the script makes written down."""

    def __init__(self, feed: tickactors.Feed) -> None:
        self._feed = feed
        self.calls: list[tuple[str, tuple[str, ...], Any]] = []

    def subscribe(self, *symbols: str, kind: Any = None) -> None:
        self.calls.append(("subscribe", symbols, kind))
        self._feed.subscribe(*symbols, kind=kind)

    def unsubscribe(self, *symbols: str, kind: Any = None) -> None:
        self.calls.append(("unsubscribe", symbols, kind))
        self._feed.unsubscribe(*symbols, kind=kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feed, name)


class Played:
    """What one scripted minute did: what was said, called, streamed and reported."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []
        self.calls: list[tuple[str, tuple[str, ...], Any]] = []
        self.delivered: set[tuple[str, str]] = set()
        self.streamed: set[str] = set()
        self.faults: list[tuple[str, str]] = []
        self.log = EventLog()
        self.confirmed: dict[str, set[str]] = {}

    def said_about(self, fault: str) -> str:
        (message,) = [m for f, m in self.said if f == fault]
        return message


async def play(demo: DemoVenue, symbols: DemoSymbols, *, seconds: float = 64.0) -> Played:
    """Run ``demo``'s script on ``symbols`` for ``seconds`` (no random faults after it)."""
    played = Played()
    config = SimConfig(random_faults=0.0, tokens=frozenset({DEMO_TOKEN}))
    async with open_simulator(demo.name, config=config, seed=3) as sim:
        async with tickactors.open_feed(
            demo.make(sim.url),
            stale_after=demo.stale_after,
            symbol_stale_after=demo.symbol_stale_after,
            seed=3,
        ) as feed:
            feed.subscribe(*symbols.main)
            feed.subscribe(*symbols.books, kind=BOOK)
            recording = RecordingFeed(feed)

            def say(fault: str, message: str) -> None:
                played.said.append((fault, message))

            async def drain() -> None:
                async for batch in feed.batches():
                    played.delivered.update((item.kind.value, item.symbol) for item in batch)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(played.log.follow, feed)
                nursery.start_soon(drain)
                nursery.start_soon(demo.script, sim, recording, say, symbols, 0.0, 3)
                await trio.sleep(seconds)
                with trio.fail_after(30):
                    await feed.wait_converged()
                nursery.cancel_scope.cancel()
            played.calls = recording.calls
            played.confirmed = {kind.value: set(feed.confirmed(kind=kind)) for kind in feed.kinds}
        played.streamed = set(sim.stats.ticks_sent_by_symbol)
        played.faults = [(kind, detail) for _, kind, detail in sim.stats.fault_log]
    return played


def only_theirs(played: Played, symbols: DemoSymbols) -> None:
    """Nothing but the user's symbols was subscribed, streamed or delivered."""
    theirs = set(symbols.main) | set(symbols.books)
    for _, called, kind in played.calls:
        assert set(called) <= (set(symbols.books) if kind is BOOK else set(symbols.main))
    assert played.streamed <= theirs
    assert {symbol for _, symbol in played.delivered} <= theirs


def test_the_steps_pick_the_users_symbols():
    assert DemoSymbols(("A", "B", "C"), ("B",)).silenced == "A"
    assert DemoSymbols(("A", "B", "C"), ("B",)).played == ("C", None)
    assert DemoSymbols(("A", "B", "C"), ("B",)).book == "B"
    assert DemoSymbols(("A",)).played == ("A", None) and DemoSymbols(("A",)).book is None
    assert DemoSymbols((), ("X", "Y")).silenced == "X"
    assert DemoSymbols((), ("X", "Y")).played == ("Y", BOOK)
    empty = DemoSymbols(())
    assert (empty.silenced, empty.played, empty.book) == (None, None, None)


async def test_the_alltick_script_plays_on_the_users_symbols(autojump_clock):
    symbols = DemoSymbols(("ETHUSDT", "XAGUSD"), ("ETHUSDT",))
    played = await play(ALLTICK, symbols)
    only_theirs(played, symbols)
    assert ("silence_symbol", "ETHUSDT duration=6.0") in played.faults
    assert ("ghost", "XAGUSD duration=7.0") in played.faults
    assert "SOLUSDT" not in played.said_about("lose_acks")
    assert [call for call in played.calls if call[1] != ("XAGUSD",)] == []  # played on one
    assert [f for f, _ in played.said] == [
        "stall", "drop", "silence", "ghost", "malformed", "lose_acks", "kick",
    ]  # fmt: skip
    names = played.log.names()
    assert {"stale", "symbol_stale", "ghost", "decode_error", "request_timeout"} <= set(names)
    # in the end the user has what they asked for, no more, no less
    assert played.confirmed["trades"] == {"ETHUSDT", "XAGUSD"}
    assert played.confirmed["book"] == {"ETHUSDT"}


async def test_the_tradovate_script_plays_on_the_users_symbols(autojump_clock):
    symbols = DemoSymbols(("NQH7", "CLG7"), ("CLG7",))
    played = await play(TRADOVATE, symbols)
    only_theirs(played, symbols)
    assert ("silence_symbol", "NQH7 duration=6.0") in played.faults
    assert "CLG7" in played.said_about("p_ticket")
    assert "the CLG7 DOM" in played.said_about("429")
    assert ("subscribe", ("CLG7",), BOOK) in played.calls  # the 429 on the user's own DOM
    names = played.log.names()
    assert {"stale", "penalty", "rate_limited", "shutdown", "symbol_stale"} <= set(names)
    assert played.confirmed["quotes"] == {"NQH7", "CLG7"}
    assert played.confirmed["book"] == {"CLG7"}


async def test_a_step_that_needs_a_book_is_skipped_without_one(autojump_clock):
    symbols = DemoSymbols(("GCJ7",))
    played = await play(TRADOVATE, symbols, seconds=40.0)
    only_theirs(played, symbols)
    assert played.said_about("429").startswith("skipped: ")
    assert "rate_limit_429" not in {kind for kind, _ in played.faults}
    assert all(kind is not BOOK for _, _, kind in played.calls)  # no DOM subscribed
    assert played.confirmed["book"] == set()


@pytest.mark.parametrize("demo", [ALLTICK, TRADOVATE], ids=lambda d: d.name)
def test_the_default_symbols_are_played_on_as_given(demo: DemoVenue):
    symbols = DemoSymbols(tuple(demo.symbols.split(",")), tuple(demo.book_symbols.split(",")))
    assert symbols.silenced in symbols.main and symbols.played is not None
    assert symbols.played[0] in symbols.main and symbols.played[0] != symbols.silenced


async def test_the_demo_command_hands_the_users_symbols_to_its_script(autojump_clock, capsys):
    """``python -m tickactors --symbols ... --book-symbols ''``, JSON lines, a scripted minute:
    the faults name the user's symbol, and nothing else is ever streamed."""
    from tickactors.__main__ import build_parser
    from tickactors._cli import demo

    args = build_parser().parse_args(
        ["--symbols", "ETHUSDT", "--book-symbols", "", "--duration", "60", "--format", "jsonl"]
    )
    assert await demo.run_from_args(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    said = {o["fault"]: o["message"] for o in lines if o.get("event") == "demo_fault"}
    assert said["silence"] == "ETHUSDT alone goes silent while others flow"
    assert said["ghost"].startswith("we unsubscribe ETHUSDT ")
    assert {o["symbol"] for o in lines if o["kind"] in ("tick", "book")} == {"ETHUSDT"}
    assert not [o for o in lines if o["kind"] == "book"]
    subscribed = [o for o in lines if o.get("event") == "subscribed"]
    assert {s for o in subscribed for s in o["symbols"]} == {"ETHUSDT"}
    assert lines[-1]["event"] == "stopped"
