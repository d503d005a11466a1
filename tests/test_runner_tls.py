"""The runner over TLS, as a subprocess: ``--ca-file``, ``--insecure``, and a clear exit
when the certificate cannot be verified; the runner's output never shows a secret, on
success or failure, whether the token comes from ``--token``, ``TICKACTORS_TOKEN`` or
Tradovate credentials in the environment.

Real time, like ``test_runner.py``, every wait bounded; the simulator runs in the
test's own Trio run and serves a certificate from a throwaway CA (``tls_ca.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tickactors._cli.tls import INSECURE_WARNING, tls_from_args
from tickactors.sim import SimConfig, Simulator, open_simulator

from .test_runner import Child, start
from .test_runner_tradovate import credentials, environment, sigint_exits_0
from .tls_ca import server_context, write_ca

CANARY = "SECRET-CANARY-7f3a9c"
TOKEN = f"{CANARY}-runner"
PASSWORD = f"{CANARY}-password"
SEC = f"{CANARY}-sec"


def tls_sim(venue: str, **config: Any) -> Any:
    return open_simulator(venue, config=SimConfig(**config), seed=31, ssl_context=server_context())


async def until_exit(child: Child, timeout: float = 20.0) -> tuple[int, str]:
    """The exit code and everything on stdout; ``child.lines`` gets every JSON line."""
    with trio.fail_after(timeout):
        code = await child.process.wait()
        while True:
            try:
                await child.next_line()
            except EOFError:
                break
    return code, json.dumps(child.lines)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


async def start_alltick(sim: Simulator, err: Any, *args: str, **options: Any) -> Child:
    options.setdefault("auth", ("--token", TOKEN))
    return await start(sim.url, "--symbols", "BTCUSDT", *args, stderr=err, **options)


async def start_tradovate(sim: Simulator, err: Any, *args: str) -> Child:
    return await start(
        sim.url,
        "--symbols",
        "ESZ6",
        *args,
        venue="tradovate",
        auth=("--rest-url", sim.rest_url),
        env=credentials(PASSWORD) | {"TRADOVATE_SEC": SEC},
        stderr=err,
    )


def tick_of(symbol: str) -> Any:
    return lambda o: o["kind"] in ("tick", "quote") and o["symbol"] == symbol


@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
async def test_over_tls_refused_without_the_ca_works_with_ca_file_and_with_insecure(
    venue: str, tmp_path: Path
) -> None:
    ca_file = str(write_ca(tmp_path))
    symbol = "BTCUSDT" if venue == "alltick" else "ESZ6"
    config: dict[str, Any] = (
        {"tokens": {TOKEN}}
        if venue == "alltick"
        else {"tradovate_user": "runner-user", "tradovate_password": PASSWORD}
    )
    launch = start_alltick if venue == "alltick" else start_tradovate
    seen = ""
    async with tls_sim(venue, **config) as sim:
        assert sim.url.startswith("wss://") and sim.rest_url.startswith("https://")
        stderr = tmp_path / "refused"
        with stderr.open("wb") as err:
            child = await launch(sim, err)
        async with child:
            code, out = await until_exit(child)
        assert code == 1
        line = one_error_line(stderr.read_text())
        assert line.startswith("error: CertificateError: cannot verify the TLS certificate")
        assert "--ca-file" in line
        (fatal,) = [o for o in child.lines if o.get("event") == "fatal"]
        assert fatal["error"] == "CertificateError"
        assert sim.stats.tcp_accepted == 1 and sim.stats.connections_opened == 0
        seen += out + stderr.read_text()

        for option in (("--ca-file", ca_file), ("--insecure",)):
            stderr = tmp_path / option[0]
            with stderr.open("wb") as err:
                child = await launch(sim, err, *option)
            async with child:
                await child.wait_for(tick_of(symbol))
                seen += await sigint_exits_0(child)
            warned = INSECURE_WARNING in stderr.read_text()
            assert warned == (option[0] == "--insecure")
            seen += stderr.read_text()
        if sim.tradovate is not None:
            issued = set(sim.tradovate.accounts._tokens)
            assert len(issued) == 4  # a pair for each run that trusted the certificate
        else:
            issued = set()
    for secret in {CANARY, *issued}:
        assert secret not in seen


def test_bad_tls_options_are_usage_errors(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "tickactors", "run", "--url", "wss://127.0.0.1:1/x"]
    both = subprocess.run(
        [*base, "--token", TOKEN, "--ca-file", "ca.pem", "--insecure"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    for path, why in ((tmp_path / "missing.pem", "cannot read"), (not_pem, "no PEM CA")):
        done = subprocess.run(
            [*base, "--token", TOKEN, "--ca-file", str(path), "--format", "jsonl"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, done
        (line,) = [json.loads(x) for x in done.stdout.splitlines()]
        assert line["event"] == "error" and why in line["message"] and str(path) in line["message"]
        assert "Traceback" not in done.stderr and CANARY not in done.stdout + done.stderr


def test_insecure_warns_on_stderr_and_in_the_log(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickactors")
    context = tls_from_args(argparse.Namespace(ca_file=None, insecure=True))
    assert context is not None and not context.check_hostname
    assert capsys.readouterr().err.strip() == INSECURE_WARNING
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "NOT verified" in record.getMessage()
    assert tls_from_args(argparse.Namespace(ca_file=None, insecure=False)) is None


async def test_a_refused_token_and_a_refused_connect_show_no_secret(tmp_path: Path) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nobody listens there once it is closed
    refused, unreachable = tmp_path / "refused", tmp_path / "unreachable"
    async with open_simulator("alltick", config=SimConfig(tokens={"another"}), seed=32) as sim:
        with refused.open("wb") as err:  # the token from the environment, refused twice
            token_child = await start(
                sim.url,
                "--symbols",
                "BTCUSDT",
                auth=(),
                env=environment() | {"TICKACTORS_TOKEN": TOKEN},
                stderr=err,
            )
        with unreachable.open("wb") as err:
            url = f"ws://127.0.0.1:{closed_port}/quote-b-ws-api"
            connect_child = await start(url, "--duration", "3", stderr=err)
        async with token_child, connect_child:  # both run at once: each takes ~3 s
            token_code, token_out = await until_exit(token_child, timeout=30)
            connect_code, connect_out = await until_exit(connect_child)
    assert token_code == 1
    assert one_error_line(refused.read_text()).startswith("error: AuthenticationError")
    assert connect_code == 0
    assert any(o.get("event") == "connect_failed" for o in connect_child.lines)
    seen = token_out + connect_out + refused.read_text() + unreachable.read_text()
    assert "token=***" in seen and CANARY not in seen
