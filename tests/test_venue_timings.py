"""Timings a feed cannot live with are refused at once; requests leave room for heartbeats.

Found by the chaos soak: with heartbeats sharing AllTick's one-request-a-second budget,
subscription requests spaced one budget slot apart queued behind it under steady churn
and missed their deadlines although the venue answered every one.
"""

from __future__ import annotations

import math

import pytest

from tickactors._feed.feed import request_spacing
from tickactors.venues import AllTick, Tradovate

URL = "ws://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("make", "options", "match"),
    [
        (AllTick, {"heartbeat_interval": 1.5}, "over half of the venue's budget"),
        (AllTick, {"heartbeat_interval": 30.0}, "shorter than stale_after"),
        (Tradovate, {"heartbeat_interval": 10.0}, "shorter than stale_after"),
        (Tradovate, {"heartbeat_interval": 0.1}, "over half"),
        (AllTick, {"request_timeout": 0.0}, "request_timeout must be"),
        (Tradovate, {"stale_after": math.nan}, "stale_after must be"),
        (AllTick, {"heartbeat_interval": math.inf}, "heartbeat_interval must be"),
        (Tradovate, {"reconnect_floor": -1.0}, "reconnect_floor must be"),
    ],
)
def test_unlivable_timings_are_refused_with_the_reason(make, options, match) -> None:
    with pytest.raises(ValueError, match=match):
        make(URL, **options)


def test_requests_are_spaced_so_heartbeats_fit_in_the_same_budget() -> None:
    alltick = AllTick(URL).dialect
    # one frame per 1.05 s in all, one heartbeat per 10 s: requests get the rest
    assert request_spacing(alltick) == pytest.approx(1 / (1 / 1.05 - 1 / 10))
    assert request_spacing(alltick) > 1.05
    tight = AllTick(URL, heartbeat_interval=2.1, stale_after=4.0).dialect
    frames_per_second = 1 / request_spacing(tight) + 1 / tight.heartbeat_interval
    assert frames_per_second == pytest.approx(1 / 1.05)
    assert request_spacing(Tradovate(URL).dialect) == pytest.approx(1 / (10 - 1 / 2.5))
