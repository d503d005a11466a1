"""Connect failures that will not heal: which ones they are, and when a slot stops trying.

Theory of operation
-------------------
Most reasons a connect fails pass by themselves: the venue refuses connections while it
restarts, a congested path times out, a load balancer answers 503 during maintenance, a
resolver times out (``EAI_AGAIN``). Retrying with backoff is the answer, for ever.

Some do not pass. An answer to the upgrade that says the request itself is wrong (HTTP
4xx: 400 a malformed request, 401 and 403 a token refused at the door, 404 a path the
venue does not serve) will come back for the same request every time, and so will a
host name that does not exist (NXDOMAIN: ``EAI_NONAME``) or a certificate that cannot
be verified. Two 4xx say "later", not "never": 408 Request Timeout and 429 Too Many
Requests. Everything else (5xx, 3xx, timeouts, refusals, resets, TLS alerts, a broken
handshake) counts as transient.

A :class:`Cause` names a failure (its ``name`` goes into the ``connect_failed`` event's
``cause``) and says whether it is permanent. The transport
(``_net/connecting.py``) maps the exception it met to one of the causes here; which
causes are permanent is decided here alone.

"Permanent" is a judgment, not a proof. A load balancer may answer 404 for a minute while
the venue deploys; a resolver that lost its upstream may answer NXDOMAIN and keep that
answer in its negative cache for the zone's SOA minimum, commonly 5 to 30 minutes. So a
permanent cause is told at once (the event, an ERROR log line), but the feed gives up only
after ``give_up_after`` of them in a row (:class:`PermanentFailures`); a connection that
opens, or a transient failure, starts the count again. The default,
:data:`DEFAULT_GIVE_UP_AFTER` = 30, is for an unattended capture: with the feed's default
backoff (1 s doubling to a 60 s cap, full jitter) thirty attempts take about 13 minutes
(10 to 16 in 19 runs of 20: docs/reliability.md), long enough to ride out a deploy's 404s
and the usual negative cache, short enough that whatever watches the process (its exit
status, a service manager) learns within a quarter of an hour. Giving up early costs the
rest of a capture if nothing restarts it; retrying a hopeless URL costs one request a
minute. A certificate is the exception to the count: the supervisor ends the feed on the
first one, as it always has (a verifier's verdict on the same certificate does not change).
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = [
    "CERTIFICATE",
    "DEFAULT_GIVE_UP_AFTER",
    "DNS_FAILED",
    "DNS_NOT_FOUND",
    "HANDSHAKE",
    "NETWORK",
    "OTHER",
    "REFUSED",
    "TIMEOUT",
    "TLS",
    "Cause",
    "PermanentFailures",
    "check_give_up_after",
    "http_cause",
]

#: consecutive permanent failures after which a feed gives up (see the module docstring)
DEFAULT_GIVE_UP_AFTER: Final = 30

#: 4xx answers to the upgrade that say "try later"
_TRANSIENT_4XX: Final = frozenset({408, 429})


@attrs.frozen
class Cause:
    """What made a connect fail: ``name`` (for the event's ``cause``), and whether it is
    ``permanent`` (retrying the same request will meet the same answer)."""

    name: str
    permanent: bool


def http_cause(status: int) -> Cause:
    """The cause of an upgrade answered with HTTP ``status`` instead of 101."""
    permanent = 400 <= status <= 499 and status not in _TRANSIENT_4XX
    return Cause(f"http_{status}", permanent)


#: the host name does not exist (NXDOMAIN: ``EAI_NONAME``; or it has no address: ``EAI_NODATA``)
DNS_NOT_FOUND: Final = Cause("dns_not_found", permanent=True)
#: the resolver did not answer, or failed (``EAI_AGAIN``, ``EAI_FAIL``, ...)
DNS_FAILED: Final = Cause("dns_failed", permanent=False)
#: the TLS certificate could not be verified (the feed ends on the first: ``CertificateError``)
CERTIFICATE: Final = Cause("certificate", permanent=True)
#: no TCP, TLS and upgrade within ``connect_timeout``
TIMEOUT: Final = Cause("timeout", permanent=False)
#: nothing listens there (now)
REFUSED: Final = Cause("refused", permanent=False)
#: unreachable, reset, another socket error
NETWORK: Final = Cause("network", permanent=False)
#: TLS failed for another reason than the certificate
TLS: Final = Cause("tls", permanent=False)
#: the server answered the upgrade with something that is not HTTP, or closed half-way
HANDSHAKE: Final = Cause("handshake", permanent=False)
#: a failure nobody classified (a transport factory of the user's)
OTHER: Final = Cause("other", permanent=False)


def check_give_up_after(value: object) -> int | None:
    """``open_feed(give_up_after=...)`` checked: a whole number >= 1, or None (never give up).

    Raises ``ValueError`` for anything else, 0 included: "give up after no failure" has no
    meaning, and ``None`` is the spelling of "never" (the runner's ``--give-up-after 0``
    becomes None).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"give_up_after must be a whole number >= 1, or None to never give up; "
            f"got {value!r}"
        )
    return value


class PermanentFailures:
    """Counts one slot's consecutive connect failures whose cause will not heal, and says
    when to give up (``after`` of them in a row; None: never)."""

    def __init__(self, after: int | None = DEFAULT_GIVE_UP_AFTER) -> None:
        self.after = check_give_up_after(after)
        #: permanent failures since the last connection that opened or transient failure
        self.in_a_row = 0

    def failed(self, permanent: bool) -> bool:
        """A connect attempt failed; True when this one means giving up."""
        if not permanent:
            self.in_a_row = 0
            return False
        self.in_a_row += 1
        return self.after is not None and self.in_a_row >= self.after

    def connected(self) -> None:
        """A connection opened: whatever failed before healed."""
        self.in_a_row = 0
