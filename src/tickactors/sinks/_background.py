"""Background tasks for the ``async with`` of a sink, without leaking an ExceptionGroup.

:func:`running` lives in ``tickactors._feed.unwrap``, shared with ``open_feed``.
"""

from __future__ import annotations

from .._feed.unwrap import running

__all__ = ["running"]
