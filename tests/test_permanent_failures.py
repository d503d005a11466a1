"""Connect failures that will not heal are told apart, said at once, and end the feed (issue 17).

Three layers, each tested on its own and then together:

- the decision (``_core/connect_failures.py``, ``_core/log_throttle.py``): which causes are
  permanent, the count of them in a row, when to give up, how often to say so;
- the facts (``_net/connecting.py``): what the resolver, TCP, TLS or the HTTP answer said,
  found behind trio's wrapping;
- the feed and the runner: a ``connect_failed`` event with ``permanent`` and ``cause``, an
  ERROR log line at once and then at most once a minute, ``PermanentConnectError`` after
  ``give_up_after`` in a row, the runner's one line and exit 1.

A 404 comes from the simulator (it answers an unknown path so). A host name that does
not exist never reaches the network: trio's hostname-resolver seam
(``trio.socket.set_custom_hostname_resolver``) answers ``getaddrinfo`` in the test, with
the ``socket.gaierror`` codes glibc gives (``EAI_NONAME`` for NXDOMAIN, ``EAI_AGAIN`` for a
resolver that did not answer). Time is virtual (the autojump clock), so every time measured
here is exact.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio_websocket

import tickactors
from tickactors import ConnectError, PermanentConnectError
from tickactors import __main__ as entry
from tickactors._core import connect_failures as causes
from tickactors._core.connect_failures import (
    PermanentFailures,
    check_give_up_after,
    http_cause,
)
from tickactors._core.log_throttle import LogThrottle
from tickactors._net.connecting import connect_error
from tickactors._secret import Secret
from tickactors.sim import open_simulator
from tickactors.venues import AllTick

TOKEN = "perm-S3CRET-9b9b"
TRANSPORTS = pytest.mark.parametrize(
    "transport",
    [tickactors.connect_batched, tickactors.connect_websocket],
    ids=["batched", "trio-websocket"],
)


# ---- the decision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (410, True),
        (426, True),
        (408, False),  # Request Timeout: later
        (429, False),  # Too Many Requests: later
        (500, False),
        (502, False),
        (503, False),
        (200, False),  # a plain HTTP server: not a "the request is wrong" answer
        (301, False),
    ],
)
def test_which_http_answers_to_the_upgrade_are_permanent(status: int, permanent: bool) -> None:
    assert http_cause(status) == causes.Cause(f"http_{status}", permanent)


def test_the_count_in_a_row_gives_up_at_n_and_resets_on_success_or_transient() -> None:
    failures = PermanentFailures(3)
    assert [failures.failed(True), failures.failed(True)] == [False, False]
    assert failures.failed(False) is False and failures.in_a_row == 0  # transient: again
    assert [failures.failed(True), failures.failed(True)] == [False, False]
    failures.connected()  # a connection opened: again
    assert [failures.failed(True) for _ in range(3)] == [False, False, True]
    assert failures.in_a_row == 3
    never = PermanentFailures(None)
    assert not any(never.failed(True) for _ in range(10_000))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True, False, float("inf")])
def test_give_up_after_is_a_whole_number_or_none(bad: Any) -> None:
    with pytest.raises(ValueError, match="give_up_after must be a whole number >= 1, or None"):
        check_give_up_after(bad)
    assert check_give_up_after(None) is None and check_give_up_after(1) == 1


def test_the_throttle_says_at_once_then_once_a_minute_per_key_with_the_count() -> None:
    throttle = LogThrottle(60.0)
    assert throttle.allow("http_404", 0.0) == 0  # at once
    assert throttle.allow("http_404", 5.0) is None  # held back
    assert throttle.allow("dns_not_found", 6.0) == 0  # another cause: at once
    assert throttle.allow("http_404", 59.9) is None
    assert throttle.allow("http_404", 60.0) == 2  # a minute on, with what was held back
    assert throttle.allow("http_404", 61.0) is None
    with pytest.raises(ValueError):
        LogThrottle(float("nan"))


# ---- the facts -------------------------------------------------------------------------


def classify(exc: BaseException) -> tuple[str, bool]:
    error = connect_error(exc, Secret(TOKEN), 10.0)
    assert isinstance(error, ConnectError)
    return error.cause, error.permanent


def test_exceptions_are_classified_behind_trios_wrapping() -> None:
    nxdomain = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert classify(nxdomain) == ("dns_not_found", True)
    assert classify(again) == ("dns_failed", False)
    refused = OSError("all attempts to connect to 127.0.0.1:1 failed")
    refused.__cause__ = ExceptionGroup("x", [ConnectionRefusedError(111, "Connection refused")])
    assert classify(refused) == ("refused", False)
    assert classify(OSError(113, "No route to host")) == ("network", False)
    assert classify(trio.TooSlowError()) == ("timeout", False)
    rejected = trio_websocket.ConnectionRejected(404, (), b"")
    assert classify(rejected) == ("http_404", True)
    assert classify(trio_websocket.ConnectionRejected(503, (), b"")) == ("http_503", False)
    broken = trio.BrokenResourceError()
    broken.__cause__ = __import__("ssl").SSLError(1, "tlsv1 alert protocol version")
    assert classify(broken) == ("tls", False)
    # a ConnectError from elsewhere (a user's transport) keeps what it says, "other" if nothing
    assert classify(ConnectError("mine")) == ("other", False)


# ---- the feed --------------------------------------------------------------------------


class Heard(logging.Handler):
    """The ``tickactors`` logger's ERROR records, with the feed clock at each."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((trio.current_time(), record.getMessage()))


@contextmanager
def errors_logged() -> Iterator[Heard]:
    logger = logging.getLogger("tickactors")
    heard = Heard()
    logger.addHandler(heard)
    try:
        yield heard
    finally:
        logger.removeHandler(heard)


async def run_until_it_gives_up(
    venue: AllTick, **feed_kw: Any
) -> tuple[PermanentConnectError, list[tickactors.HealthEvent], float]:
    """Open a feed that can only fail; its events, its error and when it came."""
    events: list[tickactors.HealthEvent] = []
    start = trio.current_time()
    with pytest.raises(PermanentConnectError) as info:
        async with tickactors.open_feed(venue, seed=3, **feed_kw) as feed:
            with trio.fail_after(3600):
                async for event in feed.events():
                    events.append(event)
    return info.value, events, trio.current_time() - start


@TRANSPORTS
async def test_a_404_is_said_at_once_and_ends_the_feed_after_n_in_a_row(
    autojump_clock: trio.abc.Clock, transport: Any
) -> None:
    async with open_simulator("alltick", seed=1) as sim:
        venue = AllTick(url=sim.url_for("/no-such-path"), token=TOKEN)
        with errors_logged() as heard:
            error, events, took = await run_until_it_gives_up(
                venue, give_up_after=3, transport_factory=transport
            )
    failed = [e for e in events if e.event == "connect_failed"]
    assert len(failed) in (2, 3)  # the third may end the feed before its event is read
    for event in failed:
        assert event.detail == {"permanent": True, "cause": "http_404"}
        assert event.message == "handshake rejected with HTTP 404"
    # heard at once: the event and the ERROR line at the first failure's instant
    assert failed[0].time == heard.lines[0][0] == 0.0
    assert len(heard.lines) == 1  # the second came within the minute: held back
    first = heard.lines[0][1]
    assert "connect_failed: handshake rejected with HTTP 404" in first
    assert "will not heal" in first and "1 in a row, the feed gives up after 3" in first
    assert TOKEN not in first
    # the end: a typed error naming the cause, after the backoff between three attempts
    assert (error.cause, error.permanent, error.attempts) == ("http_404", True, 3)
    assert "gave up after 3 connect attempt(s) in a row" in str(error)
    assert "(http_404)" in str(error) and TOKEN not in str(error)
    assert isinstance(error, ConnectError) and isinstance(error, tickactors.FeedError)
    assert 6.0 <= took <= 9.0  # AllTick's 3 s floor + full jitter (1 s, then 2 s) twice


class Resolver(trio.abc.HostnameResolver):
    """``getaddrinfo`` by script: a ``gaierror`` code, or "ok" for 127.0.0.1 (the last
    step repeats). Nothing reaches a real resolver."""

    def __init__(self, *script: int | str) -> None:
        self.script = list(script)
        self.calls = 0

    async def getaddrinfo(  # type: ignore[override]
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        self.calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        await trio.lowlevel.checkpoint()
        if step == "ok":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))
            ]
        assert isinstance(step, int)
        raise socket.gaierror(step, "Name or service not known")

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        raise NotImplementedError


@TRANSPORTS
async def test_a_host_name_that_does_not_exist_is_permanent(
    autojump_clock: trio.abc.Clock, transport: Any
) -> None:
    resolver = Resolver(socket.EAI_NONAME)
    trio.socket.set_custom_hostname_resolver(resolver)
    venue = AllTick(url="ws://nonexistent.invalid:8765/quote-b-ws-api", token=TOKEN)
    with errors_logged() as heard:
        error, events, took = await run_until_it_gives_up(
            venue, give_up_after=5, transport_factory=transport
        )
    failed = [e for e in events if e.event == "connect_failed"]
    assert failed and all(e.detail == {"permanent": True, "cause": "dns_not_found"} for e in failed)
    assert "Name or service not known" in failed[0].message
    assert failed[0].time == heard.lines[0][0] == 0.0  # heard at once
    assert (error.cause, error.attempts, resolver.calls) == ("dns_not_found", 5, 5)
    assert took < 60 and len(heard.lines) == 1


async def test_a_resolver_that_does_not_answer_is_transient_and_resets_the_count(
    autojump_clock: trio.abc.Clock,
) -> None:
    NONAME, AGAIN = socket.EAI_NONAME, socket.EAI_AGAIN
    resolver = Resolver(NONAME, NONAME, AGAIN, NONAME, NONAME, AGAIN, NONAME, NONAME, NONAME)
    trio.socket.set_custom_hostname_resolver(resolver)
    venue = AllTick(url="ws://venue.invalid:8765/quote-b-ws-api", token=TOKEN)
    with errors_logged() as heard:
        error, events, _ = await run_until_it_gives_up(venue, give_up_after=3)
    failed = [e for e in events if e.event == "connect_failed"]
    assert [e.detail["cause"] for e in failed[:6]] == [
        "dns_not_found",
        "dns_not_found",
        "dns_failed",
        "dns_not_found",
        "dns_not_found",
        "dns_failed",
    ]
    assert [e.detail["permanent"] for e in failed[:3]] == [True, True, False]
    assert error.attempts == 3 and resolver.calls == 9  # only the last three in a row counted
    assert all("dns_not_found" in line for _, line in heard.lines)  # never the transient


async def test_a_connection_that_opens_resets_the_count(autojump_clock: trio.abc.Clock) -> None:
    NONAME = socket.EAI_NONAME
    resolver = Resolver(NONAME, NONAME, "ok", NONAME)
    trio.socket.set_custom_hostname_resolver(resolver)
    async with open_simulator("alltick", seed=2) as sim:
        venue = AllTick(url=f"ws://venue.test:{sim.port}/quote-b-ws-api", token=TOKEN)
        with pytest.raises(PermanentConnectError) as info:
            async with tickactors.open_feed(venue, seed=3, give_up_after=3) as feed:
                with trio.fail_after(600):
                    async for event in feed.events():
                        if event.event == "connected":
                            await trio.sleep(1)  # the supervisor hears of it just after
                            assert feed.statistics()["connection"]["permanent_failures"] == 0
                            sim.faults.drop()  # gone again; the name with it
    assert info.value.attempts == 3 and resolver.calls == 6  # 2, then 1 good, then 3


async def test_never_giving_up_keeps_retrying_and_keeps_saying_so_once_a_minute(
    autojump_clock: trio.abc.Clock,
) -> None:
    trio.socket.set_custom_hostname_resolver(Resolver(socket.EAI_NONAME))
    venue = AllTick(url="ws://nonexistent.invalid:8765/quote-b-ws-api", token=TOKEN)
    with errors_logged() as heard:
        async with tickactors.open_feed(venue, seed=3, give_up_after=None) as feed:
            await trio.sleep(3600)
            stats = feed.statistics()
    attempts = stats["events"]["connect_failed"]
    assert stats["connection"]["permanent_failures"] == attempts > 60  # an hour of retries
    times = [at for at, _ in heard.lines]
    assert times[0] == 0.0 and all(b - a >= 60.0 for a, b in itertools.pairwise(times))
    assert 30 <= len(times) <= 61  # about once a minute, never more
    assert "more like it since the last such line" in heard.lines[1][1]
    assert "the feed never gives up" in heard.lines[0][1]


async def test_open_feed_refuses_a_bad_give_up_after_before_anything_runs() -> None:
    venue = AllTick(url="ws://127.0.0.1:1/quote-b-ws-api", token=TOKEN)
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="give_up_after"):
            async with tickactors.open_feed(venue, give_up_after=bad):
                raise AssertionError("not reached")


async def test_transient_failures_never_end_the_feed(autojump_clock: trio.abc.Clock) -> None:
    venue = AllTick(url="ws://127.0.0.1:1/quote-b-ws-api", token=TOKEN)  # nothing listens
    with errors_logged() as heard:
        async with tickactors.open_feed(venue, seed=3, give_up_after=1) as feed:
            await trio.sleep(600)
            stats = feed.statistics()
    assert stats["events"]["connect_failed"] > 10 and heard.lines == []
    assert stats["connection"]["permanent_failures"] == 0


# ---- the runner ------------------------------------------------------------------------


class _NotFound(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        body = b"no such path\n"
        self.request.sendall(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )


@contextmanager
def answering_404() -> Iterator[int]:
    """A threaded TCP server on loopback that answers every request 404; its port."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _NotFound) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join(10)


def test_the_runner_says_it_on_stderr_at_once_then_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with answering_404() as port:
        code = entry.main(
            [
                "run",
                "--venue",
                "tradovate",  # a 1 s reconnect floor: the run takes about 2 s
                "--url",
                f"ws://127.0.0.1:{port}/v1/websocket",
                "--token",
                TOKEN,
                "--symbols",
                "ESZ6",
                "--format",
                "jsonl",
                "--give-up-after",
                "2",
            ]
        )
    out, err = capsys.readouterr()
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    failed = [line for line in lines if line["event"] == "connect_failed"]
    assert failed and failed[0]["permanent"] is True and failed[0]["cause"] == "http_404"
    assert lines[-1]["event"] == "fatal" and lines[-1]["error"] == "PermanentConnectError"
    said = [line for line in err.splitlines() if line.strip()]
    assert len(said) == 2, said  # the alarm at the first failure, the fatal line at the end
    assert " ERROR tickactors: [conn 1] connect_failed: handshake rejected with HTTP 404" in said[0]
    assert said[1].startswith("error: PermanentConnectError: gave up after 2 connect attempt(s)")
    assert "Traceback" not in err and TOKEN not in out + err


def test_the_runners_give_up_after_zero_means_never() -> None:
    import argparse

    from tickactors._cli.connection_options import connection_options
    from tickactors.venues import AllTick as Venue

    dialect = Venue(url="ws://127.0.0.1:1/x", token="t").dialect
    base = {"max_symbols_per_connection": None, "max_connections": None}
    for given, expected in ((0, None), (5, 5)):
        args = argparse.Namespace(**base, max_connection_age=None, give_up_after=given)
        assert connection_options(args, dialect)["give_up_after"] == expected
    args = argparse.Namespace(**base, max_connection_age=None, give_up_after=None)
    assert "give_up_after" not in connection_options(args, dialect)  # the library's default
