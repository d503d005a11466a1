"""A real ``nats-server -js`` on 127.0.0.1 for the sink tests, and a JetStream reader.

The server (Debian's ``nats-server``; ``.ci/run`` installs it) listens on a port of its
own choosing (``-p -1``) with a store in a temporary directory; its log on stderr says
the port and when it is ready, read under a deadline with ``select`` (no sleeping).
Without the binary the tests skip with the reason, unless ``TICKACTORS_REQUIRE_NATS=1``
(set by ``.ci/run``) makes that a failure.

The reader is nats-py on asyncio: Trio tests call it through ``trio.to_thread``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

STARTUP_TIMEOUT = 15.0
_LISTENING = re.compile(rb"Listening for client connections on 127\.0\.0\.1:(\d+)")
_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def nats_server_binary() -> str | None:
    return shutil.which("nats-server", path=_PATH)


class NatsServer:
    """One ``nats-server -js`` process; :meth:`kill` and :meth:`start` again on the same port."""

    def __init__(self, store: Path, *options: str) -> None:
        self.store = store
        self.options = options
        self.port = -1
        self.process: subprocess.Popen[bytes] | None = None
        self.log: list[bytes] = []
        self._drainer: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = nats_server_binary()
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.store),
                *self.options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.process.stderr is not None
        stderr = self.process.stderr
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pending = b""
        while b"Server is ready" not in pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([stderr], [], [], max(0.0, left))
            if not ready:
                self.stop()
                raise TimeoutError(f"nats-server not ready in {STARTUP_TIMEOUT} s: {pending!r}")
            chunk = os.read(stderr.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"nats-server exited: {pending.decode(errors='replace')}")
            pending += chunk
            if match := _LISTENING.search(pending):
                self.port = int(match[1])
        self.log.append(pending)
        # keep reading its log so that the pipe never fills up and stalls it
        self._drainer = threading.Thread(target=self._drain, args=(stderr,), daemon=True)
        self._drainer.start()

    def _drain(self, stderr: Any) -> None:
        while chunk := os.read(stderr.fileno(), 65536):
            self.log.append(chunk)

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-stream, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def _reap(self) -> None:
        if self.process is None:
            return
        self.process.wait(timeout=10)
        if self._drainer is not None:
            self._drainer.join(timeout=10)  # it ends at the end of the log
            self._drainer = None
        if self.process.stderr is not None:
            self.process.stderr.close()


def require_nats_server() -> None:
    """Skip the test without ``nats-server``; fail it under ``TICKACTORS_REQUIRE_NATS=1``."""
    if nats_server_binary() is None:
        reason = "nats-server is not installed (apt-get install nats-server)"
        if os.environ.get("TICKACTORS_REQUIRE_NATS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    require_nats_server()
    server = NatsServer(tmp_path / "nats-store")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def configured_nats_server(directory: Path, config: str) -> AsyncIterator[NatsServer]:
    """A server started with ``config`` (nats-server's configuration syntax), in Trio."""
    require_nats_server()
    (directory / "nats.conf").write_text(config)
    server = NatsServer(directory / "nats-store", "-c", str(directory / "nats.conf"))
    await trio.to_thread.run_sync(server.start)
    try:
        yield server
    finally:
        await trio.to_thread.run_sync(server.stop)


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- reading back ----------------------------------------------------------------------


async def _read_stream(url: str, stream: str, subject: str) -> list[tuple[str, dict[str, Any]]]:
    import nats

    nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        info = await js.stream_info(stream, subjects_filter=subject)
        expected = sum((info.state.subjects or {}).values())
        out: list[tuple[str, dict[str, Any]]] = []
        if expected == 0:
            return out
        consumer = await js.pull_subscribe(subject, stream=stream)  # ephemeral
        while len(out) < expected:
            for msg in await consumer.fetch(min(500, expected - len(out)), timeout=5):
                out.append((msg.subject, json.loads(msg.data)))
                await msg.ack()
        await consumer.unsubscribe()
        return out
    finally:
        await asyncio.wait_for(nc.close(), 5)


def read_stream(
    url: str, subject: str = ">", stream: str = "TICKACTORS"
) -> list[tuple[str, dict[str, Any]]]:
    """Every message of ``stream`` on ``subject`` (wildcards allowed), oldest first, as
    ``(subject, payload)``, through an ephemeral pull consumer; bounded by timeouts."""
    return asyncio.run(asyncio.wait_for(_read_stream(url, stream, subject), 30))
