"""Counters a test asserts on: what the simulator saw, sent and did on purpose.

One mutable :class:`SimStats` per simulator, updated in place by the server
tasks (all in one trio thread, so plain ints and dicts suffice).
"""

from __future__ import annotations

from collections import Counter

import attrs

VIOLATION_KINDS = ("rate", "duplicate_code", "empty_list", "bad_request")
TRADOVATE_VIOLATION_KINDS = (
    "duplicate_id",
    "unauthorized",
    "penalty_ignored",
    "heartbeat_timeout",
    "bad_request",
)


@attrs.define(slots=True, eq=False)
class SimStats:
    """What happened so far.

    Attributes:
        tcp_accepted: TCP connections accepted (including hung and rejected upgrades).
        connections_opened: WebSocket handshakes completed (whatever happened next).
        connections_live: connections now open.
        requests_by_cmd: every inbound request by ``cmd_id`` (those whose ``cmd_id``
            could be read), including swallowed, dropped and rejected ones.
        heartbeats: 22000 requests accepted (they reset the heartbeat clock).
        violations: client violations by kind (``rate``, ``duplicate_code``,
            ``empty_list``, ``bad_request``).
        ticks_sent_by_symbol: trade and depth pushes written to sockets, by code.
        frames_sent: every WebSocket data frame written (answers, pushes, bad frames).
        faults_injected: fault calls by kind (one per call, random ones included);
            on Tradovate also ``token_mute``, once per socket muted by
            ``SimConfig.mute_on_token_expiry``.
        fault_log: ``(trio time, kind, detail)`` for every fault call (and mute).
        closes: connections ended by the server, by reason (``heartbeat_timeout``,
            ``rate_kick``, ``max_age``, ``token_rejected``, ``token_expired``,
            ``slow_consumer``, ``drop``, ``kick``, ``accept_then_close``, ...).

    Tradovate only (``heartbeats`` counts accepted client ``[]`` frames there, and
    ``violations`` uses :data:`TRADOVATE_VIOLATION_KINDS`):

        requests_by_endpoint: WebSocket requests by lowercased endpoint (``authorize``,
            ``md/subscribequote``, ...), ``?`` for unreadable ones.
        rest_calls: REST calls by ``"METHOD /path"`` (path lowercased, no query).
        tokens_issued: access-token pairs issued (``auth/accesstokenrequest``).
        tokens_renewed: renewals (``auth/renewaccesstoken``).
        server_heartbeats: ``h`` frames written.
    """

    tcp_accepted: int = 0
    connections_opened: int = 0
    connections_live: int = 0
    requests_by_cmd: Counter[int] = attrs.field(factory=Counter)
    heartbeats: int = 0
    violations: Counter[str] = attrs.field(factory=Counter)
    ticks_sent_by_symbol: Counter[str] = attrs.field(factory=Counter)
    frames_sent: int = 0
    faults_injected: Counter[str] = attrs.field(factory=Counter)
    fault_log: list[tuple[float, str, str]] = attrs.field(factory=list)
    closes: Counter[str] = attrs.field(factory=Counter)
    requests_by_endpoint: Counter[str] = attrs.field(factory=Counter)
    rest_calls: Counter[str] = attrs.field(factory=Counter)
    tokens_issued: int = 0
    tokens_renewed: int = 0
    server_heartbeats: int = 0
