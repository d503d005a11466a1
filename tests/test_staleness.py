from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._core.staleness import (
    ConnectionStale,
    StalenessMonitor,
    StalenessStatistics,
    SymbolStale,
)


def test_connection_stale_exactly_stale_after_the_last_message() -> None:
    monitor = StalenessMonitor(stale_after=10.0)
    assert monitor.next_deadline() is None
    monitor.connection_opened(0.0)
    assert monitor.next_deadline() == 10.0
    monitor.message(3.0)
    assert monitor.next_deadline() == 13.0
    assert monitor.poll(12.999) == []
    assert monitor.poll(13.0) == [ConnectionStale(silent_for=10.0, last_message_at=3.0)]
    # Fires once, then the connection clock stays disarmed until the next connection.
    assert monitor.poll(13.0) == []
    assert monitor.poll(100.0) == []
    assert monitor.next_deadline() is None
    monitor.message(101.0)  # late frames do not re-arm it
    assert monitor.next_deadline() is None
    monitor.connection_opened(200.0)
    assert monitor.next_deadline() == 210.0
    assert monitor.poll(210.0) == [ConnectionStale(silent_for=10.0, last_message_at=200.0)]
    assert monitor.statistics().connection_stale == 2


def test_every_message_pushes_the_deadline() -> None:
    monitor = StalenessMonitor(stale_after=2.5)
    monitor.connection_opened(1.0)
    for t in (2.0, 4.0, 6.0, 8.0):
        monitor.message(t)
        assert monitor.poll(t) == []
    assert monitor.last_message_at == 8.0
    assert monitor.next_deadline() == 10.5
    assert monitor.poll(10.499) == []
    assert monitor.poll(11.0) == [ConnectionStale(silent_for=3.0, last_message_at=8.0)]


def test_connection_closed_disarms_everything() -> None:
    monitor = StalenessMonitor(stale_after=1.0, symbol_stale_after=1.0)
    monitor.connection_opened(0.0)
    monitor.watch(["A"], 0.0)
    monitor.connection_closed()
    assert monitor.next_deadline() is None
    assert monitor.poll(50.0) == []
    assert monitor.watched == frozenset()


def test_symbol_staleness_off_by_default() -> None:
    monitor = StalenessMonitor(stale_after=100.0)
    monitor.connection_opened(0.0)
    monitor.watch(["BTCUSDT", "EURUSD"], 0.0)
    assert monitor.next_deadline() == 100.0
    for t in (10.0, 50.0, 99.0):
        monitor.message(t)
        assert monitor.poll(t) == []
    assert monitor.statistics().symbol_stale == 0


def test_symbol_stale_fires_and_rearms() -> None:
    monitor = StalenessMonitor(stale_after=1000.0, symbol_stale_after=5.0)
    monitor.connection_opened(0.0)
    monitor.watch(["A", "B"], 1.0)
    assert monitor.next_deadline() == 6.0
    monitor.symbol_seen("A", 4.0)
    monitor.symbols_seen(["A", "X"], 4.5)  # X is not watched: stored, never reported
    assert monitor.poll(5.999) == []
    assert monitor.poll(6.0) == [SymbolStale(symbol="B", silent_for=5.0)]
    assert monitor.next_deadline() == 9.5  # A: 4.5 + 5
    assert monitor.poll(9.5) == [SymbolStale(symbol="A", silent_for=5.0)]
    assert monitor.next_deadline() == 11.0  # B re-armed at 6.0
    # Still silent: B again, its silence measured from the watch time.
    assert monitor.poll(11.0) == [SymbolStale(symbol="B", silent_for=10.0)]
    monitor.symbol_seen("B", 12.0)
    assert monitor.poll(14.5) == [SymbolStale(symbol="A", silent_for=10.0)]
    assert monitor.poll(16.999) == []
    assert monitor.poll(17.0) == [SymbolStale(symbol="B", silent_for=5.0)]
    assert monitor.statistics().symbol_stale == 5


def test_symbol_seen_before_watch_does_not_start_the_clock_early() -> None:
    monitor = StalenessMonitor(stale_after=1000.0, symbol_stale_after=5.0)
    monitor.connection_opened(0.0)
    monitor.symbol_seen("A", 1.0)
    monitor.watch(["A"], 3.0)  # the venue confirmed later
    assert monitor.poll(7.999) == []
    assert monitor.poll(8.0) == [SymbolStale(symbol="A", silent_for=5.0)]


def test_watch_again_does_not_restart_a_clock() -> None:
    monitor = StalenessMonitor(stale_after=1000.0, symbol_stale_after=5.0)
    monitor.connection_opened(0.0)
    monitor.watch(["A"], 0.0)
    monitor.watch(["A", "B"], 4.0)
    assert monitor.next_deadline() == 5.0
    assert monitor.poll(5.0) == [SymbolStale(symbol="A", silent_for=5.0)]
    assert monitor.next_deadline() == 9.0


def test_unwatch_stops_a_clock_and_early_cache_is_harmless() -> None:
    monitor = StalenessMonitor(stale_after=1000.0, symbol_stale_after=5.0)
    monitor.connection_opened(0.0)
    monitor.watch(["A", "B"], 0.0)
    monitor.symbol_seen("B", 3.0)
    monitor.unwatch(["A", "unknown"])
    assert monitor.next_deadline() == 5.0  # cached, earlier than B's 8.0: allowed
    assert monitor.poll(5.0) == []
    assert monitor.next_deadline() == 8.0
    monitor.unwatch(["B"])
    assert monitor.next_deadline() == 1000.0
    assert monitor.poll(20.0) == []


def test_connection_opened_clears_symbol_clocks() -> None:
    monitor = StalenessMonitor(stale_after=100.0, symbol_stale_after=5.0)
    monitor.connection_opened(0.0)
    monitor.watch(["A"], 0.0)
    monitor.connection_opened(2.0)
    assert monitor.watched == frozenset()
    assert monitor.next_deadline() == 102.0
    assert monitor.poll(10.0) == []


def test_connection_and_symbol_in_one_poll() -> None:
    monitor = StalenessMonitor(stale_after=5.0, symbol_stale_after=5.0)
    monitor.connection_opened(0.0)
    monitor.watch(["B", "A"], 0.0)
    assert monitor.poll(5.0) == [
        ConnectionStale(silent_for=5.0, last_message_at=0.0),
        SymbolStale(symbol="A", silent_for=5.0),
        SymbolStale(symbol="B", silent_for=5.0),
    ]


def test_statistics_and_repr() -> None:
    monitor = StalenessMonitor(stale_after=5.0, symbol_stale_after=5.0)
    monitor.connection_opened(1.0)
    monitor.watch(["A"], 1.0)
    monitor.message(2.0)
    assert monitor.statistics() == StalenessStatistics(
        armed=True, last_message_at=2.0, watched=1, connection_stale=0, symbol_stale=0
    )
    assert "armed=True" in repr(monitor)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stale_after": 0.0},
        {"stale_after": float("inf")},
        {"stale_after": 1.0, "symbol_stale_after": 0.0},
        {"stale_after": 1.0, "symbol_stale_after": float("nan")},
    ],
)
def test_invalid_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StalenessMonitor(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["msg", "seen", "watch", "unwatch", "wait"]),
            st.sampled_from(["A", "B", "C"]),
            st.floats(0.0, 4.0),
        ),
        max_size=60,
    )
)
def test_sleeping_until_next_deadline_never_misses_an_event(
    ops: list[tuple[str, str, float]],
) -> None:
    """Events fire exactly when due: never before their deadline, never missed by a caller
    that wakes at ``next_deadline()``."""
    stale_after, symbol_after = 6.0, 3.0
    monitor = StalenessMonitor(stale_after=stale_after, symbol_stale_after=symbol_after)
    now = 0.0
    monitor.connection_opened(now)
    armed, last = True, now
    clocks: dict[str, float] = {}  # watched symbol -> start of its current silence window
    for op, symbol, dt in ops:
        target = now + dt
        # Wake at every deadline up to the target, as an actor would.
        while (deadline := monitor.next_deadline()) is not None and deadline <= target:
            now = max(now, deadline)
            events = monitor.poll(now)
            for event in events:
                if isinstance(event, ConnectionStale):
                    assert armed and now == last + stale_after
                    armed = False
                else:
                    assert now == clocks[event.symbol] + symbol_after
                    clocks[event.symbol] = now
            # Nothing overdue remains after a poll.
            assert not (armed and now >= last + stale_after)
            assert all(now < start + symbol_after for start in clocks.values())
        now = target
        if op == "msg":
            monitor.message(now)
            last = now
        elif op == "seen":
            monitor.symbol_seen(symbol, now)
            if symbol in clocks:
                clocks[symbol] = now
        elif op == "watch":
            monitor.watch([symbol], now)
            clocks.setdefault(symbol, now)
        elif op == "unwatch":
            monitor.unwatch([symbol])
            clocks.pop(symbol, None)
