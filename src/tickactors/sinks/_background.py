"""Background tasks for the ``async with`` of a sink, without leaking an ExceptionGroup.

:func:`running` lives in ``tickactors._unwrap``, shared with ``open_feed``.
"""

from __future__ import annotations

from .._unwrap import running

__all__ = ["running"]
