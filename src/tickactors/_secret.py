r"""A string that never shows itself: tokens travel wrapped in :class:`Secret`.

``repr()``, ``str()`` and ``format()`` all print a mask, so a token cannot
leak through logs, exception messages, ``statistics()`` or the runner's
output by accident. The one way out is :meth:`Secret.reveal`, used only where
the token goes on the wire.

Text that may quote a secret's value anyway (an error page that echoes the URL, a
REST error that echoes the request body) goes through :func:`redact`. Its rule:

- A secret of :data:`ANYWHERE` (8) characters or more is masked wherever it occurs,
  even inside a longer string (``xSECRETy``). Real tokens are that long, and an
  accidental match of 8 characters is negligible, so nothing is spared that could
  be part of a leak.
- A shorter secret (a one-letter test token, ``TRADOVATE_SEC=s``) is masked only where
  it stands as a token of the text: ``?token=s&x=1``, ``"sec":"s"``, ``Bearer s``,
  ``/v1/s/x``, a whole word. Masking every occurrence garbles the text around it
  (``all connections`` became ``all connection***``, and worse) and hides nothing.

A short secret stands as a token when neither neighbour could continue it. Real
tokens are base64, base64url, JWTs (base64url parts joined by dots), hex, or words
joined by ``-``, so:

- letters and digits of any script, ``_``, ``-`` and ``~`` continue a token;
- ``%`` continues it (``%s`` is a format, ``%41`` an escape), but a ``%XX`` escape
  of a separator separates (``%3Ftoken%3Ds%26``: a URL quoted inside a URL);
- ``.`` continues it only between token characters (``a.s.b``: a JWT, a host name,
  ``1.5``); a dot that ends a sentence (``token s.``) separates;
- ``=`` separates on the left (``token=s``: base64 padding never comes first) and
  continues on the right (``s==`` is padding; in ``s=1`` the ``s`` is a name);
- ``/`` and ``+`` separate, though base64 uses them: a path segment (``/v1/s/x``) or a
  form-encoded word (``Bearer+s``) is a token, while masking a short stretch of a
  base64 string that is not the secret costs nothing;
- anything else separates: whitespace, quotes, ``&?#:;,@()[]{}<>*|!\``, other
  symbols, the start and the end of the text;
- so do the escapes ``repr()`` and JSON write for a separator (``\n``, ``\r``,
  ``\t``, ``\xXX``, ``\u00XX``): ``'authorize\n1\n\ns'`` carries the token
  ``s``, though a letter comes right before it.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import quote, quote_plus

MASK: Final = "***"

#: A secret this long is masked wherever it occurs; a shorter one only as a token.
ANYWHERE: Final = 8


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
    """``text`` with each secret's value, and its URL forms, replaced by the mask.

    The forms a URL gives a value (``quote_plus`` as in a query, ``quote``) are masked
    too: a token with ``+``, ``/`` or ``=`` in it travels percent-encoded (hex digits in
    either case). A secret of :data:`ANYWHERE` characters or more is masked wherever it
    occurs; a shorter one only where it stands as a token, and the text around it is
    left as it was: the module docstring gives the rule and the reasons. None and empty
    secrets are skipped.
    """
    anywhere: list[str] = []
    as_token: list[str] = []
    for secret in secrets:
        value = None if secret is None else secret.reveal()
        if value:
            forms = (value, quote_plus(value), quote(value, safe=""))
            (anywhere if len(value) >= ANYWHERE else as_token).extend(forms)
    if anywhere:  # first: a short secret must not split a long one
        text = re.sub(_any_of(anywhere), MASK, text)
    if as_token:
        alternatives = _any_of(as_token)  # looked for first: 6 times faster than _BEFORE
        text = re.sub(f"(?=(?:{alternatives})){_BEFORE}(?:{alternatives}){_AFTER}", MASK, text)
    return text


def _any_of(forms: list[str]) -> str:
    """A pattern matching any of ``forms`` (the longest first), escapes' hex in either case."""
    ordered = sorted(set(forms), key=len, reverse=True)
    return "|".join(_ESCAPE.sub(_either_case, re.escape(form)) for form in ordered)


def _either_case(escape: re.Match[str]) -> str:
    return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in escape[1])


def _codes(*, but: str) -> str:
    """A pattern for the two hex digits (either case) of each ASCII character that separates:
    not a letter, a digit or one of ``but``."""
    alternatives = []
    for high in range(8):
        low = {
            digit
            for n in range(16)
            if not chr(16 * high + n).isalnum() and chr(16 * high + n) not in but
            for digit in {f"{n:X}", f"{n:x}"}
        }
        if low:
            alternatives.append(f"{high}[{''.join(sorted(low))}]")
    return "|".join(alternatives)


_ESCAPE: Final = re.compile("%([0-9A-F]{2})")
_LEFT: Final = _codes(but="_-~.%")  # '=' separates on the left ...
_RIGHT: Final = _codes(but="_-~.%=")  # ... and continues on the right
#: Before a short secret: the start, a separator, a dot after no token character, or an
#: escaped separator (``%XX``, ``\xXX``, ``\u00XX``, ``\n``, ``\r``, ``\t``).
_BEFORE: Final = (
    r"(?:(?<![\w~%.-])|(?<=(?<![\w~%-])\.)"
    rf"|(?<=%(?:{_LEFT}))|(?<=\\x(?:{_LEFT}))|(?<=\\u00(?:{_LEFT}))|(?<=\\[nrt]))"
)
#: After it: the end, a separator, a dot before no token character, or an escaped
#: separator (a backslash, which starts the other escapes, separates anyway).
_AFTER: Final = rf"(?:(?![\w~%.=-])|(?=\.(?![\w~%-]))|(?=%(?:{_RIGHT})))"
