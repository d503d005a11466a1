"""``run --config FILE.toml`` and ``check-config``: structuring, refusals, several feeds at once.

The file is structured by cattrs (``_cli/config.py``); these pin that every problem comes
back as one line naming its path, the value and what was expected, that unknown keys are
errors, that secrets never sit in the file or in a message, and that a file's feeds run in
one process with every line naming its feed and stdin routed by ``@NAME``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tickactors.__main__ import main
from tickactors._cli.config import (
    AllTickFeed,
    ConfigError,
    TradovateFeed,
    environment_problems,
    feed_argv,
    load_config,
    structure,
)
from tickactors._core.lanes import Policy
from tickactors._values import StreamKind
from tickactors.sim import SimConfig, open_simulator

ALLTICK = {"venue": "alltick", "url": "wss://quote.alltick.co/quote-b-ws-api", "token_env": "T"}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        structure(data)
    return caught.value.problems


def test_a_good_file_structures_into_frozen_classes(tmp_path: Path) -> None:
    path = tmp_path / "box.toml"
    path.write_text(
        textwrap.dedent(
            """
            duration = 60
            metrics = 9108

            [[feeds]]
            name = "crypto"
            venue = "alltick"
            url = "wss://quote.alltick.co/quote-b-ws-api"
            token_file = "/run/secrets/alltick"
            plan = "premium"
            symbols = ["BTCUSDT", "ETHUSDT"]
            book_symbols = ["BTCUSDT"]
            policies = { trades = "block", book = "drop-oldest" }
            stale_after = 30
            max_connection_age = 43200.5

            [[feeds]]
            name = "es"
            venue = "tradovate"
            url = "wss://md.tradovateapi.com/v1/websocket"
            rest_url = "https://live.tradovateapi.com/v1"
            credentials_env = "TV_LIVE_"
            symbols = ["esz6", 123456]
            """
        )
    )
    config = load_config(path)
    crypto, es = config.feeds
    assert isinstance(crypto, AllTickFeed) and isinstance(es, TradovateFeed)
    assert crypto.symbols == ("BTCUSDT", "ETHUSDT")
    assert crypto.policies == {StreamKind.TRADES: Policy.BLOCK, StreamKind.BOOK: Policy.DROP_OLDEST}
    assert crypto.stale_after == 30.0 and crypto.max_connection_age == 43200.5
    assert es.symbols == ("ESZ6", "123456")  # the dialect's own spelling
    assert config.metrics == "127.0.0.1:9108" and config.duration == 60.0
    with pytest.raises(AttributeError):
        crypto.symbols = ()  # type: ignore[misc]
    argv = feed_argv(crypto, config)
    assert argv[:4] == ["--venue", "alltick", "--url", "wss://quote.alltick.co/quote-b-ws-api"]
    assert "--policy" in argv and "trades=block,book=drop-oldest" in argv
    assert argv[argv.index("--max-connection-age") :][:2] == ["--max-connection-age", "43200.5"]


def test_three_deliberate_mistakes_one_line_each_with_path_value_and_expectation() -> None:
    problems = problems_of(
        {
            "feeds": [
                {**ALLTICK, "name": "a", "symbols": ["BTCUSDT", "ETHUSDT", "BAD SYMBOL"]},
                {**ALLTICK, "name": "b", "stale_after": "30"},
                {**ALLTICK, "name": "c", "polices": {"trades": "block"}},
            ]
        }
    )
    assert problems == [
        "feeds[0].symbols[2]: invalid symbol 'BAD SYMBOL': AllTick codes are letters, digits, "
        "'.', '_' and '-', like 700.HK",
        "feeds[1].stale_after: '30': expected a number",
        "feeds[2]: unknown key polices",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"url": "https://x/y"}, "feeds[0].url: must be a ws:// or wss:// URL"),
        ({"buffer": 0}, "feeds[0].buffer: 0: expected a whole number >= 1"),
        ({"buffer": 1.5}, "feeds[0].buffer: 1.5: expected a whole number >= 1"),
        ({"buffer": True}, "feeds[0].buffer: True: expected a whole number >= 1"),
        ({"stale_after": -1}, "feeds[0].stale_after: -1: expected seconds > 0"),
        ({"stale_after": float("nan")}, "feeds[0].stale_after: nan: expected a finite number"),
        ({"stale_after": True}, "feeds[0].stale_after: True: expected a number"),
        ({"plan": "gold"}, "feeds[0].plan: 'gold': expected one of free, basic, premium"),
        ({"policies": {"trade": "block"}}, "expected a stream kind: trades, book, quotes"),
        ({"policies": {"trades": "blok"}}, "'blok': expected a policy: block, conflate, drop"),
        ({"sinks": ["s3://bucket"]}, "feeds[0].sinks[0]: unknown sink 's3://...'"),
        ({"symbols": "BTCUSDT"}, "feeds[0].symbols: 'BTCUSDT': expected a list [...]"),
        ({"symbols": [7]}, "feeds[0].symbols[0]: invalid symbol 7: a symbol is a str, not int"),
        ({"name": "a b"}, "feeds[0].name: 'a b': expected a feed name"),
        ({"token_env": "1X"}, "feeds[0].token_env: '1X': expected an environment variable"),
        ({"venue": "binance"}, "feeds[0]: venue 'binance': expected one of alltick, tradovate"),
        ({"token_env": None, "token_file": None}, "token from exactly one of token_env or"),
        ({"token_file": "/t"}, "exactly one of token_env or token_file; 2 are given"),
        ({"rest_url": "https://x"}, "feeds[0]: unknown key rest_url"),
    ],
)
def test_each_bad_value_is_named(change: dict, expected: str) -> None:
    feed = {**ALLTICK, "name": "a", **change}
    feed = {key: value for key, value in feed.items() if value is not None}
    problems = problems_of({"feeds": [feed]})
    assert any(expected in problem for problem in problems), problems
    assert len(problems) == 1, problems


def test_file_level_problems() -> None:
    assert problems_of({"feeds": []})[0].endswith(
        "no feed: a file declares at least one [[feeds]] table"
    )
    twice = problems_of({"feeds": [{**ALLTICK, "name": "a"}, {**ALLTICK, "name": "a"}]})
    assert "two feeds are named 'a'" in twice[0]
    assert problems_of({"feeds": [{**ALLTICK, "name": "a"}], "metrics": "localhost"}) == [
        "metrics: must be PORT or HOST:PORT (e.g. 9464 or 127.0.0.1:9464; [::1]:9464 for IPv6), "
        "not 'localhost'"
    ]
    assert problems_of({"feeds": [{**ALLTICK, "name": "a"}], "durration": 5}) == [
        "unknown key durration"
    ]
    assert "required key missing" in problems_of({})[0]
    live = problems_of(
        {"feeds": [{**ALLTICK, "name": "a"}, {**ALLTICK, "name": "b"}], "format": "live"}
    )
    assert "format 'live' shows one feed" in live[0]


def test_tradovate_rules() -> None:
    base = {"venue": "tradovate", "url": "wss://md.tradovateapi.com/v1/websocket", "name": "t"}
    assert "exactly one of token_env, token_file or rest_url" in problems_of({"feeds": [base]})[0]
    both = {**base, "token_env": "T", "rest_url": "https://demo.tradovateapi.com/v1"}
    assert "2 are given" in problems_of({"feeds": [both]})[0]
    assert (
        "replay_speed needs replay_start"
        in problems_of({"feeds": [{**base, "token_env": "T", "replay_speed": 50}]})[0]
    )
    assert (
        "feeds[0].symbols[0]"
        in problems_of({"feeds": [{**base, "token_env": "T", "symbols": ["ÉSZ6"]}]})[0]
    )


def test_the_environment_is_checked_by_name_never_by_value(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    config = structure(
        {
            "feeds": [
                {**ALLTICK, "name": "a", "token_env": "NOT_SET_ANYWHERE"},
                {"venue": "alltick", "url": ALLTICK["url"], "name": "b", "token_file": str(empty)},
                {
                    "venue": "tradovate",
                    "name": "t",
                    "url": "wss://md.tradovateapi.com/v1/websocket",
                    "rest_url": "https://demo.tradovateapi.com/v1",
                    "credentials_env": "TV_",
                },
            ]
        }
    )
    problems = environment_problems(config, {"TV_USERNAME": "me", "TV_PASSWORD": "hunter2"})
    assert problems[0] == (
        "feeds[0].token_env: the environment variable NOT_SET_ANYWHERE is not set (or empty)"
    )
    assert problems[1].startswith("feeds[1].token_file:") and problems[1].endswith("is empty")
    assert problems[2].startswith("feeds[2].credentials_env: missing environment variables: ")
    assert "TV_APP_ID" in problems[2] and "TV_USERNAME" not in problems[2]
    assert "hunter2" not in " ".join(problems)


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "box.toml"
    path.write_text(
        '[[feeds]]\nname = "a"\nvenue = "alltick"\nurl = "ws://127.0.0.1:1/x"\n'
        'token_env = "CHECK_CONFIG_TOKEN"\nsymbols = ["BTCUSDT"]\nmax_connection_age = 5\n'
    )
    assert main(["check-config", str(path), "--no-env"]) == 2  # an age a rotation cannot fit
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "feeds[0] (a): argument --max-connection-age" in err
    path.write_text(path.read_text().replace("max_connection_age = 5\n", ""))
    assert main(["check-config", str(path), "--no-env"]) == 0
    assert "ok: 1 feed(s): a (alltick)" in capsys.readouterr().out
    assert main(["check-config", str(path)]) == 2
    assert "CHECK_CONFIG_TOKEN is not set" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text("[[feeds]\n")
    assert main(["check-config", str(tmp_path / "bad.toml")]) == 2
    assert "not TOML" in capsys.readouterr().err


def _run(*words: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickactors", "run", *words],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_run_refuses_a_bad_file_and_feed_options_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "box.toml"
    path.write_text(
        '[[feeds]]\nname = "a"\nvenue = "alltick"\nurl = "ws://127.0.0.1:1/x"\n'
        'token_env = "T"\nsymbols = ["b a d", "OK", 5]\n'
    )
    done = _run("--config", str(path), "--format", "jsonl")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all("feeds[0].symbols[" in line for line in lines)
    errors = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in errors] == ["error", "error"]
    done = _run("--config", str(path), "--symbols", "BTCUSDT")
    assert done.returncode == 2
    assert "not with --symbols" in done.stderr
    done = _run("--format", "jsonl")
    assert done.returncode == 2
    assert "--url (or --config FILE)" in done.stderr


async def test_several_feeds_in_one_process_lines_name_their_feed_stdin_routed(
    tmp_path: Path,
) -> None:
    secret = "config-SECRET-1234"
    async with open_simulator("alltick", config=SimConfig(tokens={secret}), seed=11) as sim:
        base = sim.url.rsplit("/", 1)[0]
        path = tmp_path / "box.toml"
        path.write_text(
            textwrap.dedent(
                f"""
                metrics = "127.0.0.1:0"

                [[feeds]]
                name = "crypto"
                venue = "alltick"
                url = "{base}/quote-b-ws-api"
                token_env = "CRYPTO_TOKEN"
                symbols = ["BTCUSDT"]

                [[feeds]]
                name = "stocks"
                venue = "alltick"
                url = "{base}/quote-stock-b-ws-api"
                token_file = "{tmp_path / "stock-token"}"
                symbols = ["AAPL.US"]
                """
            )
        )
        (tmp_path / "stock-token").write_text(secret + "\n")
        env = {**__import__("os").environ, "CRYPTO_TOKEN": secret}
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tickactors", "run", "--config", str(path), "--format", "jsonl"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdin is not None and process.stdout is not None
        lines: list[dict] = []
        buffer = b""

        async def until(predicate) -> dict:  # type: ignore[no-untyped-def]
            nonlocal buffer
            with trio.fail_after(20):
                while True:
                    while b"\n" not in buffer:
                        chunk = await process.stdout.receive_some(65536)  # type: ignore[union-attr]
                        if not chunk:
                            raise EOFError(buffer)
                        buffer += chunk
                    raw, buffer = buffer.split(b"\n", 1)
                    line = json.loads(raw)
                    lines.append(line)
                    if predicate(line):
                        return line

        try:
            await until(lambda o: o["kind"] == "tick" and o.get("feed") == "crypto")
            await until(lambda o: o["kind"] == "tick" and o.get("feed") == "stocks")
            url = next(o["url"] for o in lines if o.get("event") == "metrics")
            scraped = await trio.to_thread.run_sync(lambda: httpx.get(url, timeout=10).text)
            ticks = {
                sample.labels["feed"]: sample.value
                for family in text_string_to_metric_families(scraped)
                for sample in family.samples
                if sample.name == "tickactors_ticks_total"
            }
            assert set(ticks) == {"crypto", "stocks"} and min(ticks.values()) > 0
            await process.stdin.send_all(b"@stocks subscribe TSLA.US\nsubscribe X\n@nope x\n")
            await until(lambda o: o["kind"] == "tick" and o["symbol"] == "TSLA.US")
            command = next(o for o in lines if o.get("event") == "command")
            assert command["feed"] == "stocks" and command["symbols"] == ["TSLA.US"]
            while sum(o.get("event") == "command_error" for o in lines) < 2:
                await until(lambda o: o.get("event") == "command_error")
            errors = [o for o in lines if o.get("event") == "command_error"]
            assert "name the feed: @NAME COMMAND (feeds: crypto, stocks)" in errors[0]["message"]
            assert "@nope: no such feed" in errors[1]["message"]
            process.send_signal(signal.SIGINT)
            with trio.fail_after(10):
                assert await process.wait() == 0
            rest = b""
            while chunk := await process.stdout.receive_some(65536):
                rest += chunk
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    tail = [json.loads(line) for line in (buffer + rest).splitlines() if line]
    everything = lines + tail
    stopped = [o["feed"] for o in everything if o.get("event") == "stopped"]
    assert sorted(stopped) == ["crypto", "stocks"]
    feedless = [o for o in everything if "feed" not in o]
    assert {o["event"] for o in feedless} == {"command_error", "metrics"}, feedless
    assert secret not in json.dumps(everything)
    ticks = [o for o in everything if o["kind"] == "tick"]
    assert {o["symbol"] for o in ticks if o["feed"] == "crypto"} == {"BTCUSDT"}
    assert {o["symbol"] for o in ticks if o["feed"] == "stocks"} <= {"AAPL.US", "TSLA.US"}


def test_the_example_box_checks_and_has_what_a_box_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).parents[1] / "examples" / "box.toml"
    assert main(["check-config", "--no-env", str(example)]) == 0
    assert "ok: 3 feed(s)" in capsys.readouterr().out
    config = load_config(example)
    assert [feed.venue for feed in config.feeds] == ["alltick", "alltick", "tradovate"]
    schemes = {spec.split(":", 1)[0] for feed in config.feeds for spec in feed.sinks}
    assert schemes == {"jsonl", "parquet", "nats"}
    assert config.metrics is not None
    # with its environment in place, the whole check passes (token file moved to tmp_path)
    token = tmp_path / "crypto-token"
    token.write_text("t\n")
    copy = tmp_path / "box.toml"
    copy.write_text(example.read_text().replace("/run/secrets/alltick-crypto", str(token)))
    environ = {"ALLTICK_STOCK_TOKEN": "s"} | {
        f"TV_LIVE_{name}": "x"
        for name in ("USERNAME", "PASSWORD", "APP_ID", "APP_VERSION", "CID", "SEC")
    }
    assert environment_problems(load_config(copy), environ) == []


def test_a_tradovate_trading_feed_keeps_its_sync() -> None:
    base = {
        "venue": "tradovate",
        "name": "bot",
        "url": "wss://demo.tradovateapi.com/v1/websocket",
        "token_env": "T",
    }
    config = structure({"feeds": [{**base, "sync": True, "user_id": 7}]})
    argv = feed_argv(config.feeds[0], config)
    assert "--sync" in argv and argv[argv.index("--user-id") + 1] == "7"
    assert "user_id needs sync = true" in problems_of({"feeds": [{**base, "user_id": 7}]})[0]
    assert "expected true or false" in problems_of({"feeds": [{**base, "sync": "yes"}]})[0]


def test_lag_after_from_the_file_and_the_flag(tmp_path: Path) -> None:
    config = structure({"feeds": [{**ALLTICK, "name": "a", "lag_after": 0}]})
    argv = feed_argv(config.feeds[0], config)
    assert argv[argv.index("--lag-after") + 1] == "0.0"
    assert "expected seconds >= 0" in problems_of(
        {"feeds": [{**ALLTICK, "name": "a", "lag_after": -1}]}
    )[0]
    from tickactors.__main__ import build_parsers
    from tickactors._cli.connection_options import connection_options
    from tickactors.venues import AllTick

    parser = build_parsers()[1]["run"]
    dialect = AllTick(token="t").dialect
    for words, expected in ((["--lag-after", "0"], None), (["--lag-after", "2.5"], 2.5)):
        args = parser.parse_args(["--url", "ws://127.0.0.1:1/x", *words])
        assert connection_options(args, dialect)["lag_after"] == expected
    args = parser.parse_args(["--url", "ws://127.0.0.1:1/x"])
    assert "lag_after" not in connection_options(args, dialect)  # the feed's default, 5 s
