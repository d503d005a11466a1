"""The simulated Tradovate venue's REST side, on the same port as its WebSocket."""

from __future__ import annotations

import trio

from tickactors.sim import SimConfig, open_simulator
from tickactors.sim._tradovate_probe import open_tradovate_probe, rest

CREDENTIALS = {
    "name": "erin",
    "password": "pw",
    "appId": "Sample App",
    "appVersion": "1.0",
    "cid": 8,
    "sec": "f03741b6-f634-48d6-9308-c8fb871150c2",
}


async def test_access_token_request_in_any_case_and_its_use(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate", seed=5) as sim:
        for path in ("/v1/auth/accessTokenRequest", "/V1/AUTH/ACCESSTOKENREQUEST/"):
            status, body = await rest(sim.port, "POST", path, CREDENTIALS)
            assert status == 200
            assert set(body) >= {"accessToken", "mdAccessToken", "expirationTime", "userId", "name"}
        assert body["name"] == "erin" and body["expirationTime"].endswith("Z")
        token = body["accessToken"]
        assert sim.stats.tokens_issued == 2
        assert sim.stats.rest_calls == {"POST /v1/auth/accesstokenrequest": 2}
        assert await rest(sim.port, "GET", "/v1/account/list", token=token) == (
            200,
            sim.tradovate.accounts.accounts_json(sim.tradovate.accounts.user("erin")),
        )
        status, found = await rest(sim.port, "GET", "/v1/contract/find?name=ESZ6", token=token)
        assert status == 200 and found["name"] == "ESZ6"
        assert (await rest(sim.port, "GET", f"/v1/contract/item?id={found['id']}", token=token))[
            1
        ] == found
        status, suggested = await rest(
            sim.port, "GET", "/v1/Contract/Suggest?t=ES&l=5", token=token
        )
        assert [c["name"] for c in suggested] == ["ESH7", "ESM7", "ESZ6"]
        assert await rest(sim.port, "GET", "/v1/contract/find?name=ZZZ9", token=token) == (
            404,
            {"errorText": "Not found: ZZZ9"},
        )
        # the md token authorizes a socket too
        async with open_tradovate_probe(sim.url) as probe:
            assert await probe.authorize(body["mdAccessToken"]) == {"i": 0, "s": 200}


async def test_wrong_credentials_get_200_with_error_text() -> None:
    config = SimConfig(tradovate_user="erin", tradovate_password="pw")
    async with open_simulator("tradovate", config=config) as sim:
        status, body = await rest(
            sim.port, "POST", "/v1/auth/accesstokenrequest", {**CREDENTIALS, "password": "PW"}
        )
        assert status == 200 and body["errorText"].startswith("Incorrect username or password")
        assert sim.stats.tokens_issued == 0
        assert (await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", CREDENTIALS))[0] == 200


async def test_bearer_required_and_expiry_and_renewal(autojump_clock: trio.abc.Clock) -> None:
    config = SimConfig(token_lifetime=600.0)
    async with open_simulator("tradovate", config=config) as sim:
        _, body = await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", CREDENTIALS)
        old = body["accessToken"]
        assert await rest(sim.port, "GET", "/v1/account/list") == (
            401,
            {"errorText": "Access is denied"},
        )
        await trio.sleep(500.0)
        status, renewed = await rest(sim.port, "GET", "/v1/auth/renewAccessToken", token=old)
        assert status == 200 and renewed["accessToken"] != old
        assert sim.stats.tokens_renewed == 1
        assert sim.tradovate.accounts.expires_at(renewed["accessToken"]) == 1100.0
        await trio.sleep(100.0)  # t=600: the old token is expired, the renewed one is not
        assert await rest(sim.port, "GET", "/v1/account/list", token=old) == (
            401,
            {"errorText": "Expired Access Token"},
        )
        assert (await rest(sim.port, "GET", "/v1/auth/renewaccesstoken", token=old))[0] == 401
        new = renewed["accessToken"]
        assert (await rest(sim.port, "GET", "/v1/account/list", token=new))[0] == 200
        async with open_tradovate_probe(sim.url) as probe:
            assert (await probe.authorize(old))["s"] == 401
            assert (await probe.authorize(new, id=1))["s"] == 200


async def test_unknown_paths_bad_json_and_keep_alive() -> None:
    async with open_simulator("tradovate") as sim:
        assert (await rest(sim.port, "GET", "/v1/nothing/here"))[0] == 404
        assert (await rest(sim.port, "GET", "/elsewhere"))[0] == 404
        stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
        async with stream:
            request = (
                b"POST /v1/auth/accesstokenrequest HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 5\r\n\r\n{nope"
            )
            await stream.send_all(request + request)  # two requests, one connection
            data = b""
            while data.count(b"HTTP/1.1 400") < 2:
                data += await stream.receive_some(65536)
        assert sim.stats.rest_calls["POST /v1/auth/accesstokenrequest"] == 2
        assert sim.stats.tcp_accepted == 3


async def test_rest_429_and_penalty_ticket(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        sim.faults.rate_limit_429(1)
        assert (await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", CREDENTIALS))[0] == 429
        sim.faults.p_ticket(1, p_time=15)
        status, ticket = await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", CREDENTIALS)
        assert status == 200 and set(ticket) == {"p-ticket", "p-time", "p-captcha"}
        assert ticket["p-time"] == 15 and ticket["p-captcha"] is False
        assert sim.stats.tokens_issued == 0
        resend = {**CREDENTIALS, "p-ticket": ticket["p-ticket"]}
        await trio.sleep(15.0)
        status, body = await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", resend)
        assert status == 200 and "accessToken" in body
        status, body = await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", resend)
        assert (status, body) == (400, {"errorText": "Unknown or used penalty ticket"})


async def test_urls_and_rest_waits_out_a_stall(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulator("tradovate") as sim:
        assert sim.rest_url == f"http://127.0.0.1:{sim.port}/v1"
        assert sim.url == f"ws://127.0.0.1:{sim.port}/v1/websocket"
        assert sim.replay_url == f"ws://127.0.0.1:{sim.port}/replay/v1/websocket"
        sim.faults.stall(7.0)
        assert (await rest(sim.port, "POST", "/v1/auth/accesstokenrequest", CREDENTIALS))[0] == 200
        assert trio.current_time() == 7.0
    async with open_simulator("alltick") as sim:
        assert sim.tradovate is None
