"""Secrets on every path a token travels, through its failure modes, end to end.

A recognizable canary is the AllTick token (URL query), the Tradovate static token
(``authorize`` body) and the prefix of the Tradovate password and ``sec`` (REST body);
the tokens the simulator issues travel in ``authorize`` and in the ``Authorization:
Bearer`` header of renewals. Each scenario drives a real feed against the simulator
through its failures (401, expiry, refused connects, rejected and hung handshakes,
TLS failures, REST errors) and then looks for the secrets in everything a user or an
operator can see: every log record of every logger at DEBUG (trio-websocket, httpx,
httpcore and wsproto included), the exception with its whole ``__cause__`` /
``__context__`` chain as ``traceback.format_exception`` prints it, the reprs of the
venue, dialect, feed, token source and token, ``Feed.statistics()``, every health
event, and the runner's stdout and stderr (run in process).

Every scenario runs again with one-, two- and three-character secrets (``SHORT``),
fragments of the words the messages are made of ("all attempts to connect"), which
``redact`` masks only where they stand as a token: such a secret must not stand as a
token anywhere, and no mask may cut into a word (``Watch.check``).

``test_secret.py`` covers :class:`Secret` and ``redact`` themselves;
``test_tradovate_auth.py`` the token source alone; the runner as a subprocess is in
``test_runner_tls.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import traceback
from functools import partial
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import attrs
import httpx
import pytest
import trio

import tickactors
from tickactors import (
    AuthenticationError,
    CertificateError,
    Feed,
    HealthEvent,
    connect_batched,
    connect_websocket,
)
from tickactors._cli.run import add_arguments, run_from_args
from tickactors._secret import ANYWHERE
from tickactors.sim import SimConfig, Simulator, open_simulator
from tickactors.venues import AllTick, Tradovate
from tickactors.venues._tradovate_auth import TradovateCredentials, TradovateTokenSource

from .tls_ca import client_context, server_context

CANARY = "SECRET-CANARY-7f3a9c"
EPOCH = 1_700_000_000.0


@attrs.frozen
class Secrets:
    """The secrets of one run: the socket token (AllTick's URL query, Tradovate's
    ``authorize``), the Tradovate password, a wrong one, and ``sec``."""

    token: str
    password: str
    wrong: str
    sec: str

    def credentials(self, *, wrong: bool = False) -> TradovateCredentials:
        password = self.wrong if wrong else self.password
        return TradovateCredentials(
            name="erin", password=password, app_id="app", app_version="1.0", cid="8", sec=self.sec
        )


CANARIES = Secrets(
    token=f"{CANARY}+/=",  # percent-encoded in AllTick's URL: either form is a leak
    password=f"{CANARY}-password",
    wrong=f"{CANARY}-wrong",
    sec=f"{CANARY}-sec",
)
#: Secrets too short to be masked wherever they occur, each a fragment of words the
#: messages use ("attempts to connect", "connection", "Too many requests", "httpx",
#: "Incorrect username or password", "access"), or, for "url", with characters that
#: URL encoding changes.
SHORT = {
    "1-char": Secrets(token="t", password="q", wrong="w", sec="x"),
    "2-char": Secrets(token="nn", password="qu", wrong="wo", sec="ex"),
    "3-char": Secrets(token="ect", password="nne", wrong="ord", sec="cce"),
    "3-char-url": Secrets(token="t/=", password="q+/", wrong="w+/", sec="x=/"),
}


@pytest.fixture(params=["canary", *SHORT])
def secrets(request: pytest.FixtureRequest) -> Secrets:
    return CANARIES if request.param == "canary" else SHORT[request.param]


SYMBOL = {"alltick": "BTCUSDT", "tradovate": "ESZ6"}
TRANSPORTS = pytest.mark.parametrize(
    "transport", [connect_batched, connect_websocket], ids=["batched", "trio-websocket"]
)
VENUES = pytest.mark.parametrize("venue", ["alltick", "tradovate"])


def exception_texts(exc: BaseException) -> list[str]:
    """The traceback as printed, and str/repr/args/attributes of every exception under it."""
    texts = ["".join(traceback.format_exception(exc))]
    pending, seen = [exc], set()
    while pending:
        each = pending.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        texts += [str(each), repr(each), *map(repr, each.args), repr(getattr(each, "__dict__", {}))]
        if isinstance(each, BaseExceptionGroup):
            pending.extend(each.exceptions)
        pending.extend(e for e in (each.__cause__, each.__context__) if e is not None)
    return texts


#: A letter, digit, '_', '-' or '~': what makes a short secret part of a larger token.
TOKEN_CHAR = re.compile(r"[\w~-]")
#: A mask with such a character beside it: a word redaction cut into.
GARBLED = re.compile(r"[\w~-]\*\*\*|\*\*\*[\w~-]")


def decoded(text: str) -> str:
    """``text`` with the ``\\n \\r \\t`` escapes of reprs and then ``%XX`` decoded."""
    return unquote(text.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t"))


def readings(text: str) -> set[str]:
    """``text`` as it is, percent-decoded, and :func:`decoded`."""
    return {text, unquote(text), decoded(text)}


def stands_alone(secret: str, text: str) -> bool:
    """Whether ``secret`` (or a URL form) is in ``text`` with no token character beside it.

    The plainest reading of "as a token", stricter than ``redact``'s rule (a dot, an ``=``
    or a ``%`` beside it is enough here), in every one of the text's :func:`readings`.
    """
    forms = {secret, quote_plus(secret), quote(secret, safe="")}
    for variant in readings(text):
        for form in forms:
            start = variant.find(form)
            while start >= 0:
                before, after = variant[start - 1 : start], variant[start + len(form) :][:1]
                if not TOKEN_CHAR.match(before or " ") and not TOKEN_CHAR.match(after or " "):
                    return True
                start = variant.find(form, start + 1)
    return False


class Watch:
    """Collects everything visible; :meth:`check` asserts no secret is in any of it.

    A secret of ``ANYWHERE`` characters or more must not be anywhere in it; a shorter one
    must not stand as a token (:func:`stands_alone`), and no mask may cut into a word.
    """

    def __init__(self, caplog: pytest.LogCaptureFixture, secrets: Secrets = CANARIES) -> None:
        caplog.set_level(logging.DEBUG)  # the root logger: every library's records reach us
        self.caplog = caplog
        self.secrets = {CANARY, *attrs.astuple(secrets)}
        self.texts: list[str] = []
        self.events: list[str] = []

    def see(self, *objects: object) -> None:
        for each in objects:
            self.texts += [repr(each), str(each)]

    def exception(self, exc: BaseException) -> None:
        self.texts += exception_texts(exc)

    def feed(self, feed: Feed) -> None:
        self.see(feed, feed.venue, feed._dialect, feed.venue.token_source, feed._tokens.current())
        self.texts.append(feed._dialect.display_url())
        self.texts.append(json.dumps(feed.statistics(), default=repr))

    def event(self, event: HealthEvent) -> None:
        self.events.append(event.event)
        self.texts += [repr(event), json.dumps(event.to_dict(), default=repr)]

    async def until(self, feed: Feed, name: str, timeout: float = 120.0) -> HealthEvent:
        with trio.fail_after(timeout):
            async for event in feed.events():
                self.event(event)
                if event.event == name:
                    return event
        raise AssertionError(f"the feed ended before {name}")

    async def ended(self, feed: Feed, error: BaseException | None = None) -> None:
        """After the feed closed: its remaining events, its reprs and statistics, the error."""
        async for event in feed.events():
            self.event(event)
        self.feed(feed)
        if error is not None:
            self.exception(error)

    def check(self, *loggers: str) -> None:
        records = self.caplog.records
        names = {r.name for r in records}
        for wanted in ("tickactors", *loggers):  # the capture really saw these libraries
            assert any(n == wanted or n.startswith(wanted + ".") for n in names), (wanted, names)
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in records:
            self.texts += [record.getMessage(), repr(record.args), formatter.format(record)]
        self.texts.append(self.caplog.text)
        for secret in self.secrets:
            for text in self.texts:
                if len(secret) >= ANYWHERE:
                    assert secret not in text, (secret, text[:2000])
                else:
                    assert not stands_alone(secret, text), (secret, text[:2000])
        for text in self.texts:
            assert not GARBLED.search(decoded(text)), text[:2000]  # '\\n***' is no word

    def said(self, phrase: str) -> bool:
        return any(phrase in text for text in self.texts)


async def ticks(feed: Feed, symbol: str, count: int = 3) -> None:
    seen = 0
    with trio.fail_after(60):
        while seen < count:
            seen += sum(1 for item in await feed.get_batch() if item.symbol == symbol)


def test_the_watch_sees_a_leak_wherever_it_is(caplog: pytest.LogCaptureFixture) -> None:
    watch = Watch(caplog)
    logging.getLogger("tickactors").info("clean")
    logging.getLogger("wsproto").debug("frame %s", CANARIES.token)
    with pytest.raises(AssertionError, match=CANARY):
        watch.check()
    caplog.clear()
    watch = Watch(caplog)
    logging.getLogger("tickactors").info("clean")
    try:
        try:
            raise ValueError(f"url ws://h/?token={CANARIES.token}")
        except ValueError:
            raise tickactors.ConnectError("cannot connect") from None
    except tickactors.ConnectError as exc:
        watch.exception(exc)  # the message is clean; its __context__ is not
    with pytest.raises(AssertionError, match=CANARY):
        watch.check()


@pytest.mark.parametrize(
    "leak",
    [
        "GET /quote-b-ws-api?token=t HTTP/1.1",
        "cannot process {'name': 'erin', 'password': 'q'}",
        "TextMessage(data='authorize\\n2\\n\\nt')",  # a repr: a letter before the token
        "next=ws%3A%2F%2Fh%2F%3Ftoken%3Dt%26x",  # percent-encoded
        "all connections to***en",  # no secret, but a word cut by a mask
    ],
)
def test_the_watch_sees_a_short_secret_as_a_token_or_a_garbled_word(
    leak: str, caplog: pytest.LogCaptureFixture
) -> None:
    clean = "a token in a socket, ?token=*** Bearer *** 'authorize\\n2\\n\\n***'"
    watch = Watch(caplog, SHORT["1-char"])
    logging.getLogger("tickactors").info("%s", clean)
    watch.check()  # the clean record alone passes
    watch = Watch(caplog, SHORT["1-char"])
    logging.getLogger("tickactors").warning("%s", leak)
    with pytest.raises(AssertionError, match=re.escape(leak[:8])):
        watch.check()


def loggers_of(transport: Any) -> tuple[str, ...]:
    return ("trio-websocket",) if transport is connect_websocket else ()


def make_venue(venue: str, url: str, token: Any) -> AllTick | Tradovate:
    return AllTick(url=url, token=token) if venue == "alltick" else Tradovate(url=url, token=token)


@VENUES
@TRANSPORTS
async def test_a_static_token_through_a_hung_handshake_a_drop_401_and_expiry(
    venue: str,
    transport: Any,
    secrets: Secrets,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = Watch(caplog, secrets)
    symbol = SYMBOL[venue]
    token = secrets.token
    feed: Feed | None = None
    async with open_simulator(venue, config=SimConfig(tokens={token}), seed=21) as sim:
        with trio.fail_after(600), pytest.raises(AuthenticationError) as caught:
            async with tickactors.open_feed(
                make_venue(venue, sim.url, token), transport_factory=transport, connect_timeout=2.0
            ) as feed:
                feed.subscribe(symbol)
                await ticks(feed, symbol)
                sim.faults.hang_upgrade(1)  # the next upgrade is never answered
                sim.faults.drop()
                await watch.until(feed, "connect_failed")  # no handshake within 2 s
                await watch.until(feed, "subscribed")
                await ticks(feed, symbol)
                watch.feed(feed)
                sim.faults.expire_token(token)  # 401 now, and 401 on the next connection
                await trio.sleep_forever()
        assert sim.stats.faults_injected["expire_token"] == 1
    assert feed is not None
    await watch.ended(feed, caught.value)
    assert {"connect_failed", "auth_failed", "disconnected", "connecting"} <= set(watch.events)
    assert watch.said("no WebSocket handshake within 2 s")
    watch.check(*loggers_of(transport))


@VENUES
@TRANSPORTS
async def test_refused_connects_rejected_handshakes_and_untrusted_certificates(
    venue: str,
    transport: Any,
    secrets: Secrets,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = Watch(caplog, secrets)
    token = secrets.token
    # A port bound but never listening refuses every connect, and while it stays bound
    # nothing else (the simulator below, another test) can take it.
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
        async with open_simulator(venue, config=SimConfig(tokens={token}), seed=22) as sim:
            urls = [
                sim.url_for("/no-such-path"),
                sim.url.replace(f":{sim.port}/", f":{closed_port}/"),
            ]
            assert str(closed_port) in urls[1]
            for url in urls:  # HTTP 404 on the upgrade; connection refused
                async with tickactors.open_feed(
                    make_venue(venue, url, token), transport_factory=transport
                ) as feed:
                    feed.subscribe(SYMBOL[venue])
                    await trio.sleep(20)  # several attempts, under backoff
                await watch.ended(feed)
                assert feed._health.counts["connect_failed"] >= 2
    assert watch.said("handshake rejected with HTTP 404") and watch.said("cannot connect: ")
    async with open_simulator(
        venue, config=SimConfig(tokens={token}), seed=22, ssl_context=server_context()
    ) as sim:
        with trio.fail_after(60), pytest.raises(CertificateError) as caught:
            async with tickactors.open_feed(
                make_venue(venue, sim.url, token), transport_factory=transport
            ) as feed:
                await trio.sleep_forever()
    await watch.ended(feed, caught.value)
    assert "certificate_failed" in watch.events
    assert watch.said("cannot verify the TLS certificate of 127.0.0.1:")
    watch.check()


async def echo_404(stream: trio.SocketStream) -> None:
    """A web server whose error page quotes the request line, as many do."""
    request = b""
    with trio.move_on_after(5):
        while b"\r\n\r\n" not in request:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            request += chunk
    body = b"Cannot GET " + request.split(b"\r\n")[0]
    head = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(body)
    with contextlib.suppress(trio.BrokenResourceError):
        await stream.send_all(head + body)
    await trio.aclose_forcefully(stream)


@TRANSPORTS
async def test_an_error_page_that_quotes_the_url_is_a_plain_retried_connect_error(
    transport: Any,
    secrets: Secrets,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = Watch(caplog, secrets)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo_404, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        venue = AllTick(url=f"ws://127.0.0.1:{port}/quote-b-ws-api", token=secrets.token)
        async with tickactors.open_feed(venue, transport_factory=transport) as feed:
            await trio.sleep(30)
        nursery.cancel_scope.cancel()
    await watch.ended(feed)
    assert feed._health.counts["connect_failed"] >= 3  # retried, not a crashed feed
    assert watch.said("handshake rejected with HTTP 404")
    watch.check(*loggers_of(transport))


def tradovate_sim(secrets: Secrets, **config: Any) -> Any:
    settings = SimConfig(
        epoch=EPOCH, tradovate_user="erin", tradovate_password=secrets.password, **config
    )
    return open_simulator("tradovate", config=settings, seed=23, ssl_context=server_context())


def source_for(sim: Simulator, secrets: Secrets, **options: Any) -> TradovateTokenSource:
    return TradovateTokenSource(
        sim.rest_url,
        secrets.credentials(),
        wall_clock=lambda: EPOCH + trio.current_time(),
        **options,
    )


def issued_tokens(sim: Simulator) -> set[str]:
    assert sim.tradovate is not None
    return set(sim.tradovate.accounts._tokens)


async def test_tradovate_rest_tokens_through_renewal_expiry_and_429_over_https(
    secrets: Secrets, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    watch = Watch(caplog, secrets)
    async with tradovate_sim(secrets, token_lifetime=120.0) as sim:
        async with source_for(sim, secrets, ssl_context=client_context()) as source:
            venue = Tradovate(url=sim.url, token=source)
            async with tickactors.open_feed(venue, ssl_context=client_context()) as feed:
                watch.see(source)
                feed.subscribe("ESZ6")
                await ticks(feed, "ESZ6")
                first = feed._tokens.current()  # the socket authorized with this one
                assert first is not None
                await watch.until(feed, "token_refreshed")  # the first fetch
                renewed = await watch.until(feed, "token_refreshed")  # renewal: Bearer header
                assert renewed.detail["generation"] == 2
                sim.faults.expire_token(first.reveal())  # the venue closes that socket
                await watch.until(feed, "venue_closing")
                await watch.until(feed, "authorized")  # a new socket, the renewed token
                await watch.until(feed, "subscribed")  # nothing more to send on the socket
                sim.faults.rate_limit_429(2)  # renewal and fallback request both get 429
                feed._tokens.request_refresh()
                await watch.until(feed, "token_failed")
                await watch.until(feed, "token_refreshed")
                current = feed._tokens.current()
                assert current is not None
                sim.faults.expire_token(current.reveal())  # not in use yet: the next one is
                sim.faults.drop()
                await watch.until(feed, "auth_failed")  # authorize answered 401
                await watch.until(feed, "authorized")
                await ticks(feed, "ESZ6")
            await watch.ended(feed)
        issued = issued_tokens(sim)
        assert sim.stats.rest_calls["GET /v1/auth/renewaccesstoken"] >= 2
    assert len(issued) >= 2 * 3 and min(map(len, issued)) >= ANYWHERE
    watch.secrets |= issued
    assert watch.said("429 Too many requests")
    watch.check("httpx", "httpcore")


async def test_tradovate_rest_errors_that_echo_the_request_are_redacted(
    secrets: Secrets, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A venue whose error pages quote the request (password, sec) back: 500, then 401."""
    watch = Watch(caplog, secrets)
    calls: list[int] = []

    async def echo(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        status = 500 if len(calls) == 1 else 401
        text = f"cannot process {request.content.decode()} {request.headers}"
        return httpx.Response(status, json={"errorText": text})

    source = TradovateTokenSource(
        "https://127.0.0.1:9/v1", secrets.credentials(), transport=httpx.MockTransport(echo)
    )
    async with source:
        venue = Tradovate(url="wss://127.0.0.1:9/v1/websocket", token=source)
        with trio.fail_after(600), pytest.raises(AuthenticationError) as caught:
            async with tickactors.open_feed(venue) as feed:
                await trio.sleep_forever()
    await watch.ended(feed, caught.value)
    assert "token_failed" in watch.events and len(calls) == 2
    message = str(caught.value)
    assert '"password":"***"' in message and '"sec":"***"' in message
    assert '"appId":"app","appVersion":"1.0","cid":8' in message  # the rest as it was
    assert "Tradovate refused the credentials: HTTP 401 cannot process" in message
    watch.check()


async def test_tradovate_rest_with_an_untrusted_certificate_or_a_wrong_password(
    secrets: Secrets, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    watch = Watch(caplog, secrets)
    async with tradovate_sim(secrets) as sim:
        for options, error in (
            ({}, CertificateError),
            ({"ssl_context": client_context()}, AuthenticationError),
        ):
            credentials = secrets.credentials(wrong=error is AuthenticationError)
            source = TradovateTokenSource(sim.rest_url, credentials, **options)
            async with source:
                venue = Tradovate(url=sim.url, token=source)
                with trio.fail_after(60), pytest.raises(error) as caught:
                    async with tickactors.open_feed(venue) as feed:
                        await trio.sleep_forever()
            await watch.ended(feed, caught.value)
        assert sim.stats.rest_calls == {"POST /v1/auth/accesstokenrequest": 1}
    assert watch.said("Incorrect username or password")
    watch.check("httpx", "httpcore")


async def test_the_runner_prints_no_secret_and_garbles_no_word(
    secrets: Secrets,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In process: a token the venue refuses (exit 1), then a port nobody listens on."""
    watch = Watch(caplog, secrets)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--token", secrets.token, "--symbols", "BTCUSDT", "--format", "jsonl"]
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    async with open_simulator("alltick", config=SimConfig(tokens={"another"}), seed=24) as sim:
        assert await run_from_args(parser.parse_args(["--url", sim.url, *base])) == 1
    url = f"ws://127.0.0.1:{closed_port}/quote-b-ws-api"
    assert await run_from_args(parser.parse_args(["--url", url, *base, "--duration", "10"])) == 0
    out, err = capsys.readouterr()
    watch.texts += [out, err]
    assert err.startswith("error: AuthenticationError") and "token=***" in out
    assert watch.said("all attempts to connect to 127.0.0.1")
    watch.check()
