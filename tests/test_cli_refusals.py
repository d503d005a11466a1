"""Every bad command line is refused by the parser: one line on stderr, exit 2, no traceback.

In process (``tickactors.__main__.main``, stdout and stderr captured), so the whole
table takes well under a second: a refusal happens before any Trio run. One case per
command also runs as a subprocess, the way a user meets it. ``run`` with JSON lines
on stdout also writes the refusal there, as an ``error`` status line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pytest
import trio

import tickactors
from tickactors import __main__ as entry
from tickactors._arg_types import (
    int_between,
    listen_address,
    non_negative_float,
    port,
    positive_float,
    positive_int,
    shown_url,
    ws_url,
)
from tickactors._cli.run import _format_in

SRC = Path(tickactors.__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
SECRET = "cli-S3CRET-4d4d"
URL = "ws://127.0.0.1:1/quote-b-ws-api"
RUN = ["run", "--url", URL, "--token", SECRET]
TRADOVATE = ["run", "--venue", "tradovate", "--url", "ws://127.0.0.1:1/v1/websocket"]
CREDENTIALS = ("USERNAME", "PASSWORD", "APP_ID", "APP_VERSION", "CID", "SEC")

#: (command line, what the one line must name)
RUN_CASES: list[tuple[list[str], str]] = [
    ([*RUN, "--duration", "-1"], "--duration"),
    ([*RUN, "--duration", "0"], "--duration"),
    ([*RUN, "--duration", "nan"], "--duration"),
    ([*RUN, "--duration", "inf"], "--duration"),
    ([*RUN, "--duration", "soon"], "--duration"),
    ([*RUN, "--stale-after", "0"], "--stale-after"),
    ([*RUN, "--stale-after", "-1"], "--stale-after"),
    ([*RUN, "--symbol-stale-after", "-1"], "--symbol-stale-after"),
    ([*RUN, "--symbol-stale-after", "nan"], "--symbol-stale-after"),
    ([*RUN, "--max-connection-age", "0"], "--max-connection-age"),
    ([*RUN, "--max-connection-age", "10"], "--max-connection-age"),  # shorter than a rotation
    ([*RUN, "--plan", "basic", "--max-connection-age", "86400"], "--max-connection-age"),
    ([*RUN, "--max-symbols-per-connection", "0"], "--max-symbols-per-connection"),
    ([*RUN, "--max-connections", "-2"], "--max-connections"),
    ([*RUN, "--give-up-after", "-1"], "--give-up-after"),
    ([*RUN, "--give-up-after", "soon"], "--give-up-after"),
    ([*RUN, "--lag-after", "-1"], "--lag-after"),
    ([*RUN, "--lag-after", "nan"], "--lag-after"),
    ([*RUN, "--symbols", "OK,b a d"], "--symbols"),
    ([*RUN, "--book-symbols", "x y"], "--book-symbols"),
    ([*RUN, "--shard", "3/2"], "--shard"),
    ([*RUN, "--policy", "trades=sometimes"], "--policy"),
    ([*RUN, "--sink", "kafka://127.0.0.1:9092"], "--sink"),
    ([*RUN, "--sink", f"nats://u:{SECRET}@127.0.0.1:4222?bogus=1"], "--sink"),
    ([*RUN, "--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    ([*RUN, "--ca-file", "ca.pem", "--insecure"], "--insecure"),
    ([*RUN, "--venue", "binance"], "--venue"),
    ([*RUN, "--log-level", "loud"], "--log-level"),
    ([*RUN, "--token", ""], "--token"),
    ([*RUN, "--metrics", "abc"], "--metrics"),
    ([*RUN, "--metrics", "127.0.0.1:70000"], "--metrics"),
    ([*RUN, "--metrics", "::1:9464"], "--metrics"),  # IPv6 without brackets
    ([*RUN, "--metrics", "http://127.0.0.1:9464/metrics"], "--metrics"),
    ([*RUN, "--replay-start", "2024-01-02T14:30:00Z"], "--replay-start"),
    ([*RUN, "--rest-url", "http://127.0.0.1:1/v1"], "--rest-url"),  # with --token
    (["run", "--url", URL, "--rest-url", "http://127.0.0.1:1/v1"], "--rest-url"),  # alltick
    (["run", "--url", URL], "--token"),  # AllTick without a token
    (["run", "--token", SECRET], "--url"),
    (["run", "--url", "http://127.0.0.1:1/x", "--token", SECRET], "--url"),
    (["run", "--url", "ws://", "--token", SECRET], "--url"),
    (["run", "--url", f"wss://127.0.0.1:1/x?token={SECRET}", "--token", SECRET], "--url"),
    (["run", "--url", f"https://u:{SECRET}@host/x", "--token", SECRET], "--url"),
    ([*RUN, "--tokne", SECRET], "--tokne"),
    ([*RUN, f"--tokne={SECRET}"], "--tokne"),
    ([*TRADOVATE], "--token"),  # neither --token nor --rest-url
    ([*TRADOVATE, "--token", SECRET, "--plan", "free"], "--plan"),
    ([*TRADOVATE, "--rest-url", "ftp://127.0.0.1:1/v1"], "--rest-url"),
    ([*TRADOVATE, "--rest-url", "http://127.0.0.1:1/v1"], "TRADOVATE_APP_ID"),
    ([*TRADOVATE, "--token", SECRET, "--replay-start", "yesterday"], "--replay-start"),
    ([*TRADOVATE, "--token", SECRET, "--replay-speed", "50"], "--replay-start"),
    ([*TRADOVATE, "--token", SECRET, "--replay-start", "2024", "--replay-speed", "900"], "900"),
]
DEMO_CASES: list[tuple[list[str], str]] = [
    (["--duration", "-1"], "--duration"),
    (["--stale-after", "0"], "--stale-after"),
    (["--stale-after", "-1"], "--stale-after"),
    (["--symbol-stale-after", "-1"], "--symbol-stale-after"),
    (["--random-faults", "-1"], "--random-faults"),
    (["--random-faults", "inf"], "--random-faults"),
    (["--venue", "nyse"], "--venue"),
    (["--symbols", "b a d"], "--symbols"),
    (["--venue", "tradovate", "--book-symbols", "ESZ6,"], None),  # fine: an empty part
    (["--shard", "1/1"], "--shard"),
    (["--log-level", "chatty"], "--log-level"),
    (["--metrics", ":9464"], "--metrics"),
    (["--duration", "5", "run", "--url", URL], "--duration"),  # an option before the command
    (["frobnicate"], "COMMAND"),
]
SIM_CASES: list[tuple[list[str], str]] = [
    (["sim", "--port", "99999"], "--port"),
    (["sim", "--port", "-1"], "--port"),
    (["sim", "--port", "http"], "--port"),
    (["sim", "--host", "10.1.2.3"], "--host"),
    (["sim", "--duration", "0"], "--duration"),
    (["sim", "--tick-interval", "0"], "--tick-interval"),
    (["sim", "--tick-interval", "inf"], "--tick-interval"),
    (["sim", "--max-symbols", "0"], "--max-symbols"),
    (["sim", "--max-connections-per-token", "0"], "--max-connections-per-token"),
    (["sim", "--token-rate-interval", "-1"], "--token-rate-interval"),
    (["sim", "--heartbeat-timeout", "0"], "--heartbeat-timeout"),
    (["sim", "--max-connection-age", "-3"], "--max-connection-age"),
    (["sim", "--token-lifetime", "0"], "--token-lifetime"),
    (["sim", "--max-connections-per-user", "0"], "--max-connections-per-user"),
    (["sim", "--replay-drop-after", "nan"], "--replay-drop-after"),
    (["sim", "--random-faults", "-1"], "--random-faults"),
    (["sim", "--token", ""], "--token"),
    (["sim", "--tls-key", "key.pem"], "--tls-cert"),
    (["sim", "--tls-cert", "/nonexistent/cert.pem"], "--tls-cert"),
    (["sim", "--venue", "binance"], "--venue"),
    (["sim", "--plan", "gold"], "--plan"),
    (["sim", "--over-cap", "maybe"], "--over-cap"),
    (["sim", "--default-depth", "0"], "--default-depth"),
    (["sim", "--fx-depth", "deep"], "--fx-depth"),
    (["sim", "--wire", "mixed"], "--wire"),
]
CHAOS_CASES: list[tuple[list[str], str]] = [
    (["chaos", "--duration", "0"], "--duration"),
    (["chaos", "--duration", "-1"], "--duration"),
    (["chaos", "--duration", "nan"], "--duration"),
    (["chaos", "--settle", "0"], "--settle"),
    (["chaos", "--kinds", "stall,zz"], "--kinds"),
    (["chaos", "--venue", "alltick", "--kinds", "stall,p_ticket"], "--kinds"),
    (["chaos", "--kinds", ","], "--kinds"),
    (["chaos", "--venue", "nyse"], "--venue"),
    (["chaos", "--clock", "sundial"], "--clock"),
    (["chaos", "--seed", "x"], "--seed"),
]
CASES = RUN_CASES + [c for c in DEMO_CASES if c[1] is not None] + SIM_CASES + CHAOS_CASES


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKACTORS_TOKEN", raising=False)
    for name in CREDENTIALS:
        monkeypatch.delenv(f"TRADOVATE_{name}", raising=False)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    """Run ``argv`` in process; the one stderr line and stdout's lines (exit 2 asserted)."""
    code = entry.main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # no usage block: one line
    return lines[0], out.splitlines()


@pytest.mark.parametrize(("argv", "option"), CASES, ids=lambda v: " ".join(v)[:60])
def test_every_bad_argument_is_one_line_naming_the_option(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line, out = refused([*argv, "--format", "text"] if argv[0] == "run" else argv, capsys)
    assert line.startswith("python -m tickactors") and ": error: " in line, line
    assert line.endswith(" (see --help)"), line
    assert option in line, line
    assert SECRET not in line
    assert out == []  # text output: nothing on stdout


@pytest.mark.parametrize(("argv", "option"), RUN_CASES, ids=lambda v: " ".join(v)[:60])
def test_run_with_json_lines_also_writes_the_refusal_as_an_error_line(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line, out = refused([*argv, "--format", "jsonl"], capsys)
    (json_line,) = out
    status = json.loads(json_line)
    assert status["kind"] == "status" and status["event"] == "error"
    assert status["connection"] == 0 and isinstance(status["time"], float)
    assert line.endswith(f": error: {status['message']} (see --help)")
    assert SECRET not in json_line


def test_without_format_the_json_line_follows_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    # captured stdout is not a terminal: JSON lines, as for a pipe
    _, out = refused([*RUN, "--stale-after", "-1"], capsys)
    assert json.loads(out[0])["event"] == "error"
    _, out = refused([*RUN, "--format", "xml"], capsys)
    assert json.loads(out[0])["message"].startswith("argument --format: invalid choice")
    _, out = refused([*RUN, "--form=text", "--stale-after", "-1"], capsys)
    assert out == []


def test_format_as_argparse_reads_it() -> None:
    assert _format_in(["run", "--format", "text"]) == "text"
    assert _format_in(["run", "--format=jsonl"]) == "jsonl"
    assert _format_in(["run", "--fo", "text", "--format", "jsonl"]) == "jsonl"
    assert _format_in(["run", "--f=text"]) == "text"
    assert _format_in(["run", "--", "--format", "text"]) is None
    assert _format_in(["run", "--format"]) is None
    assert _format_in(["run", "--forward", "text"]) is None


def test_the_demo_accepts_what_its_venue_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    parser, _ = entry.build_parsers()
    from tickactors._cli import demo

    for argv, option in DEMO_CASES:
        if option is None:
            demo.check_args(parser, parser.parse_args(argv))  # no SystemExit
    assert capsys.readouterr().err == ""


def test_unrecognized_words_are_named_only_when_they_look_like_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line, _ = refused([*RUN, "--format", "text", "--tokne", SECRET, "--x=1", SECRET], capsys)
    assert "unrecognized arguments: --tokne --x and 2 other words (not shown)" in line
    line, _ = refused(["sim", "stray"], capsys)
    assert "unrecognized arguments: 1 other word (not shown)" in line


async def test_one_refusal_per_command_as_a_subprocess() -> None:
    cases = [
        ["run", "--url", URL, "--token", SECRET, "--stale-after", "-1", "--format", "jsonl"],
        ["--symbol-stale-after", "-1"],
        ["sim", "--port", "99999"],
        ["chaos", "--kinds", "stall,zz"],
    ]
    options = ["--stale-after", "--symbol-stale-after", "--port", "--kinds"]
    results: dict[int, trio.CompletedProcess[bytes]] = {}

    async def one(index: int, argv: list[str]) -> None:
        results[index] = await trio.run_process(
            [sys.executable, "-m", "tickactors", *argv],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=ENV,
            stdin=b"",
        )

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for index, argv in enumerate(cases):
                nursery.start_soon(one, index, argv)
    for index, argv in enumerate(cases):
        done = results[index]
        err = done.stderr.decode()
        assert done.returncode == 2, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert options[index] in err and err.startswith("python -m tickactors"), err
        assert SECRET not in err + done.stdout.decode()
    (json_line,) = results[0].stdout.decode().splitlines()
    assert json.loads(json_line)["event"] == "error"
    assert all(results[i].stdout == b"" for i in (1, 2, 3))


def test_a_keyboard_interrupt_outside_the_handlers_ends_quietly_with_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tickactors._cli import chaos

    def interrupted(_: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    def interrupted_in_a_group(_: argparse.Namespace) -> int:
        raise BaseExceptionGroup("trio", [KeyboardInterrupt(), KeyboardInterrupt()])

    def broken(_: argparse.Namespace) -> int:
        raise BaseExceptionGroup("trio", [KeyboardInterrupt(), RuntimeError("a bug")])

    for raiser in (interrupted, interrupted_in_a_group):
        monkeypatch.setattr(chaos, "main", raiser)
        assert entry.main(["chaos"]) == 130
    monkeypatch.setattr(chaos, "main", broken)
    with pytest.raises(BaseExceptionGroup):  # a bug is not hidden
        entry.main(["chaos"])


LISTEN = "must be PORT or HOST:PORT (e.g. 9464 or 127.0.0.1:9464; [::1]:9464 for IPv6)"


def test_the_arg_types_name_the_value_and_what_is_allowed() -> None:
    cases = [
        (positive_float, "0", "must be a number > 0, not '0'"),
        (positive_float, "-inf", "must be a finite number, not '-inf'"),
        (positive_float, "1e", "not a number: '1e'"),
        (non_negative_float, "-0.5", "must be a number >= 0, not '-0.5'"),
        (positive_int, "1.5", "not a whole number: '1.5'"),
        (positive_int, "0", "must be a whole number >= 1, not '0'"),
        (port, "65536", "must be a TCP port from 0 to 65535, not '65536'"),
        (int_between(0, 400), "401", "must be a whole number from 0 to 400, not '401'"),
        (listen_address, "x", f"{LISTEN}, not 'x'"),
        (listen_address, "h:", f"{LISTEN}, not 'h:'"),
        (listen_address, "[]:1", f"{LISTEN}, not '[]:1'"),
        (listen_address, "h:65536", "the port must be from 0 to 65535, not 'h:65536'"),
        (
            listen_address,
            "::1:80",
            "an IPv6 address goes in brackets, [ADDRESS]:PORT, not '::1:80'",
        ),
        (ws_url, "tcp://h:1", "must be a ws:// or wss:// URL with a host, not 'tcp://h:1'"),
        (ws_url, "ws:///path", "must be a ws:// or wss:// URL with a host, not 'ws:///path'"),
    ]
    for parse, text, message in cases:
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            parse(text)
        assert str(caught.value) == message
    assert (positive_float("0.25"), non_negative_float("0"), port("0")) == (0.25, 0.0, 0)
    assert ws_url("wss://[::1]:443/x") == "wss://[::1]:443/x"
    assert listen_address("9464") == ("127.0.0.1", 9464)  # loopback unless told otherwise
    assert listen_address("0.0.0.0:0") == ("0.0.0.0", 0)
    assert listen_address("[::1]:9464") == ("::1", 9464)
    assert shown_url(f"https://me:{SECRET}@host/p?token={SECRET}#f") == "'https://***@host/p?***'"
    assert shown_url(f"me:{SECRET}@host") == "'***@host'"
