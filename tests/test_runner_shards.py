"""``--shard I/N``: three runner processes, one simulator, one NATS server (issue 6).

Each process is given the whole universe and takes its own share (rendezvous hashing,
``_core/shard_share.py``); together they must cover every symbol exactly once: every
symbol's ticks reach NATS, from one process only, and no tick twice. Real time (child
processes and a real ``nats-server -js``); every wait is under ``trio.fail_after``.
"""

from __future__ import annotations

from collections import Counter

import trio

from tickactors._core.shard_share import Shard
from tickactors.sim import SimConfig, open_simulator
from tickactors.sinks import decode_symbol_token

from .nats_support import NatsServer, read_stream
from .test_runner import TOKEN, start
from .test_runner_sinks import of_kind, read_to_end

UNIVERSE = [f"SYM{i:02d}.X" for i in range(12)] + ["BTCUSDT", "700.HK", "A_B-C"]


async def test_three_shards_cover_every_symbol_exactly_once(nats_server: NatsServer):
    config = SimConfig(tokens={TOKEN}, tick_interval=0.05, max_symbols=100)
    async with open_simulator("alltick", config=config, seed=21) as sim:
        children = [
            await start(
                sim.url,
                *("--symbols", ",".join(UNIVERSE), "--duration", "4"),
                *("--shard", f"{index}/3", "--sink", nats_server.url),
            )
            for index in range(3)
        ]
        results = []
        for child in children:
            async with child:
                results.append(await read_to_end(child, timeout=40))
    shares = []
    for index, (lines, code) in enumerate(results):
        assert code == 0, lines[-3:]
        (shard_line,) = [line for line in lines if line.get("event") == "shard"]
        assert shard_line["shard"] == f"{index}/3"
        share = shard_line["symbols"]
        assert share == Shard(index, 3).share(UNIVERSE)
        assert shard_line["others"] == len(UNIVERSE) - len(share)
        printed = {tick["symbol"] for tick in of_kind(lines, "tick")}
        assert printed == set(share)  # every symbol of its share flowed, no other
        shares.append(set(share))
    assert sorted(s for share in shares for s in share) == sorted(UNIVERSE)  # disjoint cover
    assert all(shares)  # 15 symbols over 3 shards: none empty

    published = await trio.to_thread.run_sync(read_stream, nats_server.url, "ticks.>")
    by_symbol = Counter(decode_symbol_token(subject.rsplit(".", 1)[1]) for subject, _ in published)
    assert set(by_symbol) == set(UNIVERSE)
    seqs = [(payload["symbol"], payload["seq"]) for _, payload in published]
    assert len(seqs) == len(set(seqs))  # no tick twice
    printed_total = sum(len(of_kind(lines, "tick")) for lines, _ in results)
    assert len(published) == printed_total


def test_stdin_commands_take_only_the_shards_share():
    from types import SimpleNamespace

    from tickactors import TRADES
    from tickactors._cli.run import apply_line

    calls: list[tuple[str, tuple[str, ...]]] = []
    status: list[tuple[str, dict]] = []
    feed = SimpleNamespace(
        kinds=(TRADES,),
        subscribe=lambda *s, kind=None: calls.append(("subscribe", s)),
        unsubscribe=lambda *s, kind=None: calls.append(("unsubscribe", s)),
    )
    writer = SimpleNamespace(status=lambda event, message="", **d: status.append((event, d)))
    shard = Shard(1, 3)
    apply_line(feed, writer, ("subscribe " + " ".join(UNIVERSE)).encode(), shard)
    apply_line(feed, writer, b"unsubscribe BTCUSDT 700.HK", shard)
    mine = tuple(shard.share(UNIVERSE))
    assert calls[0] == ("subscribe", mine)
    assert calls[1] == ("unsubscribe", tuple(shard.share(["BTCUSDT", "700.HK"])))
    assert status[0] == (
        "command",
        {"stream": "trades", "symbols": list(mine), "others": len(UNIVERSE) - len(mine)},
    )
