"""The runner's TLS options: whom to trust over ``wss://`` and ``https://``.

By default nothing is said and the defaults verify: the system's CA store for
the WebSocket, httpx's for Tradovate's REST API. ``--ca-file PATH`` trusts
the CAs in that PEM bundle and no others (``ssl.create_default_context(cafile=PATH)``
loads no default store when given a file), for a venue or simulator behind a
private CA. ``--insecure`` verifies nothing, neither the certificate nor the
host name: it exists for a quick look at a test endpoint, so it says so on
stderr and in the ``tickactors`` log every time it is used. The one context
goes to the socket (``open_feed(ssl_context=...)``) and to the REST client
(``TradovateTokenSource(ssl_context=...)``) alike.
"""

from __future__ import annotations

import argparse
import logging
import ssl
from typing import Final

from .stderr import error_line

INSECURE_WARNING: Final = (
    "warning: --insecure: TLS certificates and host names are NOT verified; anyone on the "
    "network path can read the token and forge market data"
)

log = logging.getLogger("tickactors")


class TLSOptionError(ValueError):
    """``--ca-file`` cannot be used; the message names the file and why, nothing secret."""


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--ca-file",
        default=None,
        metavar="PATH",
        help="verify wss:// and https:// certificates against the CAs in this PEM file "
        "(and no others), e.g. a private CA or the simulator's",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates or host names at all (test endpoints only; "
        "warns on every run)",
    )


def tls_from_args(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client context the options ask for, or None for the verifying defaults.

    Raises :class:`TLSOptionError` for a CA file that cannot be loaded. With
    ``--insecure`` it prints :data:`INSECURE_WARNING` to stderr and logs it.
    """
    ca_file: str | None = getattr(args, "ca_file", None)
    if ca_file is not None:
        try:
            return ssl.create_default_context(cafile=ca_file)
        except ssl.SSLError as exc:
            raise TLSOptionError(
                f"--ca-file: no PEM CA certificate in {ca_file} ({exc.reason or exc})"
            ) from None
        except OSError as exc:
            raise TLSOptionError(f"--ca-file: cannot read {ca_file}: {exc.strerror}") from None
    if getattr(args, "insecure", False):
        error_line(INSECURE_WARNING)
        log.warning("%s", INSECURE_WARNING.removeprefix("warning: "))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return None
