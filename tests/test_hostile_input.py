"""Bad symbols from the user, through the API and the runner's stdin: refused at once.

What a valid symbol is, per venue (``validate_symbol`` of each dialect):

- AllTick: a ``str`` of 1 to 40 ASCII characters, a letter or digit first, then
  letters, digits, ``.``, ``_`` and ``-`` (``700.HK``, ``BTCUSDT``, ``EURUSD``);
  kept exactly as given (AllTick codes are case-sensitive as sent).
- Tradovate: a contract name, a ``str`` of 1 to 32 ASCII characters, a letter,
  digit or ``@`` first, then letters, digits, ``@``, ``.``, ``_`` and ``-``,
  upper-cased (``esz6`` is ``ESZ6``); or a contract id, an ``int`` or a string of
  ASCII digits in 1 .. 2**63 - 1 (``"000123"`` is ``"123"``).

Anything else (empty, padded with whitespace, control characters, look-alike
letters or digits, too long, not a str) raises ``InvalidSymbolError`` from
``feed.subscribe`` / ``feed.unsubscribe`` before anything changes, and a stdin
line carrying one gets a ``command_error`` line while the runner goes on. The
simulator's request log proves that none of it reached the wire. Duplicates in one
call are one symbol; thousands at once keep to the venue's symbol cap.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

import tickactors
from tickactors import BOOK, CapacityError, InvalidSymbolError
from tickactors._cli.output import MemoryLines, TextLines, market_dict
from tickactors._cli.run import apply_line
from tickactors._values import HealthEvent, Quote
from tickactors.sim import SimConfig, open_simulator
from tickactors.venues import AllTick, Tradovate

from .test_runner import start

TOKEN = "input-token-8d8d"


def deep_list(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


BAD_BOTH = [
    "", " ", "BTCUSDT ", " BTCUSDT", "\tEURUSD", "EURUSD\n", "BTC\x00USDT", "BTC\nUSDT",
    "BTC\tUSDT", "\x1b[31mBTCUSDT", "BTC\x1bUSDT", "BTC\rUSDT", "BTC\x7fUSDT", "BTC USDT",
    "A\u0410PL", "\u0410APL", "ESZ\uff16", "\uff11\uff12\uff13", "ES\u200bZ6", "ES\u00a0Z6",
    "BTC\ufeff", "ES/Z6", "-ES", ".ES", "#12", "A" * 41, "A" * 1_000_000,
    None, b"BTCUSDT", bytearray(b"ESZ6"), 1.5, True, ["ESZ6"], ("ESZ6",), {"ESZ6"}, object(),
    b"x" * 1_000_000, deep_list(5000), 10**5000,
]  # fmt: skip
BAD = {
    "alltick": [*BAD_BOTH, 5, 700, "@ES"],
    "tradovate": [*BAD_BOTH, 0, -1, 2**63, "0", "9" * 20, "A" * 33],
}
GOOD = {
    "alltick": [
        ("700.HK", "700.HK"), ("BTCUSDT", "BTCUSDT"), ("btcusdt", "btcusdt"),
        ("AAPL.US", "AAPL.US"), ("ES_F-1", "ES_F-1"), ("A" * 40, "A" * 40),
    ],
    "tradovate": [
        ("ESZ6", "ESZ6"), ("esz6", "ESZ6"), ("MNQH7", "MNQH7"), ("@ES", "@ES"),
        ("123456", "123456"), (123456, "123456"), ("000123", "123"), (2**63 - 1, str(2**63 - 1)),
        ("A" * 32, "A" * 32),
    ],
}  # fmt: skip


def dialect(venue):
    url = "ws://127.0.0.1:1/x"
    return (AllTick if venue == "alltick" else Tradovate)(url=url, token=TOKEN).dialect


@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
def test_every_bad_symbol_is_a_short_typed_error(venue):
    for symbol in BAD[venue]:
        with pytest.raises(InvalidSymbolError) as info:
            dialect(venue).validate_symbol(symbol)
        assert isinstance(info.value, ValueError)
        assert len(str(info.value)) < 200, str(info.value)[:300]


@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
def test_good_symbols_and_their_spelling(venue):
    for symbol, spelled in GOOD[venue]:
        assert dialect(venue).validate_symbol(symbol) == spelled


# ---- through a feed on the simulator -----------------------------------------------


async def feed_on(venue, nursery_task, **feed_kw):
    """Run ``nursery_task(sim, feed)`` with a feed on the simulator, ready to subscribe."""
    config = SimConfig(tokens={TOKEN})
    async with open_simulator(venue, config=config, seed=9) as sim:
        cls = AllTick if venue == "alltick" else Tradovate
        async with tickactors.open_feed(cls(url=sim.url, token=TOKEN), seed=9, **feed_kw) as feed:
            ready = "authorized" if venue == "tradovate" else "connected"
            with trio.fail_after(10):
                async for event in feed.events():
                    if event.event == ready:
                        break
            await trio.sleep(1)
            return await nursery_task(sim, feed)


def wire_requests(sim, venue):
    """Every request the simulator received, heartbeats and authorize aside."""
    if venue == "alltick":
        return [(cmd, data) for c in sim.connections for _, cmd, data in c.requests if cmd != 22000]
    return [
        (endpoint, body)
        for c in sim.connections
        for _, endpoint, _, _, body in c.requests
        if endpoint != "authorize"
    ]


@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
async def test_bad_symbols_through_the_api_never_reach_the_wire(autojump_clock, venue):
    good = GOOD[venue][0][0]

    async def check(sim, feed):
        for bad in BAD[venue]:
            for method, args, kw in (
                (feed.subscribe, (bad,), {}),
                (feed.subscribe, (good, bad, good), {}),  # one bad symbol spoils the call
                (feed.subscribe, (bad,), {"kind": BOOK}),
                (feed.unsubscribe, (bad,), {}),
            ):
                with pytest.raises(InvalidSymbolError):
                    method(*args, **kw)
        assert feed.desired() == feed.desired(BOOK) == frozenset()
        await trio.sleep(5)
        assert wire_requests(sim, venue) == []
        feed.subscribe(good)  # the control: a good one does go out, once
        with trio.fail_after(20):
            await feed.wait_confirmed()
        assert len(wire_requests(sim, venue)) == (1 if venue == "alltick" else 2)
        assert dict(sim.stats.violations) == {}

    await feed_on(venue, check)


async def test_alltick_duplicates_are_one_symbol_and_one_request(autojump_clock):
    async def check(sim, feed):
        feed.subscribe("BTCUSDT", "BTCUSDT", "ETHUSDT", "BTCUSDT")
        feed.subscribe("ETHUSDT", "BTCUSDT")
        with trio.fail_after(20):
            await feed.wait_confirmed()
        await trio.sleep(3)
        ((cmd, data),) = wire_requests(sim, "alltick")
        assert cmd == 22004
        assert sorted(entry["code"] for entry in data["symbol_list"]) == ["BTCUSDT", "ETHUSDT"]
        assert dict(sim.stats.violations) == {}

    await feed_on("alltick", check)


async def test_tradovate_spellings_of_one_contract_are_one_request(autojump_clock):
    async def check(sim, feed):
        cid = sim.tradovate.contracts.find("ESZ6").id
        feed.subscribe("ESZ6", "esz6", "EsZ6")
        feed.subscribe(cid, str(cid), f"000{cid}")
        with trio.fail_after(20):
            await feed.wait_confirmed()
        await trio.sleep(3)
        endpoints = sorted(endpoint for endpoint, _ in wire_requests(sim, "tradovate"))
        assert endpoints == ["contract/find", "md/subscribeQuote", "md/subscribeQuote"]
        assert feed.desired() == {"ESZ6", str(cid)}
        assert dict(sim.stats.violations) == {}

    await feed_on("tradovate", check)


async def test_alltick_thousands_at_once_keep_to_the_symbol_cap(autojump_clock):
    symbols = [f"S{i:05d}.HK" for i in range(5000)]

    async def check(sim, feed):
        with pytest.raises(CapacityError) as refused:
            feed.subscribe(*symbols, *symbols[:100])
        assert len(refused.value.symbols) == 4900
        assert feed.desired() == set()  # all or nothing: the 100 that fit were not taken
        feed.subscribe(*symbols[:100])
        with trio.fail_after(60):
            await feed.wait_converged()
        requests = wire_requests(sim, "alltick")
        assert requests and all(len(data["symbol_list"]) <= 100 for _, data in requests)
        assert feed.confirmed() == set(symbols[:100])
        assert feed.rejected() == {}
        assert dict(sim.stats.violations) == {}

    await feed_on("alltick", check, max_symbols_per_connection=100)


async def test_tradovate_thousands_at_once_keep_to_the_symbol_cap(autojump_clock):
    async def check(sim, feed):
        names = list(sim.tradovate.contracts.names)
        fakes = [f"ZZ{i:04d}" for i in range(3000)]
        with pytest.raises(CapacityError) as refused:
            feed.subscribe(*fakes, *names)
        assert len(refused.value.symbols) == len(fakes) + len(names) - 20
        feed.subscribe(*fakes[:10], *names[:10])
        with trio.fail_after(120):
            await feed.wait_converged()
        requests = wire_requests(sim, "tradovate")
        assert len(requests) <= 2 * 20
        assert feed.confirmed() == {name.upper() for name in names[:10]}
        assert set(feed.rejected()) == set(fakes[:10])
        assert dict(sim.stats.violations) == {}

    await feed_on("tradovate", check, max_symbols_per_connection=20)


# ---- stdin ---------------------------------------------------------------------------


class Lines:
    def __init__(self):
        self.statuses = []

    def status(self, event, message="", **detail):
        self.statuses.append((event, message, detail))


BAD_LINES = [
    b"subscribe \x00BTCUSDT", b"subscribe BTCUSDT\x1b[31m", b"subscribe A\xd0\x90PL",
    b"subscribe \xef\xbc\x91\xef\xbc\x92", b"subscribe BTC\x1cUSDT", b"subscribe BTC\xc2\xa0USDT",
    b"subscribe BTC\x0bUSDT", b"subscribe BTC\rUSDT", b"\xff\xfe subscribe BTCUSDT",
    b"subscribe\xc2\xa0BTCUSDT", b"subscribe " + b"A" * 70_000, b"frobnicate BTCUSDT",
    b"subscribe", b"subscribe-book \x00", b"unsubscribe \x1b", b"subscribe ESZ6 \x07",
    b"subscribe " + b" ".join(b"S%05d" % i for i in range(5000)) + b" B\xc3\x84D",
]  # fmt: skip


@pytest.mark.parametrize("venue", ["alltick", "tradovate"])
async def test_bad_stdin_lines_get_one_error_each_and_reach_nothing(autojump_clock, venue):
    good = b"  subscribe\tESZ6 esz6  ESZ6\r" if venue == "tradovate" else b"subscribe BTCUSDT \t"

    async def check(sim, feed):
        writer = Lines()
        for line in BAD_LINES:
            apply_line(feed, writer, line)
        assert [event for event, *_ in writer.statuses] == ["command_error"] * len(BAD_LINES)
        assert all(
            len(message) < 200 and "\x1b" not in message for _, message, _ in writer.statuses
        )
        assert feed.desired() == feed.desired(BOOK) == frozenset()
        await trio.sleep(5)
        assert wire_requests(sim, venue) == []
        apply_line(feed, writer, good)  # the runner goes on: a good line still works
        assert writer.statuses[-1][:2] == ("command", "subscribe")
        with trio.fail_after(20):
            await feed.wait_confirmed()
        assert feed.desired() == {"ESZ6" if venue == "tradovate" else "BTCUSDT"}

    await feed_on(venue, check)


async def test_the_runner_answers_hostile_stdin_line_by_line_and_keeps_streaming():
    """Real time: the runner is a child process reading the lines from a pipe."""
    async with open_simulator("alltick", seed=13) as sim:
        child = await start(sim.url, "--symbols", "BTCUSDT", "--stale-after", "10")
        async with child:
            await child.wait_for(lambda o: o["kind"] == "tick")
            assert child.process.stdin is not None
            await child.process.stdin.send_all(b"\n".join(BAD_LINES) + b"\nsubscribe EURUSD\n")
            done = await child.wait_for(lambda o: o["kind"] == "status" and o["event"] == "command")
            assert done["symbols"] == ["EURUSD"]
            statuses = [o for o in child.lines if o.get("event", "").startswith("command")]
            assert [o["event"] for o in statuses].count("command") == 1
            assert len(statuses) - 1 >= len(BAD_LINES)  # the 70,000-byte line may take two
            await child.wait_for(lambda o: o["kind"] == "tick" and o["symbol"] == "EURUSD")
            assert child.process.returncode is None
            (conn,) = sim.connections
            requested = [data for _, cmd, data in conn.requests if cmd == 22004]
            codes = {entry["code"] for data in requested for entry in data["symbol_list"]}
            assert codes == {"BTCUSDT", "EURUSD"}


# ---- what the venue says, on the way out to the user's terminal -----------------------


def test_text_output_escapes_control_characters_from_the_venue():
    out = MemoryLines()
    event = HealthEvent("ghost", 1.0, 1, "close \x1b[2J", {"symbol": "GHOST\x1b]0;x\x07"})
    TextLines(out).event(event)
    TextLines(out).status("command_error", "invalid symbol '\x1b'", symbols=["\x00"])
    text = out.text()
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert "\\x1b[2J" in text and text.count("\n") == 2


def test_a_quote_entry_cannot_overwrite_the_line_s_own_keys():
    fields = {"symbol": Decimal(1), "kind": None, "price": Decimal(2), "HighPrice": Decimal(3)}
    quote = Quote("ESZ6", 123, last=Decimal("4.5"), fields=fields)
    line = market_dict(quote)
    assert (line["kind"], line["symbol"], line["price"]) == ("quote", "ESZ6", "4.5")
    assert line["HighPrice"] == Decimal(3)
