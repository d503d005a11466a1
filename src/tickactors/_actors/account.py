"""The feed's standing user sync: whether it is wanted, for whom, and the account queue.

Theory of operation
-------------------
A feed on a trading socket (Tradovate, ``open_feed(sync=True)`` or ``feed.sync()``) keeps
the user's account in sync: every new connection asks for the whole account (the venue's
user sync, ``user/syncrequest``) after ``authorize`` and the dialect's setup calls, and
before it is announced ready, so the sync goes before anything else the feed or the
user sends on it. The venue answers with a snapshot and from then on sends the user's
entity events (``props``) on that connection.

One :class:`AccountSync` per feed holds what the connections share about it: whether it is
wanted (``requested``, a ``trio.Event`` that the sessions of connections already up wait
on, so ``feed.sync()`` reaches them as an event, not as a write into them), the user id
(given, or learned once from the venue's ``auth/me``), the account queue and the
:class:`~tickactors._core.account_route.AccountRoute`, which decides which connection's
updates reach the user. It is shared by reference inside the feed's Trio thread, as the
staleness monitor is: the feed calls :meth:`want`, the sessions call the rest.

The sessions' readers turn the sync answer (recognized by its request id) and every
``props`` event into :class:`~tickactors.SyncSnapshot` and :class:`~tickactors.EntityEvent`
values in the order their frames came, and hand each batch of them to the account queue
in one call: a :class:`~tickactors._actors.queues.BatchQueue` of ``account_buffer``
items, ``block`` (the reader waits for the user, as a ``block`` market lane makes it
wait) or ``drop-oldest`` (drops counted by entity type, ``"sync"`` for a snapshot, and
announced in ``gap`` events with an ``account`` detail: at once, then at most once a
second).

While no sync is wanted, ``props`` events (there should be none: the venue sends them only
to a synced connection; a user's own ``user/syncrequest`` through ``feed.request`` makes
some) are counted (``ignored``) and dropped, so that a feed nobody reads the account of
never waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from .._core.account_route import AccountRoute, Admission
from .._core.lanes import Policy
from .._core.loss_report import LossReporter
from .._values import AccountUpdate, EntityEvent, EventName, SyncSnapshot
from .health_bus import HealthBus
from .queues import GAP_REPORT_INTERVAL, BatchQueue

__all__ = ["AccountSync"]


def _drop_key(item: AccountUpdate) -> str:
    return "sync" if isinstance(item, SyncSnapshot) else item.entity_type


class AccountSync:
    """The feed's user sync and account queue; see the module docstring."""

    def __init__(
        self,
        health: HealthBus,
        *,
        wanted: bool,
        user_id: int | None,
        capacity: int,
        policy: Policy,
    ) -> None:
        if policy is Policy.CONFLATE:
            raise ValueError("account_policy is 'block' or 'drop-oldest'")
        _check_user_id(user_id)
        self._health = health
        self.queue: BatchQueue[AccountUpdate] = BatchQueue(capacity, policy, drop_key=_drop_key)
        self.route = AccountRoute()
        #: Set once the sync is wanted: sessions of connections already up sync then.
        self.requested = trio.Event()
        self.user_id = user_id
        if wanted:
            self.requested.set()
        self._gaps = LossReporter(interval=GAP_REPORT_INTERVAL)
        self._gaps_reported = 0
        self.syncs_sent = 0
        self.sync_failures = 0
        self.ignored = 0  # props events while no sync was wanted
        self.malformed = 0  # props events without an entity type, event type or entity

    @property
    def wanted(self) -> bool:
        return self.requested.is_set()

    def want(self, user_id: int | None) -> None:
        """Keep the account in sync from now on (idempotent). ``ValueError`` for a user id
        other than the one already given or learned."""
        _check_user_id(user_id)
        if user_id is not None and self.user_id is not None and user_id != self.user_id:
            raise ValueError(f"the feed syncs user {self.user_id}, not {user_id}")
        if user_id is not None:
            self.user_id = user_id
        self.requested.set()

    def sync_sent(self) -> None:
        self.syncs_sent += 1

    def sync_failed(self, connection: int, endpoint: str, why: str, code: int) -> None:
        """The venue refused the sync (or its ``auth/me``): announced; the connection goes
        on without the account (no reconnect: a refusal would only come again)."""
        self.sync_failures += 1
        self._health.emit(
            EventName.SYNC_FAILED,
            connection,
            f"{endpoint} failed: {why}; this connection carries no account updates",
            request=endpoint,
            code=code,
        )

    def learned(self, user_id: int) -> None:
        """The venue named the token's user: every later connection asks for it directly."""
        if self.user_id is None:
            self.user_id = user_id

    # -- the readers ---------------------------------------------------------------------

    def snapshot(
        self,
        connection: int,
        user_id: int | None,
        entities: Mapping[str, tuple[Mapping[str, Any], ...]],
        now: float,
    ) -> SyncSnapshot:
        """The sync answer that came on ``connection`` as a snapshot (it becomes the
        account's source); a resync after the feed's first is announced (``resynced``)."""
        snapshot = SyncSnapshot(user_id, entities, connection, now)
        if self.route.snapshot(connection) is Admission.RESYNCED:
            self._health.emit(
                EventName.RESYNCED,
                connection,
                "the account was synced again: reconcile against the new snapshot",
                counts=snapshot.counts(),
            )
        return snapshot

    def entity(
        self, connection: int, parts: tuple[str, str, Mapping[str, Any]] | None, now: float
    ) -> EntityEvent | None:
        """The ``props`` event as an :class:`EntityEvent`, or None when it does not reach
        the user (no sync wanted, another connection carries the account, malformed)."""
        if not self.wanted:
            self.ignored += 1
            return None
        if parts is None:
            self.malformed += 1
            return None
        if self.route.event(connection) is Admission.SUPERSEDED:
            return None
        entity_type, event_type, entity = parts
        return EntityEvent(entity_type, event_type, entity, connection, now)

    def connection_closed(self, connection: int) -> None:
        self.route.connection_closed(connection)

    @property
    def gaps_unreported(self) -> bool:
        return self.queue.dropped != self._gaps_reported

    def report_gaps(self, connection: int, now: float) -> None:
        """Announce what the queue dropped for a slow consumer: at once, then once a second."""
        report = self._gaps.observe(self.queue.drops, now)
        if report is None:
            return
        self._gaps_reported = self.queue.dropped
        self._health.emit(
            EventName.GAP,
            connection,
            f"{report.count} account update(s) dropped for a slow consumer",
            dropped=report.count,
            total=report.total,
            account=dict(report.since_last),
        )

    def statistics(self) -> dict[str, Any]:
        route = self.route.statistics()
        return {
            "wanted": self.wanted,
            "user_id": self.user_id,
            "source": route.source,
            "snapshots": route.snapshots,
            "events": route.events,
            "superseded": route.superseded,
            "ignored": self.ignored,
            "malformed": self.malformed,
            "syncs_sent": self.syncs_sent,
            "sync_failures": self.sync_failures,
            "queue": {**self.queue.statistics(), "dropped_by_type": dict(self.queue.drops)},
        }


def _check_user_id(user_id: object) -> None:
    if user_id is not None and (type(user_id) is not int or user_id <= 0):
        raise ValueError(f"a user id is a positive int, not {user_id!r}")
