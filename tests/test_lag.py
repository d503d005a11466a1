"""Lag: the freshest data arrives later and later (``_core/lag.py``; events ``lagging``,
``caught_up``).

The machine alone, then a feed against the simulator under the autojump clock, its
transport wrapped in a thin pipe that lets through fewer frames a second than the venue
sends (the kernel-level version, ``tbf`` on a real link, is ``tests/test_netem.py``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import tickactors
from tickactors import connect_batched
from tickactors._core.lag import CaughtUp, Lagging, LagMonitor
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate


def feed(monitor: LagMonitor, start: float, end: float, step: float, delay: Any) -> list[Any]:
    """Observe ``delay(t)`` every ``step`` from ``start`` to ``end``; the verdicts, timed."""
    out = []
    t = start
    while t < end:
        verdict = monitor.observe(t, delay(t))
        if verdict is not None:
            out.append((round(t, 6), verdict))
        t = round(t + step, 9)
    return out


def test_a_steady_delay_is_no_lag_whatever_the_clock_offset() -> None:
    for offset in (-3600.0, 0.0, 0.08, 7200.0):
        monitor = LagMonitor(lag_after=2.0)
        assert feed(monitor, 0.0, 600.0, 0.05, lambda t, o=offset: o) == []
        assert monitor.baseline == offset and not monitor.lagging


def test_whole_second_timestamps_are_no_lag() -> None:
    """AllTick's ``tick_time`` is in seconds: the delay saws between 0 and 1 s."""
    monitor = LagMonitor(lag_after=2.0)
    assert feed(monitor, 0.0, 600.0, 0.05, lambda t: 0.03 + t % 1.0) == []
    assert monitor.baseline is not None and monitor.baseline < 0.1


def test_growth_is_lagging_once_then_caught_up_with_the_worst_it_got() -> None:
    monitor = LagMonitor(lag_after=5.0)

    def delay(t: float) -> float:
        # a healthy 0.1 s; from 100 s the pipe carries half of what is sent (0.5 s more per
        # second); at 140 s it is restored and the backlog drains within 2 s
        if t < 100.0:
            return 0.1
        if t < 140.0:
            return 0.1 + 0.5 * (t - 100.0)
        return max(0.1, 0.1 + 20.0 - 10.0 * (t - 140.0))

    verdicts = feed(monitor, 0.0, 200.0, 0.05, delay)
    assert [type(v) for _, v in verdicts] == [Lagging, CaughtUp]
    (lag_at, lagging), (back_at, caught) = verdicts
    # 5 s behind by 110 s; the floor is the smallest of the last two closed buckets, and a
    # bucket is judged when the next one opens: at 112 s
    assert lag_at == 112.0 and lagging == Lagging(behind=5.0, baseline=0.1)
    assert 142.0 <= back_at <= 143.0
    assert caught.behind < 2.5 and caught.behind_max == pytest.approx(19.0)
    assert caught.lagged_for == pytest.approx(back_at - lag_at)
    assert not monitor.lagging and monitor.episodes == 1


def test_one_old_item_beside_fresh_ones_is_no_lag() -> None:
    """A snapshot of a quiet instrument carries the time of its last change."""
    monitor = LagMonitor(lag_after=5.0)
    verdicts = feed(monitor, 0.0, 300.0, 0.1, lambda t: 60.0 if round(t * 10) % 7 == 0 else 0.2)
    assert verdicts == []


def test_hysteresis_no_flapping_around_the_threshold() -> None:
    monitor = LagMonitor(lag_after=4.0)
    feed(monitor, 0.0, 50.0, 0.1, lambda t: 0.0)
    # behind 4.5 s, then wavering between 2.5 and 4.5 s: lagging once, never caught up
    verdicts = feed(monitor, 50.0, 300.0, 0.1, lambda t: 4.5 if t < 60 else 3.5 + (t % 2.0 - 1))
    assert [type(v) for _, v in verdicts] == [Lagging]
    verdicts = feed(monitor, 300.0, 310.0, 0.1, lambda t: 1.0)
    assert [type(v) for _, v in verdicts] == [CaughtUp]


def test_the_baseline_freezes_while_lagging_and_slides_otherwise() -> None:
    monitor = LagMonitor(lag_after=5.0, window=60.0)
    feed(monitor, 0.0, 60.0, 0.1, lambda t: 1.0)
    # ten minutes 8 s behind, far longer than the window: still lagging, baseline kept
    verdicts = feed(monitor, 60.0, 660.0, 0.1, lambda t: 9.0)
    assert [type(v) for _, v in verdicts] == [Lagging] and monitor.baseline == 1.0
    assert feed(monitor, 660.0, 670.0, 0.1, lambda t: 1.0)[0][1].behind_max == 8.0
    # a slow drift of the two clocks (3 s an hour: far beyond any real one) is followed
    drift = feed(monitor, 670.0, 670.0 + 7200.0, 0.5, lambda t: 1.0 + (t - 670.0) * 3 / 3600)
    assert drift == [] and monitor.baseline == pytest.approx(6.9, abs=0.3)


def test_nothing_observed_nothing_judged() -> None:
    """Silence is the staleness clock's business: a gap in the data is not lag."""
    monitor = LagMonitor(lag_after=5.0)
    feed(monitor, 0.0, 30.0, 0.1, lambda t: 0.1)
    assert monitor.observe(1000.0, 0.1) is None  # 970 s later, fresh again


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lag_after": 0.0},
        {"lag_after": float("nan")},
        {"lag_after": 1.0, "window": -1.0},
        {"lag_after": 1.0, "recent": 0.5},
        {"lag_after": 1.0, "bucket": float("inf")},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LagMonitor(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    offset=st.floats(-1e6, 1e6),
    noise=st.lists(st.floats(0.0, 2.4), min_size=1, max_size=50),
    step=st.sampled_from([0.01, 0.1, 0.7, 3.0]),
)
def test_noise_under_half_the_threshold_is_never_lag(
    offset: float, noise: list[float], step: float
) -> None:
    monitor = LagMonitor(lag_after=5.0)
    noisy = feed(monitor, 0.0, 400.0, step, lambda t: offset + noise[int(t / step) % len(noise)])
    assert noisy == []


# -- a feed behind a thin pipe ----------------------------------------------------------------


class ThinPipe:
    """A transport factory whose connections, while ``rate`` is set, hand the reader one
    frame per ``1 / rate`` seconds: a path thinner than the stream (the rest waits here and
    in the kernel's buffers, as on a real thin link)."""

    def __init__(self) -> None:
        self.rate: float | None = None

    async def __call__(self, *args: Any) -> Any:
        inner = await connect_batched(*args)
        pipe = self
        backlog: deque[Any] = deque()

        class Thin:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            async def receive_many(self, n: int) -> list[Any]:
                if pipe.rate is not None:
                    await trio.sleep(1 / pipe.rate)
                    if not backlog:
                        backlog.extend(await inner.receive_many(n))
                    return [backlog.popleft()]
                if backlog:
                    out = [backlog.popleft() for _ in range(min(n, len(backlog)))]
                    return out
                return list(await inner.receive_many(n))

        return Thin()


TOKEN = "lag-token-6f6f"


def venue_for(name: str, url: str) -> Any:
    return AllTick(url=url, token=TOKEN) if name == "alltick" else Tradovate(url=url, token=TOKEN)


async def run_thin(name: str, **feed_kw: Any) -> dict[str, Any]:
    """Two symbols at ~20 frames a second; 60 s healthy, 30 s through a pipe of 10 frames a
    second, 30 s healthy again."""
    config = SimConfig(tokens={TOKEN}, tick_interval=0.1, heartbeat_timeout=None)
    symbols = ("BTCUSDT", "ETHUSDT") if name == "alltick" else ("ESZ6", "NQZ6")
    pipe = ThinPipe()
    events: list[tickactors.HealthEvent] = []
    delivered: dict[str, list[Any]] = {s: [] for s in symbols}
    async with open_simulator(name, config=config, seed=4) as sim:
        async with tickactors.open_feed(
            venue_for(name, sim.url), transport_factory=pipe, seed=4, **feed_kw
        ) as feed:

            async def note() -> None:
                async for event in feed.events():
                    events.append(event)

            async def take() -> None:
                async for item in feed.ticks():
                    delivered[item.symbol].append(item)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(note)
                nursery.start_soon(take)
                feed.subscribe(*symbols)
                await feed.wait_confirmed()
                await trio.sleep(60)
                thin_at = trio.current_time()
                pipe.rate = 10.0
                await trio.sleep(30)
                pipe.rate = None
                thick_at = trio.current_time()
                await trio.sleep(30)
                nursery.cancel_scope.cancel()
            connects = feed.statistics()["connection"]["connects"]
    return {
        "events": [(e.time, e.event, dict(e.detail)) for e in events],
        "thin_at": thin_at,
        "thick_at": thick_at,
        "connects": connects,
        "delivered": delivered,
    }


@pytest.mark.parametrize("name", ["alltick", "tradovate"])
async def test_a_thin_pipe_is_reported_as_lag_and_its_end_as_caught_up(
    autojump_clock: trio.abc.Clock, name: str
) -> None:
    run = await run_thin(name)
    lag = [(t, e, d) for t, e, d in run["events"] if e in ("lagging", "caught_up")]
    assert [e for _, e, _ in lag] == ["lagging", "caught_up"], run["events"]
    (lag_t, _, lagging), (back_t, _, caught) = lag
    # 20 a second sent, 10 carried: 0.5 s later each second; 5 s behind after ~10 s (AllTick's
    # whole-second tick_time and the 2 s floor add up to 3 s)
    assert 10.0 <= lag_t - run["thin_at"] <= 14.0
    assert lagging["behind"] >= 5.0 and lagging["lag_after"] == 5.0
    # restored: the backlog drains at once; judged when the next buckets close
    assert 0.0 < back_t - run["thick_at"] <= 3.0
    assert 13.0 <= caught["behind_max"] <= 16.0
    assert caught["lagged_for"] == pytest.approx(back_t - lag_t, abs=0.01)
    assert run["connects"] == 1  # lag is no reason to reconnect
    assert "stale" not in [e for _, e, _ in run["events"]]
    if name == "alltick":  # trades block: the backlog is delivered whole (quotes conflate)
        assert "gap" not in [e for _, e, _ in run["events"]]
        for ticks in run["delivered"].values():
            seqs = [tick.seq for tick in ticks]
            assert len(seqs) > 1000 and seqs == list(range(seqs[0], seqs[-1] + 1))


async def test_lag_after_none_reports_nothing(autojump_clock: trio.abc.Clock) -> None:
    run = await run_thin("alltick", lag_after=None)
    assert not any(e in ("lagging", "caught_up") for _, e, _ in run["events"])


async def test_lag_after_must_be_a_positive_number() -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lag_after"):
            async with tickactors.open_feed(
                AllTick(url="ws://127.0.0.1:1", token="t"), lag_after=bad
            ):
                pass  # pragma: no cover
