"""A throwaway certificate authority for the TLS tests (trustme), made once per session.

``server_context()`` serves the simulator with a certificate for 127.0.0.1 issued by
the test CA; ``client_context()`` trusts that CA (and nothing else); ``write_ca``
puts the CA's certificate in a PEM file for the runner's ``--ca-file``.
"""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path

import trustme


@cache
def the_ca() -> trustme.CA:
    return trustme.CA()


def server_context(*hosts: str) -> ssl.SSLContext:
    """A server context with a certificate for ``hosts`` (default: 127.0.0.1)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    the_ca().issue_cert(*(hosts or ("127.0.0.1",))).configure_cert(context)
    return context


def client_context() -> ssl.SSLContext:
    """A client context that verifies against the test CA only."""
    return ssl.create_default_context(cadata=the_ca().cert_pem.bytes().decode())


def write_ca(directory: Path) -> Path:
    path = directory / "test-ca.pem"
    the_ca().cert_pem.write_to_path(str(path))
    return path


def write_server_files(directory: Path) -> tuple[Path, Path]:
    """A certificate chain for 127.0.0.1 and its key, as ``sim --tls-cert/--tls-key`` take."""
    issued = the_ca().issue_cert("127.0.0.1")
    cert, key = directory / "server-chain.pem", directory / "server-key.pem"
    cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key
