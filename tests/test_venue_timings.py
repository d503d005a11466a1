"""Timings a feed cannot live with are refused at once; requests leave room for heartbeats.

Found by the chaos soak: with heartbeats sharing AllTick's one-request-a-second budget,
subscription requests spaced one budget slot apart queued behind it under steady churn
and missed their deadlines although the venue answered every one.
"""

from __future__ import annotations

import math

import pytest

from tickactors import open_feed
from tickactors._feed.feed import request_spacing
from tickactors.venues import AllTick, Tradovate
from tickactors.venues._dialect import feed_timings

URL = "ws://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("make", "options", "match"),
    [
        (AllTick, {"heartbeat_interval": 1.5}, "over half of the venue's budget"),
        (Tradovate, {"heartbeat_interval": 0.1}, "over half"),
        (AllTick, {"heartbeat_interval": math.inf}, "heartbeat_interval must be"),
        (Tradovate, {"reconnect_floor": -1.0}, "reconnect_floor must be"),
    ],
)
def test_unlivable_venue_timings_are_refused_with_the_reason(make, options, match) -> None:
    with pytest.raises(ValueError, match=match):
        make(URL, **options)


@pytest.mark.parametrize(
    ("venue", "options", "match"),
    [
        # the venue's default stale_after (AllTick 30 s, Tradovate 10 s) must outlast a heartbeat
        (AllTick(URL, heartbeat_interval=30.0), {}, "shorter than stale_after"),
        (Tradovate(URL, heartbeat_interval=10.0), {}, "shorter than stale_after"),
        (AllTick(URL), {"request_timeout": 0.0}, "request_timeout must be"),
        (Tradovate(URL), {"stale_after": math.nan}, "stale_after must be"),
        (AllTick(URL), {"stale_after": -1.0}, "stale_after must be"),
    ],
)
async def test_unlivable_feed_timings_are_refused_before_anything_starts(
    venue, options, match
) -> None:
    with pytest.raises(ValueError, match=match):
        async with open_feed(venue, **options):
            raise AssertionError("opened")


def test_the_feeds_timings_are_open_feeds_and_default_to_the_venues() -> None:
    assert feed_timings(AllTick(URL).dialect, None, None) == (30.0, 5.0)
    assert feed_timings(Tradovate(URL).dialect, None, None) == (10.0, 10.0)
    # given explicitly, stale_after may be shorter than the heartbeat (a busy market)
    assert feed_timings(AllTick(URL).dialect, 4.0, 2.0) == (4.0, 2.0)
    assert feed_timings(AllTick(URL, heartbeat_interval=40.0).dialect, 120.0, None) == (120, 5)
    with pytest.raises(TypeError):  # one place for each: open_feed's
        AllTick(URL, stale_after=4.0)  # type: ignore[call-arg]


def test_requests_are_spaced_so_heartbeats_fit_in_the_same_budget() -> None:
    alltick = AllTick(URL).dialect
    # one frame per 1.05 s in all, one heartbeat per 10 s: requests get the rest
    assert request_spacing(alltick) == pytest.approx(1 / (1 / 1.05 - 1 / 10))
    assert request_spacing(alltick) > 1.05
    tight = AllTick(URL, heartbeat_interval=2.1).dialect
    frames_per_second = 1 / request_spacing(tight) + 1 / tight.heartbeat_interval
    assert frames_per_second == pytest.approx(1 / 1.05)
    assert request_spacing(Tradovate(URL).dialect) == pytest.approx(1 / (10 - 1 / 2.5))
