"""Turning a :class:`~.plan.FaultSpec` into calls on ``sim.faults`` (and, for a ghost, the feed)."""

from __future__ import annotations

import trio

from .._feed.feed import Feed
from ..sim import Simulator
from .plan import FaultSpec
from .setups import RecordingSource


def apply_fault(
    spec: FaultSpec,
    sim: Simulator,
    feed: Feed,
    source: RecordingSource,
    nursery: trio.Nursery,
    window_end: float | None,
) -> None:
    """Inject ``spec`` now; a maximum age is lifted again at ``window_end`` (in ``nursery``).

    A ghost unsubscribes its symbol right after arming the rule, so the venue really
    keeps sending something the user no longer wants; a revocation takes the token the
    feed fetched last; accept-then-close and a hung upgrade come with a drop, so the
    reconnect meets them.
    """
    faults, params, kind = sim.faults, spec.params, spec.kind
    symbol = params.get("symbol")
    if kind == "stall":
        faults.stall(params["duration"])
    elif kind == "silence_symbol":
        if symbol is not None:
            faults.silence_symbol(symbol, params["duration"])
    elif kind == "ghost":
        faults.ghost(None, params["duration"], armed_for=params["armed_for"])
        if symbol is not None:
            feed.unsubscribe(symbol)  # the venue keeps sending it: ghost data
    elif kind == "max_age":
        faults.set_max_age(params["seconds"])
        if window_end is not None:
            nursery.start_soon(_max_age_off, sim, window_end)
    elif kind == "expire_token":
        token = source.current
        if token is not None:
            faults.expire_token(token.reveal())
    elif kind in ("accept_then_close", "hang_upgrade"):
        getattr(faults, kind)(params["n"])
        faults.drop()  # the reconnect meets the armed fault
    elif kind == "delay_acks":
        faults.delay_acks(params["seconds"], params["n"])
    elif kind == "p_ticket":
        faults.p_ticket(params["n"], p_time=params["p_time"])
    elif kind == "shutdown":
        faults.shutdown(params["reason_code"])
    elif kind == "close_frame_keep_open":
        faults.close_frame_keep_open(params["code"], params["reason"])
    elif kind in ("lose_acks", "drop_requests", "rate_limit_429", "malformed"):
        getattr(faults, kind)(params["n"])
    else:  # drop, kick
        getattr(faults, kind)()


async def _max_age_off(sim: Simulator, when: float) -> None:
    await trio.sleep_until(when)
    sim.faults.set_max_age(None)
