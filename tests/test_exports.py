"""The public surface: what ``tickactors`` and ``tickactors.venues`` export, and nothing more.

In the manner of trio's ``_tests/test_exports.py``: users import from ``tickactors`` and
``tickactors.venues`` only, so those two ``__all__`` lists are written out here in full. A
name added or removed is a decision about the public API, taken in this file too. Every
exported name exists, is documented, lives in a private module of the package and is
re-exported explicitly (``from ._x import Y as Y``, which static type checkers honour), and
nothing else public hangs off either module.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import types
from pathlib import Path

import pytest

import tickactors
import tickactors.venues

from .fake_venue import FakeNetwork

EXPECTED: dict[str, set[str]] = {
    "tickactors": {
        # opening a feed, and the feed (a type for annotations)
        "open_feed",
        "Feed",
        # what a feed yields, and its stream kinds
        "Tick",
        "BookSnapshot",
        "BookLevel",
        "Quote",
        "MarketData",
        "EventName",
        "HealthEvent",
        "StreamKind",
        "TRADES",
        "BOOK",
        "QUOTES",
        # the user's account on a trading socket (open_feed(sync=True), feed.account())
        "SyncSnapshot",
        "EntityEvent",
        "AccountUpdate",
        # what waits for a slow consumer (open_feed(policies=...))
        "Policy",
        # errors
        "FeedError",
        "InvalidSymbolError",
        "CapacityError",
        "FeedClosedError",
        "RequestTimeoutError",
        "ConnectionLostError",
        "VenueRejectedError",
        "AuthenticationError",
        "ProtocolError",
        "ConnectError",
        "CertificateError",
        "PermanentConnectError",
        "VenueShutdownError",
        "CaptchaRequiredError",
        "SinkError",
        "SinkSpecError",
        # tokens: a secret, and a token source of your own
        "Secret",
        "TokenSource",
        "IssuedToken",
        # transports (open_feed(transport_factory=...))
        "connect_batched",
        "connect_websocket",
        "Transport",
        "TransportClosed",
        "TransportFactory",
        # sinks
        "open_jsonl_sink",
        "open_nats_sink",
        "open_parquet_sink",
        "open_sink",
        "JsonlSink",
        "NatsSink",
        "ParquetSink",
        # Prometheus metrics of a feed, for the user's own registry (docs/operations.md)
        "FeedCollector",
    },
    "tickactors.venues": {
        "AllTick",
        "Tradovate",
        "Replay",
        "TradovateTokenSource",
        "TradovateCredentials",
        "Venue",
    },
}

#: Public subpackages that may hang off a public module without being in its ``__all__``.
SUBPACKAGES = {"tickactors.venues", "tickactors.sinks", "tickactors.sim"}

PUBLIC = sorted(EXPECTED)


def module(name: str) -> types.ModuleType:
    return importlib.import_module(name)


def is_private_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tickactors" and any(part.startswith("_") for part in parts[1:])


def exported(name: str) -> list[tuple[str, object]]:
    mod = module(name)
    return [(export, getattr(mod, export)) for export in mod.__all__]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_exactly_the_expected_set(name: str) -> None:
    mod = module(name)
    assert len(mod.__all__) == len(set(mod.__all__)), "a name listed twice"
    assert set(mod.__all__) == EXPECTED[name]


@pytest.mark.parametrize("name", PUBLIC)
def test_nothing_underscored_is_exported(name: str) -> None:
    assert [export for export in module(name).__all__ if export.startswith("_")] == []


@pytest.mark.parametrize("name", PUBLIC)
def test_no_public_name_outside_all(name: str) -> None:
    """``dir()`` shows nothing public that ``__all__`` does not list (submodules aside)."""
    mod = module(name)
    extra = set()
    for attribute in dir(mod):
        if attribute.startswith("_") or attribute in mod.__all__:
            continue
        value = getattr(mod, attribute)
        if isinstance(value, types.ModuleType) and value.__name__ in SUBPACKAGES:
            continue
        extra.add(attribute)
    assert extra == set()


@pytest.mark.parametrize("name", PUBLIC)
def test_every_export_is_an_explicit_reexport_from_a_private_module(name: str) -> None:
    """``from ._x import Y as Y``: the form static type checkers treat as a re-export."""
    mod = module(name)
    assert mod.__file__ is not None
    tree = ast.parse(Path(mod.__file__).read_text())
    reexported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.asname == alias.name:
                    reexported[alias.name] = node
    for export in mod.__all__:
        assert export in reexported, f"{name}.{export} is not re-exported as `{export} as {export}`"
        node = reexported[export]
        assert node.level >= 1, f"{name}.{export}: a relative import of the package's own"
    defined_here = [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    assert defined_here == [], f"{name} defines {defined_here} itself: put them in a private module"


def defining_module(name: str, value: object) -> str:
    """The module a value comes from: its ``__module__``, or for a plain value (a constant,
    a type alias) the private module of the package whose namespace holds it."""
    if inspect.isclass(value) or inspect.isfunction(value):
        return value.__module__
    owners = [
        mod_name
        for mod_name, mod in list(sys.modules.items())
        if is_private_module(mod_name) and vars(mod).get(name) is value
    ]
    assert owners, f"{name}: no private module of the package holds it"
    # The one that assigns it, not one that merely imports it.
    for owner in owners:
        if name in assigned_names(owner):
            return owner
    raise AssertionError(f"{name}: held by {owners}, assigned in none of them")


def assigned_names(mod_name: str) -> dict[str, bool]:
    """Names a module assigns at top level -> whether a docstring (a string) follows."""
    mod = sys.modules[mod_name]
    assert mod.__file__ is not None
    body = ast.parse(Path(mod.__file__).read_text()).body
    out = {}
    for index, node in enumerate(body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        following = body[index + 1] if index + 1 < len(body) else None
        documented = (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
            and bool(following.value.value.strip())
        )
        for target in targets:
            if isinstance(target, ast.Name):
                out[target.id] = documented
    return out


@pytest.mark.parametrize("name", PUBLIC)
def test_every_export_lives_in_a_private_module(name: str) -> None:
    for export, value in exported(name):
        where = defining_module(export, value)
        assert is_private_module(where), f"{name}.{export} is defined in {where}"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_export_has_a_docstring(name: str) -> None:
    for export, value in exported(name):
        if inspect.isclass(value) or inspect.isfunction(value):
            doc = value.__doc__  # a class's own: not inherited
            assert doc and doc.strip(), f"{name}.{export} has no docstring"
        else:  # a constant or a type alias: a string right after its assignment
            where = defining_module(export, value)
            assert assigned_names(where)[export], f"{name}.{export}: no docstring in {where}"


def test_what_a_user_never_gets_is_not_public() -> None:
    for internal in ("BatchQueue", "StaticToken", "MarketQueue", "HealthBus"):
        assert not hasattr(tickactors, internal), internal
    for internal in (
        "AllTickDialect",
        "TradovateDialect",
        "Dialect",
        "Answer",
        "AnswerKind",
        "MarketBatch",
        "Notice",
        "NoticeKind",
    ):
        assert not hasattr(tickactors.venues, internal), internal


async def test_the_feeds_internals_are_private(autojump_clock: object) -> None:
    venue = tickactors.venues.AllTick(url="ws://127.0.0.1:1/quote-b-ws-api", token="t")
    async with tickactors.open_feed(venue, transport_factory=FakeNetwork()) as feed:
        # subscribe/unsubscribe: the intent's bound methods, shadowing the documented
        # methods of the class for speed (churn's hot path); nothing else is public state
        assert sorted(n for n in vars(feed) if not n.startswith("_")) == [
            "subscribe",
            "unsubscribe",
        ]
        assert feed.subscribe.__self__ is feed._intent  # type: ignore[attr-defined]
    public = {name for name in dir(tickactors.Feed) if not name.startswith("_")}
    assert public == {
        "account",
        "account_batches",
        "batches",
        "confirmed",
        "desired",
        "events",
        "get_batch",
        "is_converged",
        "kinds",
        "rejected",
        "request",
        "statistics",
        "subscribe",
        "sync",
        "ticks",
        "unsubscribe",
        "venue",
        "wait_confirmed",
        "wait_converged",
    }
    assert isinstance(tickactors.Feed.kinds, property) and tickactors.Feed.kinds.fset is None
    assert isinstance(tickactors.Feed.venue, property) and tickactors.Feed.venue.fset is None
