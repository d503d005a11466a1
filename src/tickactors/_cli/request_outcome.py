"""How a stdin ``request`` ended: the one line the runner writes for it, answer or failure.

A :class:`RequestOutcome` is what ``user_requests.py`` hands the writer once a request
of the user's own is over. On stdout (``--format jsonl``) it is a line of a kind of its
own, not a status line::

    {"kind":"answer","request":"order/placeorder","id":3,"status":200,"data":{...},
     "elapsed":0.004,"time":...}
    {"kind":"request_failed","request":"order/placeorder","id":4,"reason":"connection_lost",
     "message":"...","elapsed":0.001,"time":...}

``id`` is the runner's number of the request (the same as on the ``command`` status line
that took it), ``elapsed`` the seconds from handing it to the feed to its end, ``time`` the
line's time like every status line's. A ``rejected`` failure carries the venue's ``code``
and its ``message``. The sinks get the same facts as a status record
(``"event":"answer"`` or ``"request_failed"``): a sink stores status records and market
data, and a line of an unknown kind would be neither (``fanout.py``).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .._values import StatusName

#: Why a request failed: no answer in time; its connection dropped (never sent again);
#: the venue answered with an error; the venue wants a captcha; the feed (or the runner)
#: closed before an answer came.
Reason = Literal["connection_lost", "timeout", "rejected", "captcha", "closed"]


@attrs.frozen
class RequestOutcome:
    """The end of stdin request ``id`` (see the module docstring).

    An answer has a ``status`` (2xx) and ``data``; a failure a ``reason``, a ``message``
    and, when ``rejected``, the venue's ``code``.
    """

    id: int
    endpoint: str
    elapsed: float
    status: int | None = None
    data: Any = None
    reason: Reason | None = None
    code: int | None = None
    message: str = ""

    @property
    def name(self) -> StatusName:
        """``answer`` or ``request_failed``: the line's kind (stdout), the record's event
        (sinks)."""
        return StatusName.ANSWER if self.reason is None else StatusName.REQUEST_FAILED

    def detail(self) -> dict[str, Any]:
        """Everything but the kind, the message and the time, in the order printed."""
        out: dict[str, Any] = {"request": self.endpoint, "id": self.id}
        if self.reason is None:
            out["status"] = self.status
            out["data"] = self.data
        else:
            out["reason"] = self.reason
            if self.code is not None:
                out["code"] = self.code
        out["elapsed"] = round(self.elapsed, 6)
        return out

    def line(self, time: float) -> dict[str, Any]:
        """The stdout line (``time``: epoch seconds)."""
        out: dict[str, Any] = {"kind": str(self.name), **self.detail()}
        if self.reason is not None:
            out["message"] = self.message
        out["time"] = round(time, 6)
        return out
