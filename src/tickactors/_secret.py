"""A string that never shows itself: tokens travel wrapped in :class:`Secret`.

``repr()``, ``str()`` and ``format()`` all print a mask, so a token cannot
leak through logs, exception messages, ``statistics()`` or the runner's
output by accident. The one way out is :meth:`Secret.reveal`, used only where
the token goes on the wire.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote, quote_plus

MASK: Final = "***"


class Secret:
    """An opaque, immutable wrapper around a secret string (a token, a password)."""

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The secret itself: call this only where it goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled")


def redact(text: str, *secrets: Secret | None) -> str:
    """``text`` with every occurrence of each secret's value replaced by the mask.

    The forms a URL gives it (``quote_plus`` as in a query, ``quote``) are masked too:
    a token with ``+``, ``/`` or ``=`` in it travels percent-encoded.
    """
    for secret in secrets:
        if secret is not None and secret.reveal():
            value = secret.reveal()
            for form in dict.fromkeys((value, quote_plus(value), quote(value, safe=""))):
                text = text.replace(form, MASK)
    return text
