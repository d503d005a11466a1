"""The simulated exchange: a real WebSocket venue on loopback, with faults on demand.

::

    async with tickactors.sim.open_simulator("alltick", seed=1) as sim:
        url = sim.url + "?token=anything"
        ...
        sim.faults.stall(10)
        assert sim.stats.heartbeats == ...

Every choice the simulator makes where the venue's documentation is unsure
is written in the docstring of the module that makes it:
``_alltick_protocol`` (error ``cmd_id``, over-cap, wire variants, validation
order), ``_alltick_connection`` (rate rule, heartbeat drop, close codes),
``_alltick_server`` (token, accept-then-close), ``_alltick_tokens`` (connections
per token, the token-wide request spacing), ``_faults`` (stall semantics,
ghost rule), ``_alltick_stream`` (market fan-out, firehose), ``_stats`` (the
trade ledger: what a feed must deliver, once each) and ``_server`` (shutdown).
AllTick's plans are presets of ``SimConfig`` (``SimConfig(plan="professional")``,
see ``_config``). What both venues share lives in ``_connection`` (write queue,
slow-consumer drop, close sequence, watchdog loop) and ``_streamer`` (the
paced push schedule).

``open_simulator("tradovate", ...)`` speaks Tradovate instead: WebSocket at
``sim.url`` (``/v1/websocket``) and ``sim.replay_url``, REST at ``sim.rest_url``,
all on one port; ``sim.tradovate`` holds its contracts, accounts and penalty
tickets. Its picks are in ``_tradovate_protocol`` (request reading, error
text), ``_tradovate_requests`` (gates, answers), ``_tradovate_connection``
(heartbeats, timeouts, closes), ``_tradovate_accounts`` (tokens),
``_tradovate_rest``, ``_tradovate_penalty``, ``_tradovate_replay``,
``_tradovate_market``, ``_tradovate_contracts`` and ``_tradovate_server``.
"""

from __future__ import annotations

from ._alltick_connection import AllTickConnection as AllTickConnection
from ._config import PLANS as PLANS
from ._config import SimConfig as SimConfig
from ._faults import Faults as Faults
from ._server import Simulator as Simulator
from ._server import open_simulator as open_simulator
from ._stats import SeqRun as SeqRun
from ._stats import SimStats as SimStats
from ._tradovate_connection import TradovateConnection as TradovateConnection

__all__ = [
    "PLANS",
    "AllTickConnection",
    "Faults",
    "SeqRun",
    "SimConfig",
    "SimStats",
    "Simulator",
    "TradovateConnection",
    "open_simulator",
]
