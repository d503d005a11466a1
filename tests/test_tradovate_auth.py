"""TradovateTokenSource against the simulated Tradovate REST API on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
import orjson
import pytest
import trio

from tickactors import (
    AuthenticationError,
    ConnectError,
    ProtocolError,
    RequestTimeoutError,
    Secret,
    VenueRejectedError,
)
from tickactors._net.token_source import IssuedToken
from tickactors.sim import SimConfig, Simulator, open_simulator
from tickactors.venues._tradovate_auth import (
    MAX_PENALTIES,
    TradovateCredentials,
    TradovateTokenSource,
)

EPOCH = 1_700_000_000.0  # the sim's wall clock at trio time 0 (whole seconds: exact lifetimes)
PASSWORD = "PASSWORD-leak-7f3a"
SEC = "SEC-leak-0c91e2"
CREDENTIALS = TradovateCredentials(
    name="erin", password=PASSWORD, app_id="Sample App", app_version="1.0", cid="8", sec=SEC
)
REQUEST = "POST /v1/auth/accesstokenrequest"
RENEW = "GET /v1/auth/renewaccesstoken"


def wall() -> float:
    return EPOCH + trio.current_time()


class Recording(httpx.AsyncBaseTransport):
    """A real HTTP transport that also keeps every request and JSON answer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.answers: list[Any] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.requests.append(request)
        self.answers.append(orjson.loads(body))
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def tradovate(
    which: Literal["md", "access"] = "md",
    credentials: TradovateCredentials = CREDENTIALS,
    request_timeout: float = 10.0,
    **config: Any,
) -> AsyncIterator[tuple[Simulator, TradovateTokenSource, Recording]]:
    settings = SimConfig(epoch=EPOCH, token_lifetime=600.0, **config)
    async with open_simulator("tradovate", config=settings) as sim:
        recording = Recording()
        source = TradovateTokenSource(
            sim.rest_url,
            credentials,
            which=which,
            request_timeout=request_timeout,
            wall_clock=wall,
            transport=recording,
        )
        async with source:
            yield sim, source, recording


async def test_first_fetch_returns_the_md_token_and_its_lifetime(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate() as (sim, source, recording):
        issued = await source.fetch()
        assert issued == IssuedToken(issued.token, 600.0)
        assert issued.token.reveal() == recording.answers[0]["mdAccessToken"]
        assert sim.tradovate is not None
        assert sim.tradovate.accounts.expires_at(issued.token.reveal()) == 600.0
        request = recording.requests[0]
        assert (request.method, request.url.path) == ("POST", "/v1/auth/accesstokenrequest")
        assert orjson.loads(request.content) == {
            "name": "erin",
            "password": PASSWORD,
            "appId": "Sample App",
            "appVersion": "1.0",
            "cid": 8,
            "sec": SEC,
        }
        assert sim.stats.tokens_issued == 1 and sim.stats.rest_calls == {REQUEST: 1}


async def test_access_variant_and_lifetime_counted_from_the_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate("access") as (_, source, recording):
        await trio.sleep(42.0)
        issued = await source.fetch()
        assert issued.token.reveal() == recording.answers[0]["accessToken"]
        assert issued.lifetime == 600.0
        assert recording.answers[0]["expirationTime"] == "2023-11-14T22:24:02.000Z"


async def test_later_fetches_renew_with_the_bearer_access_token(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate() as (sim, source, recording):
        first = await source.fetch()
        await trio.sleep(500.0)
        second = await source.fetch()
        assert second.lifetime == 600.0 and second.token != first.token
        assert second.token.reveal() == recording.answers[1]["mdAccessToken"]
        renewal = recording.requests[1]
        assert (renewal.method, renewal.url.path) == ("GET", "/v1/auth/renewaccesstoken")
        access = recording.answers[0]["accessToken"]
        assert renewal.headers["authorization"] == f"Bearer {access}"
        await trio.sleep(500.0)  # the renewal renews with the renewed access token
        assert (await source.fetch()).lifetime == 600.0
        assert (
            recording.requests[2]
            .headers["authorization"]
            .endswith(recording.answers[1]["accessToken"])
        )
        assert sim.stats.tokens_renewed == 2 and sim.stats.tokens_issued == 1
        assert sim.stats.rest_calls == {REQUEST: 1, RENEW: 2}


async def test_revoked_token_renewal_falls_back_to_a_token_request(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate("access") as (sim, source, recording):
        first = await source.fetch()
        sim.faults.expire_token(first.token.reveal())
        await trio.sleep(100.0)
        second = await source.fetch()
        assert recording.answers[1] == {"errorText": "Access is denied"}
        assert second.token.reveal() == recording.answers[2]["accessToken"] != first.token.reveal()
        assert second.lifetime == 600.0
        assert sim.stats.rest_calls == {REQUEST: 2, RENEW: 1}
        assert sim.stats.tokens_issued == 2 and sim.stats.tokens_renewed == 0


async def test_expired_token_renewal_falls_back_to_a_token_request(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate() as (sim, source, recording):
        await source.fetch()
        await trio.sleep(700.0)
        issued = await source.fetch()
        assert recording.answers[1] == {"errorText": "Expired Access Token"}
        assert issued.lifetime == 600.0 and trio.current_time() == 700.0
        assert sim.stats.rest_calls == {REQUEST: 2, RENEW: 1}


async def test_renewal_timeout_falls_back_within_the_same_call(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate(request_timeout=5.0) as (sim, source, _):
        await source.fetch()
        sim.faults.stall(7.0)
        issued = await source.fetch()
        # renewal given up at t=5; the new request was answered when the stall ended (t=7)
        assert trio.current_time() == 7.0 and issued.lifetime == 598.0
        assert sim.stats.rest_calls == {REQUEST: 2, RENEW: 1}


async def test_bad_credentials_raise_authentication_error() -> None:
    async with tradovate(tradovate_user="erin", tradovate_password="other") as (sim, source, _):
        with pytest.raises(AuthenticationError, match="Incorrect username or password"):
            await source.fetch()
        assert sim.stats.tokens_issued == 0


async def test_penalty_ticket_waits_exactly_p_time_then_resends(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with tradovate() as (sim, source, recording):
        sim.faults.p_ticket(1, p_time=15)
        issued = await source.fetch()
        assert trio.current_time() == 15.0 and issued.lifetime == 600.0
        ticket = recording.answers[0]["p-ticket"]
        first, resend = (orjson.loads(r.content) for r in recording.requests)
        assert resend == {**first, "p-ticket": ticket}
        assert sim.stats.rest_calls == {REQUEST: 2} and not sim.stats.violations


async def test_captcha_ticket_raises_at_once(autojump_clock: trio.abc.Clock) -> None:
    async with tradovate() as (sim, source, _):
        sim.faults.p_ticket(1, captcha=True)
        with pytest.raises(AuthenticationError, match="a person must act"):
            await source.fetch()
        assert trio.current_time() == 0.0 and sim.stats.rest_calls == {REQUEST: 1}


async def test_429_is_a_plain_error_for_the_refresher_backoff() -> None:
    async with tradovate() as (sim, source, _):
        sim.faults.rate_limit_429(1)
        with pytest.raises(VenueRejectedError) as caught:
            await source.fetch()
        assert not isinstance(caught.value, AuthenticationError) and caught.value.code == 429
        assert (await source.fetch()).lifetime is not None  # the next call goes through


async def test_token_request_timeout(autojump_clock: trio.abc.Clock) -> None:
    async with tradovate(request_timeout=5.0) as (sim, source, _):
        sim.faults.stall(100.0)
        with pytest.raises(RequestTimeoutError):
            await source.fetch()
        assert trio.current_time() == 5.0


async def test_network_error_raises_connect_error() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with TradovateTokenSource(f"http://127.0.0.1:{port}/v1", CREDENTIALS) as source:
        with pytest.raises(ConnectError):
            await source.fetch()


def mock(
    handler: Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]],
) -> TradovateTokenSource:
    return TradovateTokenSource(
        "http://127.0.0.1:9/v1",
        CREDENTIALS,
        wall_clock=wall,
        transport=httpx.MockTransport(handler),
    )


@pytest.mark.parametrize("status", [401, 403])
async def test_http_401_and_403_raise_authentication_error(status: int) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"errorText": "Access is denied"})

    async with mock(handler) as source:
        with pytest.raises(AuthenticationError, match=f"HTTP {status} Access is denied"):
            await source.fetch()


async def test_gives_up_after_max_penalties(autojump_clock: trio.abc.Clock) -> None:
    calls: list[Any] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(orjson.loads(request.content))
        return httpx.Response(200, json={"p-ticket": "t", "p-time": 2.5, "p-captcha": False})

    async with mock(handler) as source:
        with pytest.raises(VenueRejectedError, match="penalty"):
            await source.fetch()
    assert len(calls) == MAX_PENALTIES + 1 and trio.current_time() == 2.5 * MAX_PENALTIES


async def test_an_unbelievable_penalty_wait_is_a_bad_answer_not_a_sleep(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"p-ticket": "t", "p-time": 1e308, "p-captcha": False})

    async with mock(handler) as source:
        with pytest.raises(ProtocolError, match="p-time"):
            await source.fetch()
    assert trio.current_time() == 0.0


async def test_renewal_answer_without_tokens_keeps_them(autojump_clock: trio.abc.Clock) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("renewaccesstoken"):
            return httpx.Response(200, json={"expirationTime": "2023-11-14T23:00:00Z"})
        return httpx.Response(
            200,
            json={
                "accessToken": "A",
                "mdAccessToken": "M",
                "expirationTime": "2023-11-14T22:30:00",
            },
        )

    async with mock(handler) as source:
        assert await source.fetch() == IssuedToken(Secret("M"), 1000.0)
        assert await source.fetch() == IssuedToken(Secret("M"), 2800.0)


def test_from_env_names_the_missing_variables_only() -> None:
    environ = {"TRADOVATE_USERNAME": "erin", "TRADOVATE_PASSWORD": PASSWORD, "TRADOVATE_CID": ""}
    with pytest.raises(ValueError) as caught:
        TradovateCredentials.from_env(environ)
    message = str(caught.value)
    for name in ("TRADOVATE_APP_ID", "TRADOVATE_APP_VERSION", "TRADOVATE_CID", "TRADOVATE_SEC"):
        assert name in message
    assert "TRADOVATE_USERNAME" not in message and PASSWORD not in message
    full = {
        **environ,
        "TRADOVATE_APP_ID": "Sample App",
        "TRADOVATE_APP_VERSION": "1.0",
        "TRADOVATE_CID": "8",
        "TRADOVATE_SEC": SEC,
    }
    assert TradovateCredentials.from_env(full) == CREDENTIALS
    with_device = TradovateCredentials.from_env({**full, "TRADOVATE_DEVICE_ID": "dev-1"})
    assert with_device.body()["deviceId"] == "dev-1" and "deviceId" not in CREDENTIALS.body()


async def test_secrets_never_leak(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = [repr(CREDENTIALS), str(CREDENTIALS)]
    secrets = {PASSWORD, SEC}

    async def failing(run: Callable[[], Awaitable[object]]) -> None:
        try:
            await run()
        except Exception as exc:
            texts.append(f"{exc!r} {exc}")
            assert exc.__cause__ is None and exc.__context__ is None

    async with tradovate("access") as (sim, source, recording):
        texts.append(repr(source))
        first = await source.fetch()
        sim.faults.expire_token(first.token.reveal())
        await source.fetch()  # renewal refused (bearer header sent), fallback
        third = await source.fetch()  # renewal works
        sim.faults.stall(100.0)
        await failing(source.fetch)  # renewal timeout, then request timeout
        sim.faults.resume()
        sim.faults.expire_token(third.token.reveal())
        sim.faults.p_ticket(1, captcha=True)
        await failing(source.fetch)  # renewal refused, request gets a captcha ticket
        sim.faults.rate_limit_429(2)
        await failing(source.fetch)  # renewal and request get 429
        for answer in recording.answers:
            for key in ("accessToken", "mdAccessToken"):
                if key in answer:
                    secrets.add(answer[key])
    async with tradovate(tradovate_password="other") as (_, source, _):
        await failing(source.fetch)
    assert len(texts) == 7 and len(secrets) == 2 + 2 * 3
    log_text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "httpx" in log_text  # httpx's own records were captured
    for secret in secrets:
        assert secret not in log_text and secret not in caplog.text
        for text in texts:
            assert secret not in text
