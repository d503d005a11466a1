"""``run --config FILE.toml`` and ``check-config FILE``: every feed of a box in one file.

A capture box runs several feeds (AllTick stocks, AllTick crypto, Tradovate), each with
its venue, URL, token source, symbols, policies, limits, rotation and sinks. This module
reads such a file (Python's :mod:`tomllib`) and structures it with **cattrs** into the
frozen attrs classes below: :class:`RunConfig` holds :class:`AllTickFeed` and
:class:`TradovateFeed` values, told apart by their ``venue`` key.

Theory of operation
-------------------
Structuring is validation. cattrs builds each class field by field and, with detailed
validation, collects *every* failure with where it happened instead of stopping at the
first; :func:`load_config` turns that tree (``cattrs.transform_error``) into one line per
problem, each naming the exact path (``feeds[1].symbols[3]``), the value and what is
expected. There is no validator beside cattrs: each value type of the file has a
structure hook here (:func:`_converter`) that either returns the value or raises
:class:`ConfigValueError` saying what it expected; the classes' own
``__attrs_post_init__`` checks what takes several fields (a token source: exactly one).
Unknown keys are errors (``forbid_extra_keys``): a mistyped key must not be ignored.

The hooks are strict where TOML is loose and Python is looser: ``5`` is not a string,
``true`` is not a number, ``"5"`` is not a number, a float is not a count. Symbols are
checked by the venue's own dialect (``validate_symbol``), sinks by the runner's own
``--sink`` parser, URLs by its ``--url`` types: a file cannot accept what the command
line refuses, nor refuse what it accepts.

Secrets never sit in the file: a feed names an environment variable (``token_env``) or a
file (``token_file``) holding its token, or, for Tradovate, a REST root (``rest_url``)
with credentials from ``TRADOVATE_*`` variables (another prefix: ``credentials_env``).
:func:`environment_problems` checks that each is there, naming variables, never values.

Each feed then becomes the runner's own options (:func:`feed_argv`: the command line a
single-feed ``run`` would be given, parsed by ``run``'s parser), so a feed from a file
runs exactly as the same feed from flags does.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, NewType, TypeAlias

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from .._arg_types import http_url, listen_address, ws_url
from .._core.lanes import Policy
from .._errors import InvalidSymbolError
from .._values import StreamKind
from ..sinks import SinkSpecError, parse_sink
from ..venues._alltick import MARKETS_URL, AllTickDialect
from ..venues._tradovate import TradovateDialect
from ..venues._tradovate_auth import TradovateCredentials

# -- the value types a file holds -----------------------------------------------------------

FeedName = NewType("FeedName", str)
WsUrl = NewType("WsUrl", str)
HttpUrl = NewType("HttpUrl", str)
EnvName = NewType("EnvName", str)
AllTickSymbol = NewType("AllTickSymbol", str)
TradovateSymbol = NewType("TradovateSymbol", str)
SinkSpec = NewType("SinkSpec", str)
Seconds = NewType("Seconds", float)
SecondsOrZero = NewType("SecondsOrZero", float)
Count = NewType("Count", int)
CountOrZero = NewType("CountOrZero", int)
MetricsAddress = NewType("MetricsAddress", str)
Plan = NewType("Plan", str)
OutputFormat = NewType("OutputFormat", str)
LogLevel = NewType("LogLevel", str)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
PLANS: Final = ("free", "basic", "premium", "professional")
FORMATS: Final = ("jsonl", "text", "live")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")


class ConfigValueError(ValueError):
    """One value of the file is not what its key expects; the message says both."""


class ConfigError(Exception):
    """The file cannot run: ``problems`` holds one line for each thing wrong."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _shown(value: object) -> str:
    """A value of the file as a problem line quotes it: its TOML-ish repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the file's classes ---------------------------------------------------------------------


def _one_token_source(feed: _FeedBase, *, rest: bool) -> None:
    sources = [feed.token_env is not None, feed.token_file is not None]
    if rest:
        sources.append(getattr(feed, "rest_url", None) is not None)
    if sum(sources) != 1:
        names = "token_env, token_file or rest_url" if rest else "token_env or token_file"
        given = sum(sources)
        raise ConfigValueError(
            f"a feed takes its token from exactly one of {names}; "
            f"{'none is' if not given else f'{given} are'} given"
        )


@attrs.frozen(kw_only=True)
class _FeedBase:
    """What every feed has, whatever its venue."""

    #: names the feed in every line it writes (``"feed": name``) and in stdin commands
    name: FeedName
    url: WsUrl
    #: the name of the environment variable that holds the token
    token_env: EnvName | None = None
    #: a file whose content (stripped) is the token
    token_file: Path | None = None
    #: ``{trades = "block", book = "conflate", quotes = "drop-oldest"}``
    policies: Mapping[StreamKind, Policy] = attrs.field(factory=dict)
    buffer: Count | None = None
    stale_after: Seconds | None = None
    symbol_stale_after: Seconds | None = None
    max_symbols_per_connection: Count | None = None
    max_connections: Count | None = None
    max_connection_age: Seconds | None = None
    #: end the feed after this many permanent connect failures in a row (0: never)
    give_up_after: CountOrZero | None = None
    #: a ``lagging`` event when data arrives this much later than the connection's recent
    #: best (0: off)
    lag_after: SecondsOrZero | None = None
    #: ``--sink`` values: ``jsonl:PATH?...``, ``nats://HOST:PORT?...``, ...
    sinks: tuple[SinkSpec, ...] = ()
    seed: int | None = None


@attrs.frozen(kw_only=True)
class AllTickFeed(_FeedBase):
    """An AllTick feed: trades (``symbols``) and books (``book_symbols``)."""

    venue: Literal["alltick"]
    symbols: tuple[AllTickSymbol, ...] = ()
    book_symbols: tuple[AllTickSymbol, ...] = ()
    plan: Plan | None = None

    def __attrs_post_init__(self) -> None:
        _one_token_source(self, rest=False)


@attrs.frozen(kw_only=True)
class TradovateFeed(_FeedBase):
    """A Tradovate feed: quotes (``symbols``), DOMs (``book_symbols``), trades."""

    venue: Literal["tradovate"]
    symbols: tuple[TradovateSymbol, ...] = ()
    book_symbols: tuple[TradovateSymbol, ...] = ()
    #: trades from Tick charts (``--trade-symbols``)
    trade_symbols: tuple[TradovateSymbol, ...] = ()
    #: the REST root tokens are requested and renewed at (credentials from the environment)
    rest_url: HttpUrl | None = None
    #: the prefix of the credential variables (``TRADOVATE_`` -> ``TRADOVATE_USERNAME``, ...)
    credentials_env: EnvName = EnvName("TRADOVATE_")
    replay_start: str | None = None
    replay_speed: int | None = None
    #: a trading socket: keep the user's account in sync (``--sync``), for ``user_id``
    #: (``--user-id``; default: the user the venue's ``auth/me`` names)
    sync: bool = False
    user_id: Count | None = None

    def __attrs_post_init__(self) -> None:
        _one_token_source(self, rest=True)
        if self.replay_speed is not None and not 0 <= self.replay_speed <= 400:
            raise ConfigValueError(f"replay_speed {self.replay_speed}: expected 0 to 400")
        if self.replay_speed is not None and self.replay_start is None:
            raise ConfigValueError("replay_speed needs replay_start")
        if self.user_id is not None and not self.sync:
            raise ConfigValueError("user_id needs sync = true")


FeedConfig: TypeAlias = AllTickFeed | TradovateFeed


@attrs.frozen(kw_only=True)
class RunConfig:
    """A whole file: its feeds, and what the process does for all of them."""

    feeds: tuple[FeedConfig, ...]
    #: ``"HOST:PORT"`` or a port (loopback): Prometheus' ``/metrics`` for every feed
    metrics: MetricsAddress | None = None
    format: OutputFormat | None = None
    duration: Seconds | None = None
    log_level: LogLevel | None = None

    def __attrs_post_init__(self) -> None:
        if not self.feeds:
            raise ConfigValueError("no feed: a file declares at least one [[feeds]] table")
        seen: set[str] = set()
        for feed in self.feeds:
            if feed.name in seen:
                raise ConfigValueError(f"two feeds are named {feed.name!r}: names must differ")
            seen.add(feed.name)
        if self.format == "live" and len(self.feeds) > 1:
            raise ConfigValueError("format 'live' shows one feed: use jsonl or text")


# -- structure hooks: one per value type ----------------------------------------------------


def _text(value: object, what: str = "a string") -> str:
    if type(value) is not str:
        raise ConfigValueError(f"{_shown(value)}: expected {what}")
    return value


def _number(value: object) -> float:
    if type(value) not in (int, float):  # bool is not a number here
        raise ConfigValueError(f"{_shown(value)}: expected a number")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ConfigValueError(f"{_shown(value)}: expected a finite number")
    return number


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    hook = converter.register_structure_hook
    alltick, tradovate = AllTickDialect(MARKETS_URL), TradovateDialect()

    def strict(kind: type, what: str) -> Callable[[object, Any], Any]:
        def check(value: object, _: Any) -> Any:
            if type(value) is not kind:
                raise ConfigValueError(f"{_shown(value)}: expected {what}")
            return value

        return check

    hook(str, strict(str, "a string"))
    hook(int, strict(int, "a whole number"))
    hook(bool, strict(bool, "true or false"))
    hook(float, lambda value, _: _number(value))

    def name(value: object, _: Any) -> str:
        text = _text(value)
        if _NAME.fullmatch(text) is None:
            raise ConfigValueError(
                f"{_shown(value)}: expected a feed name: letters, digits, '_', '.', '-', at most 32"
            )
        return text

    def env_name(value: object, _: Any) -> str:
        text = _text(value)
        if _ENV.fullmatch(text) is None:
            raise ConfigValueError(f"{_shown(value)}: expected an environment variable's name")
        return text

    def url_of(check: Callable[[str], str]) -> Callable[[object, Any], str]:
        def url(value: object, _: Any) -> str:
            text = _text(value, "a URL")
            try:
                return check(text)
            except argparse.ArgumentTypeError as exc:  # names the URL, its query masked
                raise ConfigValueError(str(exc)) from None

        return url

    def symbol_of(dialect: AllTickDialect | TradovateDialect) -> Callable[[object, Any], str]:
        def symbol(value: object, _: Any) -> str:
            if type(value) is bool:
                raise ConfigValueError(f"{_shown(value)}: expected a symbol")
            try:
                return dialect.validate_symbol(value)
            except InvalidSymbolError as exc:
                raise ConfigValueError(str(exc)) from None

        return symbol

    def sink(value: object, _: Any) -> str:
        text = _text(value, "a sink: jsonl:PATH?..., nats://HOST:PORT?...")
        try:
            parse_sink(text)
        except SinkSpecError as exc:  # its message masks a password
            raise ConfigValueError(str(exc)) from None
        return text

    def seconds(value: object, _: Any) -> float:
        number = _number(value)
        if not number > 0:
            raise ConfigValueError(f"{_shown(value)}: expected seconds > 0")
        return number

    def seconds_or_zero(value: object, _: Any) -> float:
        number = _number(value)
        if number < 0:
            raise ConfigValueError(f"{_shown(value)}: expected seconds >= 0")
        return number

    def count(value: object, _: Any) -> int:
        if type(value) is not int or value < 1:
            raise ConfigValueError(f"{_shown(value)}: expected a whole number >= 1")
        return value

    def count_or_zero(value: object, _: Any) -> int:
        if type(value) is not int or value < 0:
            raise ConfigValueError(f"{_shown(value)}: expected a whole number >= 0")
        return value

    def metrics(value: object, _: Any) -> str:
        if type(value) is int:
            value = f"127.0.0.1:{value}"
        text = _text(value, "[HOST:]PORT")
        try:
            listen_address(text)  # as --metrics reads it
        except argparse.ArgumentTypeError as exc:
            raise ConfigValueError(str(exc)) from None
        return text

    def kind(value: object, _: Any) -> StreamKind:
        try:
            return StreamKind(_text(value))
        except ValueError:
            kinds = ", ".join(k.value for k in StreamKind)
            raise ConfigValueError(f"{_shown(value)}: expected a stream kind: {kinds}") from None

    def policy(value: object, _: Any) -> Policy:
        try:
            return Policy(_text(value))
        except ValueError:
            policies = ", ".join(p.value for p in Policy)
            raise ConfigValueError(f"{_shown(value)}: expected a policy: {policies}") from None

    def path(value: object, _: Any) -> Path:
        return Path(_text(value, "a file's path"))

    hook(FeedName, name)
    hook(EnvName, env_name)
    hook(WsUrl, url_of(ws_url))
    hook(HttpUrl, url_of(http_url))
    hook(AllTickSymbol, symbol_of(alltick))
    hook(TradovateSymbol, symbol_of(tradovate))
    hook(SinkSpec, sink)
    hook(Seconds, seconds)
    hook(SecondsOrZero, seconds_or_zero)
    hook(Count, count)
    hook(CountOrZero, count_or_zero)
    hook(MetricsAddress, metrics)
    hook(StreamKind, kind)
    hook(Policy, policy)
    hook(Path, path)

    def literal(choices: Sequence[str]) -> Callable[[object, Any], str]:
        def choose(value: object, _: Any) -> str:
            if value not in choices or type(value) is not str:
                raise ConfigValueError(f"{_shown(value)}: expected one of {', '.join(choices)}")
            return value

        return choose

    hook(Plan, literal(PLANS))
    hook(OutputFormat, literal(FORMATS))
    hook(LogLevel, literal(LOG_LEVELS))

    # A list in the file is a list: cattrs would take the string "BTCUSDT" as the tuple of
    # its letters. Each tuple type of the classes keeps its own hook behind this check
    # (registered before the classes' own hooks are made, which look them up once).
    for item in (AllTickSymbol, TradovateSymbol, SinkSpec):
        lists_only(converter, tuple[item, ...])  # type: ignore[valid-type]

    venues: dict[str, type[AllTickFeed] | type[TradovateFeed]] = {
        "alltick": AllTickFeed,
        "tradovate": TradovateFeed,
    }
    feed_hooks: dict[type, Callable[[Mapping[str, Any], Any], Any]] = {
        cls: converter.gen_structure_attrs_fromdict(cls) for cls in venues.values()
    }

    def feed(value: object, _: Any) -> FeedConfig:
        if not isinstance(value, dict):
            raise ConfigValueError(f"{_shown(value)}: expected a [[feeds]] table")
        venue = value.get("venue")
        cls = venues.get(venue) if isinstance(venue, str) else None
        if cls is None:
            raise ConfigValueError(
                f"venue {_shown(venue)}: expected one of {', '.join(venues)}"
                if "venue" in value
                else 'no venue: expected venue = "alltick" or "tradovate"'
            )
        return feed_hooks[cls](value, cls)  # type: ignore[no-any-return]

    hook(FeedConfig, feed)
    lists_only(converter, tuple[FeedConfig, ...])
    return converter


def lists_only(converter: cattrs.Converter, kind: Any) -> None:
    """Structure ``kind`` (a tuple type) from a TOML array only."""
    inner = converter.get_structure_hook(kind)

    def structure_list(value: object, _: Any) -> Any:
        if type(value) is not list:
            raise ConfigValueError(f"{_shown(value)}: expected a list [...]")
        return inner(value, kind)

    converter.register_structure_hook_func(lambda t: t == kind, structure_list)


_CONVERTER: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    """The converter with every hook of this module (built once)."""
    global _CONVERTER
    if _CONVERTER is None:
        _CONVERTER = _converter()
    return _CONVERTER


# -- reading a file -------------------------------------------------------------------------


def _problem(exc: BaseException, _: object) -> str:
    """cattrs' ``format_exception``: what went wrong, without its own "@ path"."""
    if isinstance(exc, ForbiddenExtraKeysError):
        keys = ", ".join(sorted(exc.extra_fields))
        return f"unknown key{'s' if len(exc.extra_fields) > 1 else ''} {keys}"
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, ConfigValueError):
        return str(exc)
    if isinstance(exc, (ValueError, TypeError)):
        return f"{type(exc).__name__}: {exc}"
    return str(exc) or type(exc).__name__


def _line(message: str) -> str:
    """``"what @ $.feeds[1].x"`` as ``"feeds[1].x: what"``."""
    what, at, where = message.rpartition(" @ ")
    if not at:
        return message
    where = where.removeprefix("$").removeprefix(".")
    return f"{where}: {what}" if where else what


def structure(data: Mapping[str, Any]) -> RunConfig:
    """``data`` (a parsed TOML document) as a :class:`RunConfig`; :class:`ConfigError` with
    one line per problem otherwise."""
    try:
        return converter().structure(data, RunConfig)
    except ClassValidationError as exc:
        lines = cattrs.transform_error(exc, path="$", format_exception=_problem)
        raise ConfigError([_line(line) for line in lines]) from None
    except ConfigValueError as exc:
        raise ConfigError([str(exc)]) from None


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and structure the TOML file at ``path``; :class:`ConfigError` says what is wrong
    (the file unreadable, not TOML, or each value that is not what its key expects)."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not TOML: {exc}"]) from None
    return structure(data)


# -- what a feed needs from the environment --------------------------------------------------


def _credentials_environ(prefix: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The ``TRADOVATE_*`` variables as ``TradovateCredentials.from_env`` reads them, taken
    from ``PREFIX*`` (``TRADOVATE_`` itself: the same names)."""
    return {
        "TRADOVATE_" + key.removeprefix(prefix): value
        for key, value in environ.items()
        if key.startswith(prefix)
    }


def environment_problems(config: RunConfig, environ: Mapping[str, str] = os.environ) -> list[str]:
    """What each feed's token source lacks now: a variable unset or empty, a file that
    cannot be read or is empty, Tradovate credentials missing. Names, never values."""
    problems: list[str] = []
    for index, feed in enumerate(config.feeds):
        where = f"feeds[{index}]"
        if feed.token_env is not None and not environ.get(feed.token_env):
            problems.append(
                f"{where}.token_env: the environment variable {feed.token_env} is not set "
                "(or empty)"
            )
        if feed.token_file is not None:
            try:
                text = feed.token_file.read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                problems.append(f"{where}.token_file: cannot read {str(feed.token_file)!r}: {why}")
            else:
                if not text:
                    problems.append(f"{where}.token_file: {str(feed.token_file)!r} is empty")
        if isinstance(feed, TradovateFeed) and feed.rest_url is not None:
            try:
                TradovateCredentials.from_env(_credentials_environ(feed.credentials_env, environ))
            except ValueError as exc:  # names the missing variables (as TRADOVATE_*)
                text = str(exc).replace("TRADOVATE_", feed.credentials_env)
                problems.append(f"{where}.credentials_env: {text}")
    return problems


def token_of(feed: FeedConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """The feed's token now (None: Tradovate with ``rest_url``). Call after
    :func:`environment_problems` found nothing."""
    if feed.token_env is not None:
        return environ[feed.token_env]
    if feed.token_file is not None:
        return feed.token_file.read_text().strip()
    return None


def credentials_environ(
    feed: TradovateFeed, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """The environment ``TradovateCredentials.from_env`` reads for this feed."""
    return _credentials_environ(feed.credentials_env, environ)


# -- a feed as the runner's options ---------------------------------------------------------


def feed_argv(feed: FeedConfig, config: RunConfig) -> list[str]:
    """The ``run`` command line (without the token) that runs ``feed`` as the file says.

    The token is not on it: the caller hands it over apart (:func:`token_of`), so that no
    list of words that might be printed ever holds it.
    """
    argv = ["--venue", feed.venue, "--url", feed.url]
    if feed.symbols:
        argv += ["--symbols", ",".join(feed.symbols)]
    if feed.book_symbols:
        argv += ["--book-symbols", ",".join(feed.book_symbols)]
    if feed.policies:
        argv += ["--policy", ",".join(f"{k.value}={p.value}" for k, p in feed.policies.items())]
    for option, value in (
        ("--buffer", feed.buffer),
        ("--stale-after", feed.stale_after),
        ("--symbol-stale-after", feed.symbol_stale_after),
        ("--max-symbols-per-connection", feed.max_symbols_per_connection),
        ("--max-connections", feed.max_connections),
        ("--max-connection-age", feed.max_connection_age),
        ("--give-up-after", feed.give_up_after),
        ("--lag-after", feed.lag_after),
        ("--seed", feed.seed),
        ("--duration", config.duration),
        ("--format", config.format),
        ("--log-level", config.log_level),
    ):
        if value is not None:
            argv += [option, repr(value) if isinstance(value, float) else str(value)]
    for spec in feed.sinks:
        argv += ["--sink", spec]
    if isinstance(feed, AllTickFeed):
        if feed.plan is not None:
            argv += ["--plan", feed.plan]
    else:
        if feed.trade_symbols:
            argv += ["--trade-symbols", ",".join(feed.trade_symbols)]
        if feed.rest_url is not None:
            argv += ["--rest-url", feed.rest_url]
        if feed.replay_start is not None:
            argv += ["--replay-start", feed.replay_start]
        if feed.replay_speed is not None:
            argv += ["--replay-speed", str(feed.replay_speed)]
        if feed.sync:
            argv += ["--sync"]
        if feed.user_id is not None:
            argv += ["--user-id", str(feed.user_id)]
    return argv


__all__ = [
    "AllTickFeed",
    "ConfigError",
    "ConfigValueError",
    "FeedConfig",
    "RunConfig",
    "TradovateFeed",
    "credentials_environ",
    "environment_problems",
    "feed_argv",
    "load_config",
    "structure",
    "token_of",
]
