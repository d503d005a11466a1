"""The simulator's knobs: one frozen :class:`SimConfig` per simulator.

Everything that shapes what the simulated venue does lives here, so a test
states the venue it wants in one place. Live faults (stalls, drops, ...) are
not configuration: they are switched on and off through ``sim.faults``.

AllTick's plans (``docs/venues.md``, AllTick, "Limits": connections per token
1 / 1 / 3 / 10, symbols per connection 5 / 100 / 200 / 3000) are presets:
``SimConfig(plan="premium")`` gives ``max_symbols=200``,
``max_connections_per_token=3`` and the token-wide ``token_rate_interval=3.0``; a
value given explicitly wins over the plan's (``SimConfig(plan="premium",
max_symbols=10)``). Without a plan those three are 100, unlimited and off, as
before plans existed. ``attrs.evolve`` copies the three values as they are, so
evolving ``plan`` alone does not change them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

OverCap = Literal["reject", "ignore"]
WireVariants = Literal["mixed", "documented"]
FxDepth = Literal["top", "full"]
Wire = Literal["strict", "varied"]
ErrorText = Literal["plain", "double", "mixed"]
RateScope = Literal["api", "connection"]
HistogramUpdates = Literal["full", "changes"]
Plan = Literal["free", "basic", "premium", "professional"]


@attrs.frozen(slots=True)
class PlanLimits:
    """One AllTick plan's per-token limits (``docs/venues.md``, AllTick, "Limits")."""

    max_symbols: int
    max_connections_per_token: int


PLANS: Final[Mapping[str, PlanLimits]] = {
    "free": PlanLimits(5, 1),
    "basic": PlanLimits(100, 1),
    "premium": PlanLimits(200, 3),
    "professional": PlanLimits(3000, 10),
}
#: "across several connections of one token, keep 3 s between requests"
TOKEN_RATE_INTERVAL: Final = 3.0
DEFAULT_MAX_SYMBOLS: Final = 100


def _plan_symbols(config: SimConfig) -> int:
    limits = PLANS.get(config.plan or "")
    return limits.max_symbols if limits is not None else DEFAULT_MAX_SYMBOLS


def _plan_connections(config: SimConfig) -> int | None:
    limits = PLANS.get(config.plan or "")
    return limits.max_connections_per_token if limits is not None else None


def _plan_token_rate(config: SimConfig) -> float | None:
    return TOKEN_RATE_INTERVAL if config.plan is not None else None


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"SimConfig.{attribute.name} must be > 0, got {value!r}")


def _optional_positive(
    _inst: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"SimConfig.{attribute.name} must be > 0 or None, got {value!r}")


def _tokens(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(str(v) for v in value)  # type: ignore[attr-defined]


@attrs.frozen(slots=True)
class SimConfig:
    """How the simulated venue behaves.

    Attributes:
        plan: an AllTick plan (``"free"``, ``"basic"``, ``"premium"``, ``"professional"``)
            whose limits become the defaults of ``max_symbols``,
            ``max_connections_per_token`` and ``token_rate_interval`` (see the module
            docstring); keyword only. ``None`` (default): no plan.
        tokens: accepted tokens; ``None`` accepts any non-empty token.
        max_symbols: symbols per subscription list (trades and depth count separately);
            default 100, or the plan's.
        max_connections_per_token: live AllTick connections one token may hold; one
            more completes the handshake, gets ``{"ret":429,"msg":"too many
            connections","cmd_id":0,...}`` and close frame 1008 "too many connections"
            (see ``_alltick_tokens``). ``None`` = unlimited (default, or the plan's).
        token_rate_interval: minimum seconds between two subscription requests
            (22002/22004/22006; heartbeats do not count) of one token, on whichever
            of its connections, while it has two or more live; a violation is
            answered like the per-connection rule (605, then 606 and close), whatever
            ``enforce_rate`` says. ``None`` = off (default; 3.0 with a plan).
        record_connections: also record, per connection id, the codes it subscribed
            and the trades written to it (``stats.codes_by_connection``,
            ``stats.trades_by_connection``); off by default because it grows with
            every connection.
        record_trade_times: also record when each trade was generated, on trio's clock
            (``stats.trade_times[symbol][n]``: AllTick by ``seq``, Tradovate by tick id),
            so that a test can time a trade's way to the feed; off by default because it
            grows with every trade.
        over_cap: over ``max_symbols``: ``"ignore"`` (default, as AllTick documents it)
            accepts the request and streams only the first ``max_symbols`` codes;
            ``"reject"`` answers 603 and changes nothing.
        default_depth: order-book levels a side for a 22002 entry without
            ``depth_level``; default 1, as AllTick documents it (5 was the sim's old pick).
            A ``depth_level`` of any int >= 1 is accepted and capped at the 50 levels the
            simulated market has.
        fx_depth: order books of forex, metals and commodity codes (six uppercase letters:
            ``EURUSD``, ``USDJPY``, ``XAUUSD``, ``XAGUSD``; and AllTick's commodity codes,
            ``GOLD``, ``Silver``, ``USOIL``, ...: ``_market.COMMODITIES``): ``"top"``
            (default, as AllTick documents it) sends at most one level a side and its
            levels carry no ``volume`` key; ``"full"`` treats them like any code
            (``depth_level`` levels with volumes).
        invalid_codes: codes answered with 600 "code invalid" even if well formed.
        unauthorized_codes: codes answered with 604 "code unauthorized".
        enforce_rate: the one-request-per-second rule (605, then 606 and close).
        heartbeats_count_toward_rate: whether a 22000 counts toward (and is refused by)
            the per-connection rule. Default ``False``: AllTick documents the limit per
            data API, and its official examples heartbeat and subscribe within a second;
            ``True`` is the strict reading (heartbeats counted, as the dialect assumes).
            The token-wide rule never counts heartbeats.
        rate_interval: minimum seconds between two requests on one connection.
        rate_scope: what the per-connection rule spaces: ``"api"`` (default, the
            lenient reading of AllTick's "Latest Trade Price API: 1 request per second;
            Order Book API: 1 request per second", which its official Go example
            relies on when it sends 22002 and 22004 back to back): two requests of one
            ``cmd_id`` (one API) must be ``rate_interval`` apart, requests of different
            ``cmd_id`` need not; ``"connection"``: any two counted requests on the
            connection (the strict reading of "the interval between requests must be
            at least 1 second").
        kick_after_violations: the rate violation that reaches this count is answered
            with 606 and the connection is closed.
        heartbeat_timeout: seconds without an accepted 22000 before the connection is
            dropped without a close frame; ``None`` disables the rule.
        max_connection_age: connections older than this are closed (close frame 1000
            "max age"); ``None`` = no limit. Changed live by ``sim.faults.set_max_age``.
        tick_interval: mean seconds between two trades of one symbol (jittered x0.5..1.5).
        book_interval: mean seconds between two depth snapshots of one symbol.
        firehose: stream trade frames as fast as each client reads them (benchmarks).
        wire: AllTick pushes' ``seq`` and ``tick_time``: ``"strict"`` (default) always
            the documented example's shape (integer ``seq``, integer ``tick_time`` in
            seconds); ``"varied"``: every frame picks, from a seeded stream of its own,
            int or string ``seq``/``tick_time`` and seconds or milliseconds.
        random_faults: mean seconds between random faults; 0 = off.
        send_queue: frames buffered per connection; a client that lets this overflow
            is dropped as a slow consumer (in firehose mode the streamer waits instead).
        epoch: wall-clock seconds that ``trio.current_time() == 0`` maps to in
            ``tick_time``; ``None`` = the wall clock when the simulator opens.
        max_message_size: largest inbound message; beyond it the server closes with 1009.

    Tradovate only (``open_simulator("tradovate")``):

        wire_variants: ``"documented"`` (default) sends every quote with the nine
            entries of the documented data message, complete; ``"mixed"`` makes
            entries, and price/size inside them, sometimes missing, as users report.
        tradovate_history_delay: seconds between an answer and the data that follows
            it: a chart's history (the chart goes live then) and a histogram's first
            snapshot. Default 0.25: the venue loads history from storage, and
            Tradovate's JavaScript tutorial loses what arrives before its listener,
            which it installs after the answer and a REST round trip. 0 sends it
            right after the answer.
        tradovate_histogram: what a histogram event after a trade holds (see
            ``_tradovate_histograms``): ``"full"`` (default) the whole day's histogram
            with ``refresh: true`` every time; ``"changes"`` the changed price level
            alone with ``refresh: false`` (the first one after a subscription, and the
            first of a trade date, whole).

        token_lifetime: seconds an access token lives on trio's clock (80-90 min per
            the sources; default 85 min).
        mute_on_token_expiry: when the token a socket authorized with expires (trio
            time; a renewal issues a new token, so the old socket still reaches it),
            that socket goes mute: open, sending nothing more (no data, no ``h``, no
            answers), its requests read and swallowed. Default: a token that expires
            leaves open sockets alone (only presenting it again is refused).
        tradovate_user, tradovate_password: the credentials ``auth/accesstokenrequest``
            accepts; ``None`` accepts any (for that field).
        tradovate_heartbeat_timeout: seconds without a client ``[]`` or request before
            the connection is dropped without a close frame (30-60 s per the sources;
            default 45); ``None`` disables the rule.
        tradovate_heartbeat_interval: the server sends ``h`` after this many seconds
            in which it sent nothing else (default 2.5).
        max_connections_per_user: authorized sockets per user; one more closes the
            oldest and revokes its token.
        error_text: ``d`` of an error answer: ``"plain"`` text, ``"double"``-encoded
            (a JSON string holding a JSON string), or ``"mixed"`` (seeded pick per answer).
        replay_drop_after: replay sockets are dropped (no close frame) this many
            seconds after their handshake; ``None`` = never.
    """

    # ``plan`` comes first so that the factories below can read it; it is keyword only.
    plan: Plan | None = attrs.field(default=None, kw_only=True)
    tokens: frozenset[str] | None = attrs.field(default=None, converter=_tokens)
    max_symbols: int = attrs.field(default=attrs.Factory(_plan_symbols, takes_self=True))
    over_cap: OverCap = "ignore"
    default_depth: int = 1
    fx_depth: FxDepth = "top"
    invalid_codes: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    unauthorized_codes: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    enforce_rate: bool = True
    heartbeats_count_toward_rate: bool = False
    rate_interval: float = attrs.field(default=1.0, validator=_positive)
    rate_scope: RateScope = "api"
    kick_after_violations: int = 3
    heartbeat_timeout: float | None = attrs.field(
        default=30.0,
        validator=_optional_positive,  # type: ignore[arg-type]
    )
    max_connection_age: float | None = attrs.field(default=None, validator=_optional_positive)
    tick_interval: float = attrs.field(default=0.1, validator=_positive)
    book_interval: float = attrs.field(default=0.5, validator=_positive)
    firehose: bool = False
    wire_variants: WireVariants = "documented"
    tradovate_histogram: HistogramUpdates = "full"
    tradovate_history_delay: float = 0.25
    wire: Wire = "strict"
    random_faults: float = 0.0
    send_queue: int = 4096
    epoch: float | None = None
    max_message_size: int = 1 << 20
    token_lifetime: float = attrs.field(default=85 * 60.0, validator=_positive)
    mute_on_token_expiry: bool = False
    tradovate_user: str | None = None
    tradovate_password: str | None = None
    tradovate_heartbeat_timeout: float | None = attrs.field(
        default=45.0,
        validator=_optional_positive,  # type: ignore[arg-type]
    )
    tradovate_heartbeat_interval: float = attrs.field(default=2.5, validator=_positive)
    max_connections_per_user: int = 50
    error_text: ErrorText = "mixed"
    replay_drop_after: float | None = attrs.field(default=None, validator=_optional_positive)
    max_connections_per_token: int | None = attrs.field(
        default=attrs.Factory(_plan_connections, takes_self=True)
    )
    token_rate_interval: float | None = attrs.field(
        default=attrs.Factory(_plan_token_rate, takes_self=True),
        validator=_optional_positive,
    )
    record_connections: bool = False
    record_trade_times: bool = False

    def __attrs_post_init__(self) -> None:
        if self.plan is not None and self.plan not in PLANS:
            raise ValueError(
                f"SimConfig.plan must be one of {', '.join(PLANS)} or None, not {self.plan!r}"
            )
        if self.max_symbols < 1:
            raise ValueError("SimConfig.max_symbols must be >= 1")
        if self.max_connections_per_token is not None and self.max_connections_per_token < 1:
            raise ValueError("SimConfig.max_connections_per_token must be >= 1 or None")
        if self.over_cap not in ("reject", "ignore"):
            raise ValueError(
                f"SimConfig.over_cap must be 'reject' or 'ignore', not {self.over_cap!r}"
            )
        if self.default_depth < 1:
            raise ValueError("SimConfig.default_depth must be >= 1")
        if self.fx_depth not in ("top", "full"):
            raise ValueError(f"SimConfig.fx_depth must be 'top' or 'full', not {self.fx_depth!r}")
        if self.wire not in ("strict", "varied"):
            raise ValueError(f"SimConfig.wire must be 'strict' or 'varied', not {self.wire!r}")
        if self.wire_variants not in ("mixed", "documented"):
            raise ValueError(
                "SimConfig.wire_variants must be 'mixed' or 'documented', "
                f"not {self.wire_variants!r}"
            )
        if self.rate_scope not in ("api", "connection"):
            raise ValueError(
                f"SimConfig.rate_scope must be 'api' or 'connection', not {self.rate_scope!r}"
            )
        if not self.tradovate_history_delay >= 0:
            raise ValueError("SimConfig.tradovate_history_delay must be >= 0")
        if self.tradovate_histogram not in ("full", "changes"):
            raise ValueError(
                "SimConfig.tradovate_histogram must be 'full' or 'changes', "
                f"not {self.tradovate_histogram!r}"
            )
        if self.kick_after_violations < 1:
            raise ValueError("SimConfig.kick_after_violations must be >= 1")
        if self.random_faults < 0:
            raise ValueError("SimConfig.random_faults must be >= 0")
        if self.max_connections_per_user < 1:
            raise ValueError("SimConfig.max_connections_per_user must be >= 1")
        if self.error_text not in ("plain", "double", "mixed"):
            raise ValueError(
                "SimConfig.error_text must be 'plain', 'double' or 'mixed', "
                f"not {self.error_text!r}"
            )
        if self.send_queue < 1:
            raise ValueError("SimConfig.send_queue must be >= 1")
