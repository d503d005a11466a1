"""Faults of the simulated Tradovate venue, seen from a raw client socket; and replay."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._faults import TRADOVATE_RANDOM_MENU
from tickactors.sim._tradovate_probe import TradovateProbe, open_tradovate_probe

PLAIN = SimConfig(error_text="plain")


async def ready(sim: Any, url: str | None = None) -> Any:
    """An authorized probe (as an async context manager)."""
    token = sim.tradovate.accounts.issue("frank").access

    class _Ready:
        async def __aenter__(self) -> TradovateProbe:
            self._cm = open_tradovate_probe(url or sim.url)
            probe = await self._cm.__aenter__()
            assert await probe.authorize(token) == {"i": 0, "s": 200}
            return probe

        async def __aexit__(self, *exc: object) -> None:
            await self._cm.__aexit__(*exc)

    return _Ready()


async def closed(probe: TradovateProbe) -> tuple[int, str | None]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await probe.receive()
    return info.value.reason.code, info.value.reason.reason


def md_ids(frames: list[tuple[float, str | bytes]], start: float = 0.0) -> set[int]:
    out: set[int] = set()
    for t, frame in frames:
        if t >= start and isinstance(frame, str) and frame.startswith("a"):
            for item in orjson.loads(frame[1:]):
                for q in item.get("d", {}).get("quotes", []) if item.get("e") == "md" else []:
                    out.add(q["contractId"])
    return out


async def test_p_ticket_early_resend_is_reticketed_on_time_resend_applied(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        es = sim.tradovate.contracts.find("ESZ6").id
        async with await ready(sim) as probe:
            sim.faults.p_ticket(1, p_time=10)
            answer = await probe.call("md/subscribeQuote", {"symbol": "ESZ6"}, id=1)
            ticket = answer["d"]
            assert answer["s"] == 200 and ticket["p-time"] == 10 and not ticket["p-captcha"]
            assert sim.connections[0].quote_ids == ()  # not applied
            await trio.sleep(4.0)
            body = {"symbol": "ESZ6", "p-ticket": ticket["p-ticket"]}
            again = (await probe.call("md/subscribeQuote", body, id=1))["d"]  # id reusable
            assert again["p-ticket"] != ticket["p-ticket"] and again["p-time"] == 10
            assert sim.stats.violations["penalty_ignored"] == 1
            assert sim.connections[0].violations["penalty_ignored"] == 1
            wrong = {"symbol": "NQZ6", "p-ticket": again["p-ticket"]}
            assert (await probe.call("md/subscribeQuote", wrong))["s"] == 400
            await trio.sleep(10.0)
            body["p-ticket"] = again["p-ticket"]
            assert (await probe.call("md/subscribeQuote", body))["d"] == {"subscriptionId": es}
            assert sim.connections[0].quote_ids == (es,)


async def test_captcha_ticket_and_authorize_never_ticketed(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        sim.faults.p_ticket(1, captcha=True)
        async with await ready(sim) as probe:  # authorize went through untouched
            ticket = (await probe.call("contract/find", "", "name=ESZ6"))["d"]
            assert ticket["p-captcha"] is True and ticket["p-time"] == 3600
        assert sim.stats.fault_log == [(0.0, "p_ticket", "n=1 p_time=3600.0 captcha=True")]


async def test_429_not_applied_and_id_reusable() -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        async with await ready(sim) as probe:
            sim.faults.rate_limit_429(2)
            for _ in range(2):
                answer = await probe.call("md/subscribeQuote", {"symbol": "ESZ6"}, id=3)
                assert answer == {"i": 3, "s": 429, "d": "Too many requests"}
            assert (await probe.call("md/subscribeQuote", {"symbol": "ESZ6"}, id=3))["s"] == 200


async def test_shutdown_event_then_close(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        async with await ready(sim) as probe:
            sim.faults.shutdown("Maintenance", "back soon")
            event = await probe.event("shutdown")
            assert event == {
                "e": "shutdown",
                "d": {"reasonCode": "Maintenance", "reason": "back soon"},
            }
            assert await closed(probe) == (3000, "back soon")
            assert probe.frames[-1][1] == 'c[3000,"back soon"]'
        with pytest.raises(ValueError, match="reason_code"):
            sim.faults.shutdown("Bored")
        assert sim.stats.closes["shutdown"] == 1


async def test_kick_and_expire_token(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        async with await ready(sim) as probe:
            sim.faults.kick()
            assert await closed(probe) == (3000, "Go away!")
            assert probe.frames[-1][1] == 'c[3000,"Go away!"]'
        token = sim.tradovate.accounts.issue("gina").access
        async with open_tradovate_probe(sim.url) as probe:
            await probe.authorize(token)
            sim.faults.expire_token(token)
            assert await closed(probe) == (3000, "Access token revoked")
        async with open_tradovate_probe(sim.url) as probe:
            assert (await probe.authorize(token))["d"] == "Access is denied"


async def test_close_frame_keep_open_ends_the_session_and_leaves_the_socket(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_simulator("tradovate", config=PLAIN) as sim:
        async with await ready(sim) as probe:
            await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            (conn,) = sim.connections
            sim.faults.close_frame_keep_open(3000, "Session closed")
            frame = ""
            while not (isinstance(frame, str) and frame.startswith("c")):
                frame = await probe.receive()
            assert frame == 'c[3000,"Session closed"]'
            closed_at = trio.current_time()
            await probe.request("md/subscribeQuote", {"symbol": "NQZ6"})  # logged, ignored
            await probe.heartbeat()
            assert await probe.collect(60.0) == []  # no data, no h, no close: a dead session
            assert sim.connections == [conn]  # the socket is still open, past the watchdog
            assert conn.closed_reason == "close_frame_keep_open"
            assert [r[1] for r in conn.requests][-1] == "md/subscribeQuote"
            assert trio.current_time() >= closed_at + 60.0
        await trio.sleep(1.0)
        assert sim.connections == []  # the client's close ended it
        assert sim.stats.closes["close_frame_keep_open"] == 1
        assert sim.stats.faults_injected["close_frame_keep_open"] == 1


async def test_drop_stall_and_max_age_have_no_close_frame(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        async with await ready(sim) as probe:
            await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            sim.faults.stall(5.0)
            start = trio.current_time()
            await probe.heartbeat()  # still refreshes the activity clock
            frames = await probe.collect(7.0)
            assert frames and min(t for t, _ in frames) >= start + 5.0
            sim.faults.drop()
            assert (await closed(probe))[0] == 1006
        sim.faults.set_max_age(30.0)
        async with await ready(sim) as probe:
            opened = trio.current_time()
            for _ in range(14):
                await trio.sleep(2.0)
                await probe.heartbeat()
            assert sim.stats.closes["max_age"] == 0
            assert (await closed(probe))[0] == 1006
            assert trio.current_time() == opened + 30.0
        assert sim.stats.closes["drop"] == sim.stats.closes["max_age"] == 1


async def test_accept_then_close_and_hang_upgrade(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        sim.faults.accept_then_close(1)
        async with open_tradovate_probe(sim.url) as probe:
            assert await closed(probe) == (1000, "accept then close")
            assert probe.frames[-1][1] == 'c[1000,"accept then close"]'
        sim.faults.hang_upgrade(1)
        with pytest.raises(trio.TooSlowError):
            async with open_tradovate_probe(sim.url, connect_timeout=3.0):
                pass
        async with await ready(sim):
            pass
        assert sim.stats.closes["hang_upgrade"] == sim.stats.closes["accept_then_close"] == 1


async def test_silence_symbol_and_ghost(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        es, nq = (sim.tradovate.contracts.find(n).id for n in ("ESZ6", "NQZ6"))
        async with await ready(sim) as probe:
            await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            await probe.call("md/subscribeQuote", {"symbol": "NQZ6"})
            sim.faults.silence_symbol("ESZ6", 3.0)
            assert md_ids(await probe.collect(2.0)) == {nq}
            await probe.collect(1.0)
            assert md_ids(await probe.collect(1.0)) == {es, nq}
            sim.faults.ghost(["NQZ6"], duration=3.0)
            await probe.call("md/unsubscribeQuote", {"symbol": "NQZ6"})
            assert md_ids(await probe.collect(2.0)) == {es, nq}
            await probe.collect(1.5)
            assert md_ids(await probe.collect(1.0)) == {es}
            assert sim.connections[0].subs.quote_ghosts == {}


async def test_lose_drop_and_delay_acks(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        async with await ready(sim) as probe:
            sim.faults.lose_acks(1)
            await probe.request("contract/find", "", "name=ESZ6", id=1)
            await trio.testing.wait_all_tasks_blocked()
            sim.faults.drop_requests(1)
            await probe.request("contract/find", "", "name=NQZ6", id=2)
            await trio.testing.wait_all_tasks_blocked()
            sim.faults.delay_acks(4.0)
            await probe.request("contract/find", "", "name=CLF7", id=3)
            assert (await probe.answer(3))["d"]["name"] == "CLF7"
            assert trio.current_time() == 4.0
            assert [i.get("i") for i in probe.items if "i" in i] == [0, 3]
            assert (await probe.call("contract/find", "", "name=ESZ6", id=2))["s"] == 200
            assert (await probe.call("contract/find", "", "name=ESZ6", id=1))["s"] == 400


async def test_malformed_frames_then_normal_service(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        async with await ready(sim) as probe:
            sim.faults.malformed(8)
            got: list[str | bytes] = []
            for _ in range(8):
                got.append(await probe.ws.get_message())
            assert any(isinstance(f, bytes) for f in got)
            assert any(isinstance(f, str) and f[:1] not in ("a", "o", "h", "c", "") for f in got)
            assert "" in got
            assert (await probe.call("contract/find", "", "name=ESZ6"))["s"] == 200


async def test_replay_clock_events_at_speed(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        async with await ready(sim, sim.replay_url) as probe:
            check = await probe.call("replay/checkReplaySession", {"startTimestamp": "2024-01-02"})
            assert check["d"] == {"checkStatus": "OK"}
            body = {
                "startTimestamp": "2024-01-02T14:30:00.000Z",
                "speed": 400,
                "initialBalance": 50000,
            }
            assert (await probe.call("replay/initializeClock", body))["d"] == {"ok": True}
            events = []
            for _ in range(3):
                event = await probe.event("clock")
                assert isinstance(event["d"], str)
                events.append((trio.current_time(), orjson.loads(event["d"])))
            assert events == [
                (0.0, {"t": "2024-01-02T14:30:00.000Z", "s": 400}),
                (1.0, {"t": "2024-01-02T14:30:04.000Z", "s": 400}),
                (2.0, {"t": "2024-01-02T14:30:08.000Z", "s": 400}),
            ]
            await probe.call("md/subscribeQuote", {"symbol": "ESZ6"})
            stamp = (await probe.event("md"))["d"]["quotes"][0]["timestamp"]
            assert stamp.startswith("2024-01-02T14:30:")
            assert (await probe.call("replay/changeSpeed", {"speed": 0}))["s"] == 200
            assert (await probe.call("replay/changeSpeed", {"speed": 401}))["s"] == 400


async def test_replay_drop_after(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", config=SimConfig(replay_drop_after=60.0)) as sim:
        async with await ready(sim) as live, await ready(sim, sim.replay_url) as replay:
            for _ in range(23):
                await trio.sleep(2.5)
                await live.heartbeat()
                await replay.heartbeat()
            assert (await closed(replay))[0] == 1006
            assert trio.current_time() == 60.0
            assert (await live.call("contract/find", "", "name=ESZ6"))["s"] == 200
        assert sim.stats.closes["replay_drop"] == 1


async def _random_run(seed: int) -> list[tuple[float, str, str]]:
    start = trio.current_time()
    async with open_simulator("tradovate", config=SimConfig(random_faults=3.0), seed=seed) as sim:
        await trio.sleep(60.0)
        return [(round(t - start, 6), kind, detail) for t, kind, detail in sim.stats.fault_log]


async def test_random_faults_deterministic_per_seed(autojump_clock: trio.abc.Clock) -> None:
    first, second, other = await _random_run(7), await _random_run(7), await _random_run(8)
    assert first == second and first != other and len(first) > 5
    async with open_simulator("tradovate") as sim:
        rng = random.Random(1)
        kinds = {sim.faults.inject_random(rng, {"ESZ6"}) for _ in range(300)}
        assert kinds == {kind for kind, _ in TRADOVATE_RANDOM_MENU}


async def _live(probe: TradovateProbe, until: float) -> None:
    """Send ``[]`` every 2.5 s and record frames until trio time ``until``."""
    while trio.current_time() < until:
        await probe.heartbeat()
        await probe.collect(2.5)


async def test_mute_on_token_expiry_silences_the_socket_not_the_renewed_one(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = SimConfig(token_lifetime=30.0, mute_on_token_expiry=True, error_text="plain")
    async with open_simulator("tradovate", config=config) as sim:
        accounts = sim.tradovate.accounts
        old = accounts.issue("frank").access  # expires at 30
        async with open_tradovate_probe(sim.url) as idle:
            assert await idle.authorize(old) == {"i": 0, "s": 200}
            (first,) = sim.connections
            assert (first.token_expires_at, first.muted_at) == (30.0, None)
            await _live(idle, 20.0)
            renewed = accounts.renew(old)
            assert not isinstance(renewed, str) and renewed.expires_at == 50.0
            async with open_tradovate_probe(sim.url) as streaming:
                assert (await streaming.authorize(renewed.access))["s"] == 200
                await streaming.call("md/subscribeQuote", {"symbol": "ESZ6"})
                second = sim.connections[1]

                async def idle_side() -> None:
                    await _live(idle, 35.0)
                    await idle.request("contract/find", "", "name=ESZ6", id=7)  # swallowed
                    await _live(idle, 40.0)  # then silence from the client too
                    assert (await closed(idle))[0] == 1006  # the heartbeat watchdog still works
                    assert trio.current_time() == 37.5 + 45.0

                async def streaming_side() -> None:
                    await _live(streaming, 60.0)
                    second.kick()  # a mute socket is dropped: no c[...], no close frame
                    assert (await closed(streaming))[0] == 1006

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(idle_side)
                    nursery.start_soon(streaming_side)

            # the idle socket: h every 2.5 s up to the expiry, then nothing (no h, no answer)
            beats = [t for t, frame in idle.frames if frame == "h"]
            assert beats[:11] == [2.5 * k for k in range(1, 12)] and max(beats) <= 30.0
            assert [f for t, f in idle.frames if t > 30.0] == []
            assert first.muted_at == 30.0 and first.requests[-1][1:3] == ("contract/find", 7)
            assert all(item.get("i") != 7 for item in idle.items)
            # the socket on the renewed token streams until ITS expiry, 20 s later
            quotes = [t for t, frame in streaming.frames if "quotes" in str(frame)]
            assert quotes and max(quotes) <= 50.0 and max(quotes) > 49.0
            assert [f for t, f in streaming.frames if t > 50.0] == []
            assert second.muted_at == 50.0 and second.closed_reason == "kick"
        assert sim.stats.faults_injected["token_mute"] == 2
        mutes = [entry for entry in sim.stats.fault_log if entry[1] == "token_mute"]
        assert mutes == [
            (30.0, "token_mute", "connection #1"),
            (50.0, "token_mute", "connection #2"),
        ]
        assert sim.stats.closes["heartbeat_timeout"] == sim.stats.closes["kick"] == 1


async def test_expiry_leaves_sockets_alone_by_default_and_preshared_tokens_never_mute(
    autojump_clock: trio.abc.Clock,
) -> None:
    for config in (
        SimConfig(token_lifetime=10.0),
        SimConfig(token_lifetime=10.0, mute_on_token_expiry=True, tokens={"shared"}),
    ):
        async with open_simulator("tradovate", config=config) as sim:
            token = "shared" if config.tokens else sim.tradovate.accounts.issue("frank").access
            async with open_tradovate_probe(sim.url) as probe:
                assert (await probe.authorize(token))["s"] == 200
                await _live(probe, 20.0)
                assert (await probe.call("contract/find", "", "name=ESZ6"))["s"] == 200
                assert sim.connections[0].muted_at is None
            assert sim.stats.faults_injected["token_mute"] == 0
