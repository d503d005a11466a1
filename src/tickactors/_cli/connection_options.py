"""``run``'s options for several connections: sharding limits, AllTick plans, rotation."""

from __future__ import annotations

import argparse
from typing import Any

from .._core.overlap import RotationPolicy
from .._slots import shard_plan
from ..venues import AllTick, Dialect


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
        type=_positive_int,
        default=None,
        metavar="N",
        help="symbols of one stream a connection may carry (default: the plan's)",
    )
    group.add_argument(
        "--max-connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="connections the token may hold at once, a rotation's spare included "
        "(default: the plan's, else 1 when --max-symbols-per-connection is given)",
    )
    group.add_argument(
        "--max-connection-age",
        type=float,
        default=None,
        metavar="S",
        help="replace every connection before it is S seconds old, make-before-break: the "
        "replacement subscribes and delivers data for every symbol before the old one "
        "closes, each tick delivered once; needs one spare connection under the token's cap",
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
    RotationPolicy(age)  # the feed's own checks, with its default timings
    shard_plan(
        dialect,
        max_symbols_per_connection=options["max_symbols_per_connection"],
        max_connections=options["max_connections"],
        rotating=age is not None,
    )
    return {key: value for key, value in options.items() if value is not None}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value
