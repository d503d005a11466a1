"""``run``'s options for its connections: sharding limits, AllTick plans, rotation, giving up."""

from __future__ import annotations

import argparse
from typing import Any

from .._arg_types import int_between, non_negative_float, positive_float, positive_int
from .._core.connect_failures import DEFAULT_GIVE_UP_AFTER
from .._core.overlap import RotationPolicy
from .._feed.slot_table import shard_plan
from ..venues import AllTick
from ..venues._dialect import Dialect


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connections",
        "a feed spreads its symbols over as many connections as these limits need; "
        "symbols beyond them are refused with a CapacityError (docs/architecture.md)",
    )
    group.add_argument(
        "--plan",
        choices=tuple(AllTick.PLANS),
        default=None,
        help="alltick: the token's plan, whose limits become the defaults: symbols per "
        "connection and connections per token free 5/1, basic 100/1, premium 200/3, "
        "professional 3000/10",
    )
    group.add_argument(
        "--max-symbols-per-connection",
        type=positive_int,
        default=None,
        metavar="N",
        help="symbols of one stream a connection may carry (default: the plan's)",
    )
    group.add_argument(
        "--max-connections",
        type=positive_int,
        default=None,
        metavar="N",
        help="connections the token may hold at once, a rotation's spare included "
        "(default: the plan's, else 1 when --max-symbols-per-connection is given)",
    )
    group.add_argument(
        "--max-connection-age",
        type=positive_float,
        default=None,
        metavar="S",
        help="replace every connection before it is S seconds old, make-before-break: the "
        "replacement subscribes and delivers data for every symbol before the old one "
        "closes, each tick delivered once; needs one spare connection under the token's cap",
    )
    parser.add_argument(
        "--give-up-after",
        type=int_between(0, 1_000_000),
        default=None,
        metavar="N",
        help="exit 1 after N connect attempts in a row failed for a cause that will not heal "
        "(HTTP 4xx on the upgrade but 408 and 429, a host name that does not exist), each "
        "already said on stderr at once; 0: never give up (default: "
        f"{DEFAULT_GIVE_UP_AFTER}, about 13 minutes of retries)",
    )
    parser.add_argument(
        "--lag-after",
        type=non_negative_float,
        default=None,
        metavar="S",
        help="a 'lagging' event when a connection's data arrives S seconds later than its "
        "own recent best (a thin pipe, a backlog), 'caught_up' when it is back; 0: off "
        "(default 5; docs/architecture.md, Lag)",
    )


def connection_options(args: argparse.Namespace, dialect: Dialect) -> dict[str, Any]:
    """``open_feed``'s keyword arguments for these options (none given: none).

    Raises ``ValueError`` saying what cannot work (rotation without a spare connection,
    an age shorter than a rotation may take) before any connection opens.
    """
    options = {
        "max_symbols_per_connection": getattr(args, "max_symbols_per_connection", None),
        "max_connections": getattr(args, "max_connections", None),
        "max_connection_age": getattr(args, "max_connection_age", None),
    }
    age = options["max_connection_age"]
    try:
        RotationPolicy(age)  # the feed's own checks, with its default timings
        shard_plan(
            dialect,
            max_symbols_per_connection=options["max_symbols_per_connection"],
            max_connections=options["max_connections"],
            rotating=age is not None,
        )
    except ValueError as exc:  # each names the feed's argument; say which option that is
        text = str(exc)
        for name in ("max_connection_age", "max_symbols_per_connection", "max_connections"):
            if text.startswith(name):
                option = "--" + name.replace("_", "-")
                raise ValueError(f"argument {option}: {text.removeprefix(name).lstrip()}") from None
        raise
    chosen = {key: value for key, value in options.items() if value is not None}
    give_up = getattr(args, "give_up_after", None)
    if give_up is not None:
        chosen["give_up_after"] = give_up or None  # 0: never
    lag_after = getattr(args, "lag_after", None)
    if lag_after is not None:
        chosen["lag_after"] = lag_after or None  # 0: off
    return chosen
