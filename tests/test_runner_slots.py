"""The runner's connection options: --plan, --max-symbols-per-connection, --max-connections,
--max-connection-age (a subprocess against the simulator, in real time, bounded)."""

from __future__ import annotations

import trio

from tickactors.sim import SimConfig, open_simulator

from .test_runner import TOKEN, start


async def test_symbols_over_connections_and_a_capacity_error_on_stdin():
    config = SimConfig(
        tokens={TOKEN},
        max_symbols=2,
        over_cap="reject",  # a list over the cap is refused, not silently cut
        max_connections_per_token=3,
        token_rate_interval=3.0,
    )
    async with open_simulator("alltick", config=config, seed=3) as sim:
        child = await start(
            sim.url,
            "--symbols",
            "A.US,B.US,C.US,D.US,E.US",
            "--max-symbols-per-connection",
            "2",
            "--max-connections",
            "3",
        )
        async with child:
            confirmed: set[str] = set()
            connections: set[int] = set()
            while confirmed != {"A.US", "B.US", "C.US", "D.US", "E.US"}:
                line = await child.wait_for(lambda o: o.get("event") == "subscribed", 20)
                confirmed |= set(line["symbols"])
                connections.add(line["connection"])
                assert line["count"] <= 2
            assert len(connections) == 3
            await child.send("subscribe F.US G.US\n")
            error = await child.wait_for(lambda o: o.get("event") == "command_error")
            assert "do not fit 3 connection(s) of 2 symbols" in error["message"]
            assert "G.US (trades)" in error["message"]
        assert dict(sim.stats.violations) == {}  # 603 never, the 3 s rule never broken
        assert sim.stats.closes["connection_limit"] == 0


async def test_rotation_without_a_spare_connection_is_a_usage_error():
    async with open_simulator("alltick", seed=4) as sim:
        child = await start(
            sim.url, "--symbols", "A.US", "--plan", "basic", "--max-connection-age", "3600"
        )
        async with child:
            error = await child.wait_for(lambda o: o.get("event") == "error")
            assert "needs a spare connection" in error["message"]
            with trio.fail_after(10):
                assert await child.process.wait() == 2
        assert sim.stats.connections_opened == 0


async def test_symbols_beyond_the_limits_on_the_command_line_exit_2():
    async with open_simulator("alltick", seed=5) as sim:
        child = await start(
            sim.url, "--symbols", "A.US,B.US,C.US", "--max-symbols-per-connection", "2"
        )
        async with child:
            error = await child.wait_for(lambda o: o.get("event") == "error")
            assert "C.US (trades)" in error["message"]  # one connection of two by default
            with trio.fail_after(10):
                assert await child.process.wait() == 2
        assert sim.stats.requests_by_cmd.get(22004, 0) == 0
