"""``--sink`` specifications: ``jsonl:PATH?options``, ``parquet:DIR?options`` and
``nats://HOST:PORT?options``.

A specification is parsed once into a frozen value (:class:`JsonlSpec`,
:class:`ParquetSpec`, :class:`NatsSpec`);
a mistake is a :class:`SinkSpecError` naming the option, never echoing a password.
``docs/sinks.md`` lists every option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from .._secret import MASK, Secret

__all__ = ["JsonlSpec", "NatsSpec", "ParquetSpec", "SinkSpecError", "parse_sink", "parse_size"]


class SinkSpecError(ValueError):
    """A ``--sink`` specification that cannot be used; the message says why."""


_SIZE = re.compile(r"(\d+)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
FSYNC_MODES = ("rotate", "batch")


def parse_size(text: str) -> int:
    """``"512"``, ``"64K"``, ``"100M"``, ``"2G"`` (binary multiples) as a number of bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise SinkSpecError(f"not a size: {text!r} (use a number of bytes, or 64K, 100M, 2G)")
    return int(match[1]) * _UNITS[match[2].lower()]


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SinkSpecError(f"{name} must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise SinkSpecError(f"{name} must be a number of seconds > 0, got {text!r}")
    return value


def _count(name: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise SinkSpecError(f"{name} must be a whole number >= 1, got {text!r}")
    return int(text)


@attrs.frozen
class JsonlSpec:
    """``jsonl:PATH[?max_bytes=SIZE][&max_seconds=S][&fsync=rotate|batch]``."""

    path: Path
    max_bytes: int | None = None
    max_seconds: float | None = None
    fsync: str = "rotate"

    @property
    def display(self) -> str:
        return f"jsonl:{self.path}"


@attrs.frozen
class ParquetSpec:
    """``parquet:DIR[?max_seconds=S][&max_rows=N][&row_group=N]``."""

    directory: Path
    max_seconds: float = 300.0
    max_rows: int = 1_000_000
    row_group: int = 65_536

    @property
    def display(self) -> str:
        return f"parquet:{self.directory}"


@attrs.frozen
class NatsSpec:
    """``nats://[USER:PASSWORD@|TOKEN@]HOST:PORT[?options]``; credentials never displayed."""

    host: str
    port: int
    user: str | None = None
    password: Secret | None = attrs.field(default=None, repr=False)
    token: Secret | None = attrs.field(default=None, repr=False)
    stream: str = "TICKACTORS"
    subject_prefix: str = "ticks"
    health_prefix: str = "health"
    buffer: int = 100_000
    batch: int = 1_000
    drain: float = 2.0
    ack_timeout: float = 5.0
    connect_timeout: float = 2.0
    max_age: float | None = None
    dedup: bool = True

    @property
    def server_url(self) -> str:
        """``nats://HOST:PORT`` without credentials (they are passed apart)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nats://{host}:{self.port}"

    @property
    def display(self) -> str:
        if self.user is None and self.token is None:
            return self.server_url
        return self.server_url.replace("nats://", f"nats://{MASK}@", 1)


def parse_sink(text: str) -> JsonlSpec | ParquetSpec | NatsSpec:
    """One ``--sink`` value. Raises :class:`SinkSpecError`."""
    if text.startswith("jsonl:"):
        return _parse_jsonl(text[len("jsonl:") :])
    if text.startswith("parquet:"):
        return _parse_parquet(text[len("parquet:") :])
    if text.startswith("nats://"):
        return _parse_nats(text)
    shown = text.split("://", 1)[0] + "://..." if "://" in text else text
    raise SinkSpecError(f"unknown sink {shown!r}: use jsonl:PATH, parquet:DIR or nats://HOST:PORT")


def _options(query: str, what: str, known: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in known:
            raise SinkSpecError(f"{what}: unknown option {key!r} (known: {', '.join(known)})")
        options[key] = value
    return options


def _parse_jsonl(rest: str) -> JsonlSpec:
    path, _, query = rest.partition("?")
    if not path:
        raise SinkSpecError("jsonl: needs a path, as in jsonl:capture/ticks.jsonl")
    options = _options(query, "jsonl", ("max_bytes", "max_seconds", "fsync"))
    fsync = options.get("fsync", "rotate")
    if fsync not in FSYNC_MODES:
        raise SinkSpecError(f"jsonl: fsync must be one of {', '.join(FSYNC_MODES)}")
    max_bytes = options.get("max_bytes")
    max_seconds = options.get("max_seconds")
    return JsonlSpec(
        path=Path(path),
        max_bytes=None if max_bytes is None else parse_size(max_bytes),
        max_seconds=None if max_seconds is None else _seconds("max_seconds", max_seconds),
        fsync=fsync,
    )


def _parse_parquet(rest: str) -> ParquetSpec:
    directory, _, query = rest.partition("?")
    if not directory:
        raise SinkSpecError("parquet: needs a directory, as in parquet:capture")
    options = _options(query, "parquet", ("max_seconds", "max_rows", "row_group"))
    values: dict[str, Any] = {}
    try:
        if "max_seconds" in options:
            values["max_seconds"] = _seconds("max_seconds", options["max_seconds"])
        for key in ("max_rows", "row_group"):
            if key in options:
                values[key] = _count(key, options[key])
    except SinkSpecError as exc:
        raise SinkSpecError(f"parquet: {exc}") from None
    return ParquetSpec(directory=Path(directory), **values)


_NATS_OPTIONS = (
    "stream",
    "subject_prefix",
    "health_prefix",
    "buffer",
    "batch",
    "drain",
    "ack_timeout",
    "connect_timeout",
    "max_age",
    "dedup",
)


def _parse_nats(text: str) -> NatsSpec:
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise SinkSpecError("nats: the port must be a number from 1 to 65535") from None
    if not parts.hostname or port is None:
        raise SinkSpecError("nats: needs a host and a port, as in nats://127.0.0.1:4222")
    if parts.path not in ("", "/") or parts.fragment:
        raise SinkSpecError("nats: nothing may follow HOST:PORT but ?options")
    options = _options(parts.query, "nats", _NATS_OPTIONS)
    user = password = token = None
    if parts.username is not None and parts.password is not None:
        user, password = unquote(parts.username), Secret(unquote(parts.password))
    elif parts.username:
        token = Secret(unquote(parts.username))
    if "stream" in options and not _NAME.fullmatch(options["stream"]):
        raise SinkSpecError("nats: stream may hold only letters, digits, '_' and '-'")
    for key in ("subject_prefix", "health_prefix"):
        if key in options and not _PREFIX.fullmatch(options[key]):
            raise SinkSpecError(
                f"nats: {key} is dot-separated tokens of letters, digits, '_' and '-'"
            )
    if options.get("dedup", "1") not in ("0", "1"):
        raise SinkSpecError("nats: dedup is 1 (on, the default) or 0")
    converters: dict[str, Callable[[str, str], Any]] = {
        "buffer": _count,
        "batch": _count,
        "drain": _seconds,
        "ack_timeout": _seconds,
        "connect_timeout": _seconds,
        "max_age": _seconds,
    }
    values: dict[str, Any] = {
        key: convert(key, options[key]) for key, convert in converters.items() if key in options
    }
    values.update(
        {
            key: options[key]
            for key in ("stream", "subject_prefix", "health_prefix")
            if key in options
        }
    )
    return NatsSpec(
        host=parts.hostname,
        port=port,
        user=user,
        password=password,
        token=token,
        dedup=options.get("dedup", "1") == "1",
        **values,
    )
