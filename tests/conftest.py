"""Fixtures shared by several test modules."""

from __future__ import annotations

from .nats_support import nats_server

__all__ = ["nats_server"]
