from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickactors._core.token_schedule import RefreshDue, TokenSchedule, TokenStatistics
from tickactors._secret import Secret

TOKEN = "tok-SUPERSECRET-0123456789abcdef"


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def schedule(r: float = 1.0, **kwargs: float) -> TokenSchedule:
    return TokenSchedule(random=constant(r), **kwargs)


def test_eighty_minute_token_refreshes_fifteen_minutes_before() -> None:
    tokens = schedule()
    tokens.token_received(Secret(TOKEN), expires_at=100.0 + 4800.0, now=100.0)
    assert tokens.next_deadline() == 4000.0  # 4900 - 900
    assert tokens.poll(3999.999) == []
    assert tokens.poll(4000.0) == [RefreshDue(expires_at=4900.0, attempt=0)]
    assert tokens.poll(4000.0) == []  # once, then in flight
    assert tokens.next_deadline() is None


def test_two_minute_token_refreshes_thirty_seconds_before() -> None:
    tokens = schedule()
    tokens.token_received(Secret(TOKEN), expires_at=120.0, now=0.0)
    assert tokens.next_deadline() == 90.0  # lead = min(900, 120 * 0.25)


def test_static_token_never_refreshes() -> None:
    tokens = schedule()
    tokens.token_received(Secret(TOKEN), expires_at=None, now=0.0)
    assert tokens.next_deadline() is None
    assert tokens.poll(1e9) == []
    assert not tokens.expired(1e9)
    assert tokens.current() == Secret(TOKEN)


def test_already_expired_token_is_due_at_once() -> None:
    tokens = schedule()
    tokens.token_received(Secret(TOKEN), expires_at=5.0, now=10.0)
    assert tokens.expired(10.0)
    assert tokens.next_deadline() == 10.0
    assert tokens.poll(10.0) == [RefreshDue(expires_at=5.0, attempt=0)]


def test_current_and_expired() -> None:
    tokens = schedule()
    assert tokens.current() is None
    assert tokens.expired(0.0)  # no token is no usable token
    tokens.token_received(Secret("first"), expires_at=100.0, now=0.0)
    assert tokens.current() == Secret("first")
    assert not tokens.expired(99.999)
    assert tokens.expired(100.0)
    tokens.token_received(Secret("second"), expires_at=300.0, now=100.0)
    assert tokens.current() == Secret("second")
    assert not tokens.expired(100.0)


def test_refresh_failed_backs_off_with_full_jitter() -> None:
    tokens = schedule(r=1.0, retry_base=1.0, retry_cap=60.0)
    tokens.token_received(Secret(TOKEN), expires_at=5000.0, now=0.0)
    assert tokens.poll(4100.0) == [RefreshDue(expires_at=5000.0, attempt=0)]
    delays = []
    now = 4100.0
    for attempt in range(1, 9):
        delay = tokens.refresh_failed(now)
        delays.append(delay)
        assert tokens.next_deadline() == now + delay
        now += delay
        assert tokens.poll(now) == [RefreshDue(expires_at=5000.0, attempt=attempt)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    tokens.token_received(Secret("fresh"), expires_at=now + 4800.0, now=now)
    assert tokens.refresh_failed(now) == 1.0  # retry count reset by the new token


def test_retry_never_later_than_expiry() -> None:
    tokens = schedule(r=1.0, retry_cap=60.0)
    tokens.token_received(Secret(TOKEN), expires_at=100.0, now=0.0)
    for _ in range(6):
        tokens.refresh_failed(0.0)  # 1, 2, 4, 8, 16, 32: all before expiry
    assert tokens.refresh_failed(90.0) == 10.0  # 60 clamped to the 10 s left
    assert tokens.next_deadline() == 100.0
    # Past expiry there is nothing to clamp to: plain backoff.
    assert tokens.refresh_failed(150.0) == 60.0


def test_first_fetch_failures_without_a_token() -> None:
    tokens = schedule(r=0.5, retry_base=2.0, retry_cap=10.0)
    assert tokens.refresh_failed(0.0) == 1.0
    assert tokens.refresh_failed(1.0) == 2.0
    assert tokens.refresh_failed(3.0) == 4.0
    assert tokens.refresh_failed(7.0) == 5.0  # 0.5 * cap
    assert tokens.poll(12.0) == [RefreshDue(expires_at=None, attempt=4)]


def test_statistics_and_reprs_never_reveal_the_token() -> None:
    tokens = schedule()
    tokens.token_received(Secret(TOKEN), expires_at=120.0, now=0.0)
    tokens.refresh_failed(1.0)
    due = tokens.poll(200.0)
    stats = tokens.statistics()
    assert stats == TokenStatistics(
        refreshes=1,
        failures=1,
        consecutive_failures=1,
        has_token=True,
        expires_at=120.0,
        refresh_at=None,
    )
    for text in (repr(tokens), str(tokens), repr(stats), repr(due), repr(tokens.current())):
        assert TOKEN not in text
        assert "SUPERSECRET" not in text
    assert "has_token=True" in repr(tokens)


def test_token_must_be_a_secret() -> None:
    with pytest.raises(TypeError, match="Secret"):
        schedule().token_received(TOKEN, expires_at=None, now=0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"refresh_before": -1.0},
        {"short_lifetime_fraction": 1.5},
        {"retry_base": 0.0},
        {"retry_cap": float("nan")},
    ],
)
def test_invalid_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        schedule(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    now=st.floats(0.0, 1e6),
    lifetime=st.floats(0.001, 1e5),
    refresh_before=st.floats(0.0, 3600.0),
    fraction=st.floats(0.0, 1.0),
)
def test_refresh_is_due_within_refresh_before_of_expiry(
    now: float, lifetime: float, refresh_before: float, fraction: float
) -> None:
    tokens = schedule(refresh_before=refresh_before, short_lifetime_fraction=fraction)
    expires_at = now + lifetime
    tokens.token_received(Secret(TOKEN), expires_at=expires_at, now=now)
    due = tokens.next_deadline()
    assert due is not None
    assert due <= expires_at
    assert due >= expires_at - refresh_before


@settings(max_examples=200, deadline=None)
@given(
    draws=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    expires_in=st.floats(0.0, 500.0),
)
def test_retries_stay_within_cap_and_expiry(draws: list[float], expires_in: float) -> None:
    it = iter(draws)
    tokens = TokenSchedule(retry_base=1.0, retry_cap=60.0, random=lambda: next(it))
    tokens.token_received(Secret(TOKEN), expires_at=expires_in, now=0.0)
    now = 0.0
    for _ in draws:
        delay = tokens.refresh_failed(now)
        retry_at = tokens.next_deadline()
        assert retry_at is not None
        assert 0.0 <= delay <= 60.0
        if now < expires_in:
            assert retry_at <= expires_in
        now = retry_at
