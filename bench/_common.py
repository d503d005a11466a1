"""What the benchmarks share: the server process, measuring windows, the null-reader check.

``bench/pipeline.py`` and ``bench/run.py`` both use these; nothing here runs on
import. The server runs in a separate process on loopback (``bench/_server.py``,
the replay server, or ``python -m tickactors sim``); :func:`null_client` reads
from it alone with a raw socket to measure its capacity, and :class:`Window`
takes the server's CPU time (``/proc/<pid>/stat``) and the client's
(``time.process_time``) over every timed window.
"""

from __future__ import annotations

import base64
import os
import platform
import select
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

import tickactors

BENCH = Path(__file__).resolve().parent
TOKEN = "bench-token"
DEFAULT_SYMBOLS = "BTCUSDT,ETHUSDT,EURUSD,700.HK"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the server process ------------------------------------------------------------------


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the server process (all threads), from /proc."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def start_server(
    kind: str,
    symbols: list[str],
    seed: int,
    sim_options: list[str] | None = None,
    replay_options: list[str] | None = None,
) -> Server:
    """Start ``kind`` ("replay": bench/_server.py; "sim": the simulator) and wait for its URL.

    ``sim_options`` replace the simulator's default benchmark options (firehose, no rate
    rule, no heartbeat deadline); ``replay_options`` are added to the replay server's
    (``--frames FILE``, ``--ring N``).
    """
    if kind == "replay":
        argv = [sys.executable, str(BENCH / "_server.py"), "--port", "0", "--seed", str(seed)]
        argv += ["--codes", ",".join(symbols), *(replay_options or [])]
    else:
        argv = [sys.executable, "-m", "tickactors", "sim", "--venue", "alltick", "--port", "0"]
        argv += (
            ["--firehose", "--no-rate-limit", "--heartbeat-timeout", "3600"]
            if sim_options is None
            else sim_options
        )
        argv += ["--seed", str(seed)]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    return Server(kind, process, listening_url(process, kind))


def listening_url(process: subprocess.Popen[bytes], kind: str) -> str:
    """The loopback URL a server process prints first (``listening ws://...``)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30.0)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("listening ws://"):
        process.kill()
        raise SystemExit(f"the {kind} server did not start (first line: {line!r})")
    url = line.split()[1]
    if urlsplit(url).hostname != "127.0.0.1":
        process.kill()
        raise SystemExit(f"refusing a non-loopback server URL {url!r}")
    return url


def subscribe_request(symbols: list[str]) -> str:
    data = {"symbol_list": [{"code": s} for s in symbols]}
    return orjson.dumps({"cmd_id": 22004, "seq_id": 1, "trace": "bench", "data": data}).decode()


# -- measuring a window ------------------------------------------------------------------


@dataclass
class Sample:
    contender: str
    run: int
    ticks: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of this process in the window
    server_cpu: float = 0.0  # CPU seconds of the server process in the window
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.ticks / self.seconds if self.seconds > 0 else 0.0

    @property
    def client_load(self) -> float:
        return self.client_cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_load(self) -> float:
        return self.server_cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_tick(self) -> float:
        return self.client_cpu / self.ticks * 1e6 if self.ticks else 0.0


@dataclass
class Window:
    """Starts the clocks when created; :meth:`stop` fills the sample."""

    server: Server
    sample: Sample
    t0: float = field(default_factory=time.perf_counter)
    c0: float = field(default_factory=time.process_time)
    s0: float = 0.0

    def __post_init__(self) -> None:
        self.s0 = self.server.cpu_seconds()

    def stop(self, ticks: int) -> None:
        s = self.sample
        s.seconds = time.perf_counter() - self.t0
        s.client_cpu = time.process_time() - self.c0
        s.server_cpu = self.server.cpu_seconds() - self.s0
        s.ticks = ticks


# -- the null client: the server's capacity on its own -----------------------------------


def raw_subscribed(url: str, symbols: list[str]) -> tuple[socket.socket, bytes]:
    """A plain socket upgraded to a WebSocket on ``url`` (the bench token added to its
    query) that has sent the subscription for ``symbols``; the bytes read past the 101.

    The socket has a 10 s timeout and ``TCP_NODELAY``. Used by the readers that are no
    client at all: :func:`null_client` and ``bench/latency.py``'s ``thread_floor``.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port), timeout=10)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        target = f"{parts.path}?{parts.query + '&' if parts.query else ''}token={TOKEN}"
        sock.sendall(
            (
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(4096)
            if not data:
                raise SystemExit("the server closed during a raw client's handshake")
            buf += data
        if not buf.startswith(b"HTTP/1.1 101"):
            raise SystemExit("the server refused a raw client's upgrade")
        rest = buf.split(b"\r\n\r\n", 1)[1]
        payload = subscribe_request(symbols).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(struct.pack("!BBH", 0x81, 0x80 | 126, len(payload)) + mask + masked)
    except BaseException:
        sock.close()
        raise
    return sock, rest


def null_client(server: Server, symbols: list[str], seconds: float) -> dict[str, float]:
    """Read from the server alone with a raw socket for ``seconds``; frames/s and server CPU."""
    sock, rest = raw_subscribed(server.url, symbols)
    try:
        frames = 0
        pending = bytearray(rest)
        chunk = bytearray(1 << 20)
        view = memoryview(chunk)
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        s0 = server.cpu_seconds()
        pos = 0
        while time.perf_counter() < deadline:
            got = sock.recv_into(view)
            if not got:
                break
            pending += view[:got]
            # walk the frame headers: count frames, keep an incomplete tail
            end = len(pending)
            while end - pos >= 2:
                length = pending[pos + 1] & 0x7F
                if length == 126:
                    if end - pos < 4:
                        break
                    length = (pending[pos + 2] << 8) | pending[pos + 3]
                    size = 4 + length
                elif length == 127:
                    if end - pos < 10:
                        break
                    length = int.from_bytes(pending[pos + 2 : pos + 10], "big")
                    size = 10 + length
                else:
                    size = 2 + length
                if end - pos < size:
                    break
                pos += size
                frames += 1
            if pos > (1 << 20):
                del pending[:pos]
                pos = 0
        elapsed = time.perf_counter() - t0
        server_cpu = server.cpu_seconds() - s0
    finally:
        sock.close()
    return {
        "frames_per_s": frames / elapsed,
        "server_cpu_pct": 100 * server_cpu / elapsed,
        "seconds": elapsed,
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1.0
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "trio": _version("trio"),
        "trio_websocket": _version("trio-websocket"),
        "wsproto": _version("wsproto"),
        "orjson": _version("orjson"),
        "msgspec": _version("msgspec"),
        "websockets": _version("websockets"),
        "picows": _version("picows"),
        "tickactors": tickactors.__version__,
        "platform": platform.platform(),
        "loadavg_1min_at_start": round(load, 2),
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
