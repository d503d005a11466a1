from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._core.backoff import Backoff, BackoffStatistics, RetryDue, full_jitter


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def sequence(values: list[float]) -> Callable[[], float]:
    it: Iterator[float] = iter(values)
    return lambda: next(it)


def test_delays_double_up_to_the_cap_with_full_random() -> None:
    backoff = Backoff(base=0.5, cap=30.0, random=constant(1.0))
    delays = [backoff.connection_failed(100.0) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.attempts == 9


def test_random_scales_the_whole_window() -> None:
    backoff = Backoff(base=1.0, cap=30.0, random=sequence([0.0, 0.5, 0.25]))
    assert backoff.connection_failed(0.0) == 0.0
    assert backoff.connection_failed(0.0) == 1.0  # 0.5 * 2
    assert backoff.connection_failed(0.0) == 1.0  # 0.25 * 4


def test_floor_is_added_to_every_delay() -> None:
    backoff = Backoff(base=0.5, cap=30.0, floor=3.0, random=constant(0.0))
    assert backoff.connection_failed(10.0) == 3.0
    assert backoff.next_deadline() == 13.0
    full = Backoff(base=0.5, cap=30.0, floor=3.0, random=constant(1.0))
    assert [full.connection_failed(0.0) for _ in range(3)] == [3.5, 4.0, 5.0]


def test_retry_deadline_poll_and_connected() -> None:
    backoff = Backoff(random=constant(1.0))
    assert backoff.next_deadline() is None
    assert backoff.poll(0.0) == []
    assert backoff.connection_failed(10.0) == 0.5
    assert backoff.next_deadline() == 10.5
    assert backoff.poll(10.499) == []
    assert backoff.poll(10.5) == [RetryDue(at=10.5, attempts=1)]
    assert backoff.poll(10.5) == []  # fires once
    assert backoff.next_deadline() is None
    assert backoff.connection_failed(10.6) == 1.0
    assert backoff.next_deadline() == 11.6
    backoff.connected(11.7)
    assert backoff.next_deadline() is None
    assert backoff.attempts == 2  # the handshake does not reset


def test_accept_then_close_never_resets() -> None:
    """A venue that accepts then closes at once: delays grow to the cap and stay there."""
    backoff = Backoff(base=0.5, cap=30.0, healthy_after=10.0, random=constant(1.0))
    now = 0.0
    delays = []
    for _ in range(20):
        backoff.connected(now)
        backoff.data_received(now + 0.01)  # e.g. an error frame before the close
        now += 0.02
        delay = backoff.connection_failed(now)
        delays.append(delay)
        assert backoff.next_deadline() == now + delay
        now += delay
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0] + [30.0] * 14
    assert backoff.attempts == 20
    assert backoff.statistics().resets == 0


def test_healthy_connection_resets_after_healthy_after_with_data() -> None:
    backoff = Backoff(base=0.5, cap=30.0, healthy_after=10.0, random=constant(1.0))
    for _ in range(4):
        backoff.connection_failed(0.0)
    backoff.connected(100.0)
    backoff.data_received(109.999)
    assert backoff.attempts == 4
    backoff.data_received(110.0)  # up exactly healthy_after, data flowing
    assert backoff.attempts == 0
    assert backoff.statistics().resets == 1
    assert backoff.connection_failed(200.0) == 0.5


def test_being_up_without_data_does_not_reset() -> None:
    backoff = Backoff(healthy_after=10.0, random=constant(1.0))
    backoff.connection_failed(0.0)
    backoff.connected(1.0)
    backoff.connection_failed(50.0)  # up 49 s but never a byte of data
    assert backoff.attempts == 2
    assert backoff.connection_failed(51.0) == 2.0


def test_data_after_a_failure_without_reconnect_does_not_reset() -> None:
    backoff = Backoff(healthy_after=1.0, random=constant(1.0))
    backoff.connected(0.0)
    backoff.connection_failed(5.0)
    backoff.data_received(20.0)  # stray data from a dead connection
    assert backoff.attempts == 1


def test_statistics() -> None:
    backoff = Backoff(random=constant(1.0))
    backoff.connection_failed(1.0)
    backoff.connected(2.0)
    assert backoff.statistics() == BackoffStatistics(
        attempts=1, failures=1, resets=0, connected=True, retry_at=None, last_delay=0.5
    )
    assert "attempts=1" in repr(backoff)


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(base=4.0, cap=30.0, random=constant(1.0))
    for _ in range(2000):
        delay = backoff.connection_failed(0.0)
    assert delay == 30.0
    assert full_jitter(constant(1.0), base=1.0, cap=5.0, attempt=10**9) == 5.0


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_random_outside_unit_interval_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="random source"):
        Backoff(random=constant(bad)).connection_failed(0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0.0}, {"base": -1.0}, {"cap": -1.0}, {"floor": float("inf")}, {"healthy_after": -1}],
)
def test_invalid_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(random=constant(0.5), **kwargs)


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(0.001, 100.0),
    cap=st.floats(0.0, 1000.0),
    floor=st.floats(0.0, 100.0),
    draws=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=80),
)
def test_delay_always_within_floor_and_floor_plus_cap(
    base: float, cap: float, floor: float, draws: list[float]
) -> None:
    backoff = Backoff(base=base, cap=cap, floor=floor, random=sequence(draws))
    now = 0.0
    for _ in draws:
        delay = backoff.connection_failed(now)
        assert floor <= delay <= floor + cap
        assert backoff.next_deadline() == now + delay
        now += delay
