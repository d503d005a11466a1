"""The benchmark's fair peers deliver exactly the ticks our feed delivers (no timing).

``bench/peers.py`` has picows and asyncio ``websockets`` do the feed's work for the
throughput and latency comparisons of ``bench/run.py``; the comparison is fair only if
they do the *same* work. Here the replay server (``bench/_server.py --frames``) sends one
fixed ring once (``?once=1``): the simulator's trades in every wire variant, trades of a
symbol nobody wants, and frames the feed must judge one by one: prices sent as JSON
numbers (the general path), values out of range, NaN, ``-0``, spaces and underscores in
decimals, broken JSON, an answer, a book, digit strings that are not ASCII. The feed and
both peers must deliver the same ticks in the same order, exactly (``Decimal`` digits and
exponents, ``fields``), and count the same bad frames.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import tickactors
from tickactors.sim._alltick_protocol import choose_variant, encode_trade
from tickactors.sim._market import Market
from tickactors.venues import AllTick

pytest.importorskip("picows", reason="the picows peer needs picows (the dev extra has it)")
pytest.importorskip("websockets", reason="the websockets peer needs websockets (dev extra)")

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from _common import TOKEN, Server, start_server  # noqa: E402
from peers import PEERS, PeerStats  # noqa: E402

WANTED = ["AAA.HK", "BBBUSDT", "EURUSD", "END"]


def _push(data: dict[str, Any]) -> bytes:
    # json, not orjson: it writes integers beyond 64 bits too
    return json.dumps({"cmd_id": 22998, "data": data}, separators=(",", ":")).encode()


def ring() -> list[bytes]:
    """The fixed frames, in order; the last is the END trade every reader stops at."""
    market = Market(11, 1_700_000_000.0)
    rng = random.Random(11)
    frames: list[bytes] = []
    for n in range(120):
        code = ("AAA.HK", "BBBUSDT", "EURUSD", "GHOST")[n % 4]
        trade = market.trade(code, 1_700_000_000.0 + n)
        frames.append(encode_trade(trade, choose_variant(rng, "varied")))
    base = {"code": "AAA.HK", "seq": 7, "tick_time": 1_700_000_000}
    odd_values: list[dict[str, Any]] = [
        {"price": 1.10, "volume": 3, "turnover": 0.5},  # JSON numbers: the general path
        {"price": 100, "volume": 2.5e-3},
        {"price": "-1"},
        {"price": "0"},
        {"price": "NaN"},
        {"price": "Infinity"},
        {"price": "1e30"},
        {"price": "9.99e29", "volume": "1e-40"},
        {"price": "1e-31"},
        {"price": "1e-30", "volume": "-0"},
        {"price": " 12.5", "volume": "1_000"},  # Decimal takes them: so does the feed
        {"price": "12.5", "turnover": "0E+100"},
        {"price": "12.5", "volume": "-3"},
        {"price": "1" * 65},
        {"price": "12.5", "seq": "\u0663"},  # a digit, not ASCII
        {"price": "12.5", "seq": 2**64},
        {"price": "12.5", "seq": "00042", "tick_time": "1700000000123"},
        {"price": "12.5", "trade_direction": 3},
        {"price": "12.5", "trade_direction": None, "turnover": None},
        {"price": "12.5", "code": "X" * 65},
        {"price": "12.5", "code": "\u00c4\u00d6"},  # a valid code nobody wants
    ]
    frames += [_push({**base, **values}) for values in odd_values]
    frames += [
        b'{"cmd_id":22998,"data":{"code":"BBBUSDT","price":"5"',  # cut short
        b"not json at all",
        b'{"cmd_id":22001,"ret":200,"seq_id":999,"msg":"ok"}',  # an answer to nothing
        b'{"cmd_id":22999,"data":{"code":"AAA.HK","bids":[{"price":"1","volume":"2"}],"asks":[]}}',
        b'{"cmd_id":12345,"data":{}}',
        b'{"cmd_id":22998,"data":{"code":"AAA.HK","price":"3","x":[1e400]}}',
        b'{"cmd_id":22998,"data":{"code":"\\ud800","price":"1"}}',
        b'{"cmd_id":22998,"data":{"code":"AAA.HK","price":"4.25","seq":8,"tick_time":2}}',
    ]
    frames.append(_push({"code": "END", "price": "1", "seq": 1}))
    return frames


def _exact(tick: Any) -> tuple[Any, ...]:
    def shape(value: Any) -> Any:
        return value.as_tuple() if hasattr(value, "as_tuple") else (type(value), value)

    return (
        tick.symbol,
        shape(tick.price),
        shape(tick.volume),
        shape(tick.exchange_time),
        shape(tick.seq),
        {key: shape(value) for key, value in tick.fields.items()},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("ring") / "frames.jsonl"
    path.write_bytes(b"\n".join(ring()) + b"\n")
    started = start_server("replay", [], 0, replay_options=["--frames", str(path)])
    try:
        yield started
    finally:
        started.stop()


def feed_ticks(server: Server) -> tuple[list[Any], int]:
    async def main() -> tuple[list[Any], int]:
        venue = AllTick(url=f"{server.url}?once=1", token=TOKEN)
        got: list[Any] = []
        async with tickactors.open_feed(venue, stale_after=60) as feed:
            feed.subscribe(*WANTED)
            with trio.fail_after(20):
                while not got or got[-1].symbol != "END":
                    got += await feed.get_batch()
            errors = feed.statistics()["connection"]["decode_errors"]
        return got, errors

    return trio.run(main)


def peer_ticks(server: Server, name: str) -> tuple[list[Any], PeerStats]:
    got: list[Any] = []

    def on_tick(tick: Any) -> bool:
        got.append(tick)
        return bool(tick.symbol == "END")

    async def main() -> PeerStats:
        async with asyncio.timeout(20):
            return await PEERS[name](
                f"{server.url}?once=1&token={TOKEN}", WANTED, on_tick, stats=PeerStats()
            )

    stats = asyncio.run(main())
    return got, stats


def test_the_ring_has_every_kind_of_frame() -> None:
    frames = ring()
    assert len(frames) == 150
    assert any(b'"seq":"' in f for f in frames) and any(b'"seq":1' in f for f in frames)


@pytest.mark.parametrize("name", ["picows_decode", "websockets_decode"])
def test_a_peer_delivers_exactly_the_feeds_ticks(server: Server, name: str) -> None:
    ours, errors = feed_ticks(server)
    theirs, stats = peer_ticks(server, name)
    assert ours[-1].symbol == "END" and len(ours) > 90
    assert [_exact(t) for t in theirs] == [_exact(t) for t in ours]
    assert stats.bad_frames == errors > 5
    assert stats.closed is None  # it stopped at END, nothing ended it early


@pytest.mark.slow
def test_every_latency_contender_records_its_ticks() -> None:
    """``bench/latency.py`` on a short paced, stamped window for each contender: each one
    decodes the server's stamps and records a latency per tick (no timing is judged)."""
    import latency
    from _common import DEFAULT_SYMBOLS

    symbols = DEFAULT_SYMBOLS.split(",")
    paced = start_server("replay", symbols, 0)
    try:
        for name in latency.CONTENDERS:
            r = latency.one(paced, name, symbols, 2_000.0, 0.1, 0.5)
            assert r["samples"] > 100, (name, r)
            assert 0 < r["p50"] <= r["p99"] <= r["p999"] < 1e6, (name, r)
    finally:
        paced.stop()


def test_latency_windows_merge_into_medians() -> None:
    """``bench/latency.py`` gives each contender three windows per rate: its figures are
    the medians of the windows' percentiles, so one spoiled window moves them little."""
    import latency

    windows = [
        {"p50": 60.0, "p99": 120.0, "p999": 200.0, "samples": 2000, "received_per_s": 1000,
         "overloaded": False},
        {"p50": 90.0, "p99": 2400.0, "p999": 5000.0, "samples": 1900, "received_per_s": 950,
         "overloaded": True},
        {"p50": 61.0, "p99": 130.0, "p999": 180.0, "samples": 2000, "received_per_s": 1000,
         "overloaded": False},
    ]  # fmt: skip
    m = latency.merged(windows)
    assert (m["p50"], m["p99"], m["p999"]) == (61.0, 130.0, 200.0)
    assert m["samples"] == 5900 and m["received_per_s"] == 983 and m["overloaded"]
    assert [w["p99"] for w in m["rounds"]] == [120.0, 2400.0, 130.0]
