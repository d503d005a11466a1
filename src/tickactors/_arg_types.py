"""Command-line values checked where argparse reads them, and a parser that refuses in one line.

Shared by the runner (``tickactors._cli``: the demo, ``run``, ``chaos``) and the
simulator's command line (``tickactors.sim._cli``), so this module imports nothing from
tickactors: the simulator must not depend on the client's internals.

Each ``type=`` function turns an option's text into its value or raises
:class:`argparse.ArgumentTypeError` with a message that names the value and what is
allowed; argparse puts ``argument --OPTION:`` in front of it. NaN and the infinities are
refused everywhere (no option means anything by them). A URL is shown with its query
and its password masked, since a token may hide there; no other value shown here can
be a secret (``--token`` is only ever refused when empty).

:class:`OneLineParser` prints a refusal as ``PROG: error: MESSAGE (see --help)``, one
line on stderr, exit status 2, where argparse would print its usage block first. Its
hooks let the runner print that line through its own stderr function (:meth:`emit`) and
repeat the refusal elsewhere first (``on_refusal``: ``run`` writes a JSON ``error``
line on stdout). Unrecognized words are not echoed (a mistyped ``--tokn SECRET`` would
print the secret): only the ones that look like options are named.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

SHOWN = 40  # characters of a bad value shown in a refusal


def shown(text: str) -> str:
    """``text`` as a refusal quotes it: repr, cut to :data:`SHOWN` characters."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


def shown_url(text: str) -> str:
    """``text`` quoted with its query, fragment and password (anything before ``@``) masked."""
    head, query, _ = text.partition("?")
    head, fragment, _ = head.partition("#")
    scheme, sep, rest = head.partition("://")
    if sep:
        netloc, slash, path = rest.partition("/")
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        head = f"{scheme}://{netloc}{slash}{path}"
    elif "@" in head:
        head = "***@" + head.rpartition("@")[2]
    return shown(head + ("?***" if query or fragment else ""))


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {shown(text)}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, mostly)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {shown(text)}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (0 usually means "off")."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {shown(text)}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {shown(text)}") from None


def positive_int(text: str) -> int:
    """A whole number >= 1 (a count)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {shown(text)}")
    return value


def int_between(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """The type of a whole number from ``low`` to ``high``, both included."""

    def between(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be {what} from {low} to {high}, not {shown(text)}"
            )
        return value

    between.__name__ = f"int_between_{low}_{high}"
    return between


#: A TCP port: 0 to 65535 (0: the system picks a free one, where that makes sense).
port = int_between(0, 65535, "a TCP port")


#: Where ``HOST:PORT`` listens when only ``PORT`` is given: loopback, never every interface.
DEFAULT_LISTEN_HOST = "127.0.0.1"


def listen_address(text: str) -> tuple[str, int]:
    """Where to listen: ``PORT`` (on :data:`DEFAULT_LISTEN_HOST`), ``HOST:PORT`` or, for an
    IPv6 address, ``[ADDRESS]:PORT``; port 0 lets the system pick a free one."""
    wanted = "must be PORT or HOST:PORT (e.g. 9464 or 127.0.0.1:9464; [::1]:9464 for IPv6)"
    host, colon, port_text = text.rpartition(":")
    if "/" in text:  # a URL: not what this option takes
        raise argparse.ArgumentTypeError(f"{wanted}, not {shown(text)}")
    if not colon:
        host, port_text = DEFAULT_LISTEN_HOST, text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host or ":" not in host:
            raise argparse.ArgumentTypeError(f"{wanted}, not {shown(text)}")
    elif ":" in host:
        raise argparse.ArgumentTypeError(
            f"an IPv6 address goes in brackets, [ADDRESS]:PORT, not {shown(text)}"
        )
    if (
        not host
        or not (port_text.isascii() and port_text.isdigit())
        or any(c.isspace() or c in "/[]@" for c in host)
    ):
        raise argparse.ArgumentTypeError(f"{wanted}, not {shown(text)}")
    number = int(port_text)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"the port must be from 0 to 65535, not {shown(text)}")
    return host, number


def non_empty(text: str) -> str:
    """Any text but the empty one (a token, a name)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _url_of(article: str, schemes: tuple[str, ...]) -> Callable[[str], str]:
    wanted = f"{article} " + " or ".join(f"{scheme}://" for scheme in schemes)

    def url(text: str) -> str:
        scheme, sep, rest = text.partition("://")
        host = rest.split("/", 1)[0].rpartition("@")[2].split("?", 1)[0].split("#", 1)[0]
        if not sep or scheme.lower() not in schemes or not host or host.startswith(":"):
            raise argparse.ArgumentTypeError(
                f"must be {wanted} URL with a host, not {shown_url(text)}"
            )
        return text

    url.__name__ = f"{schemes[0]}_url"
    return url


#: A WebSocket URL: ``ws://`` or ``wss://`` and a host.
ws_url = _url_of("a", ("ws", "wss"))
#: An HTTP URL: ``http://`` or ``https://`` and a host.
http_url = _url_of("an", ("http", "https"))


def _unrecognized(message: str) -> str:
    """argparse's "unrecognized arguments: ..." without the words that are not options."""
    prefix = "unrecognized arguments: "
    if not message.startswith(prefix):
        return message
    words = message.removeprefix(prefix).split(" ")
    options = [word.partition("=")[0] for word in words if word.startswith("-")]
    hidden = len(words) - len(options)
    named = " ".join(options)
    if not hidden:
        return prefix + named
    others = f"{hidden} other word{'s' if hidden > 1 else ''} (not shown)"
    return prefix + (f"{named} and {others}" if named else others)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose refusals are one line: ``PROG: error: MESSAGE (see --help)``.

    Subparsers made with ``add_subparsers`` are of the same class. ``on_refusal``, when
    set on a parser, is called with the message before the line is printed.
    """

    on_refusal: Callable[[str], None] | None = None

    def emit(self, line: str) -> None:
        """Print ``line`` on stderr (subclasses route it elsewhere)."""
        print(line, file=sys.stderr, flush=True)

    def error(self, message: str) -> NoReturn:
        message = one_line(_unrecognized(message))
        if self.on_refusal is not None:
            self.on_refusal(message)
        self.emit(f"{self.prog}: error: {message} (see --help)")
        self.exit(2)


__all__ = [
    "DEFAULT_LISTEN_HOST",
    "OneLineParser",
    "http_url",
    "int_between",
    "listen_address",
    "non_empty",
    "non_negative_float",
    "one_line",
    "port",
    "positive_float",
    "positive_int",
    "shown",
    "shown_url",
    "ws_url",
]
