"""A bad network on ``lo``: loss, delay, jitter, reordering, duplication and a bandwidth cap.

Used by ``tests/netem_scenario.py`` inside a network namespace of its own (root), where
the simulator and the feed talk over ``lo``. Every impairment acts on each packet once, in
both directions, as ``tc qdisc add dev lo root netem ...`` does; the TCP stacks on both
ends are the kernel's, so loss and reordering cost real retransmissions (``ss -ti``,
``nstat``).

Two ways to impair, chosen by what the kernel has (:func:`probe`):

``netem``
    The kernel's own emulator: ``tc qdisc replace dev lo root netem loss L delay D J
    reorder R duplicate P``. Needs ``sch_netem`` (built in, or a module ``modprobe`` can
    load). Many CI kernels have it; the sandbox this project is built in does not
    (``CONFIG_NET_SCH_NETEM`` is off and the kernel takes no modules).

``nfqueue``
    The same decisions, made by a small process of ours (:func:`emulate`, run as
    ``python tests/netem_link.py emulate ...``): iptables hands every packet of the
    simulator's port to it through ``NFQUEUE`` (netlink, no library needed), and it gives
    each verdict late, the way netem sends a packet late: dropped with probability
    ``loss``; with probability ``reorder`` released at once (netem's ``reorder``: that
    packet goes to the front); otherwise released after ``delay`` plus a uniform draw in
    ``[-jitter, +jitter)`` (netem's default distribution), in the order of those release
    times, so jitter reorders too, as it does in netem. Duplicates are the kernel's:
    ``-m statistic --probability P -j TEE --gateway 127.0.0.1`` clones the packet. The
    packets, the kernel's TCP and its retransmissions are all real; only the waiting is
    done in user space, with a timer of about a millisecond (the emulator reports how
    late it released packets: ``lateness_ms``).

A bandwidth cap is ``tbf`` on ``lo`` in both cases (:func:`cap_rate`): packets beyond the
rate queue in the kernel, and beyond ``latency`` of queue they are dropped.

Nothing here touches the host: callers run it in a fresh namespace, and the rules and
qdiscs vanish with it.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

QUEUE = 7  # the NFQUEUE number our rules and the emulator use
GATEWAY = "127.0.0.1"
TC_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


@dataclass(frozen=True)
class Impairment:
    """What a bad link does to each packet (fractions 0..1, seconds)."""

    loss: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0

    def netem_args(self) -> list[str]:
        """The same impairment as ``tc ... netem`` arguments."""
        args: list[str] = []
        if self.loss:
            args += ["loss", f"{self.loss * 100:g}%"]
        if self.delay:
            args += ["delay", f"{self.delay * 1000:g}ms"]
            if self.jitter:
                args += [f"{self.jitter * 1000:g}ms"]
        if self.reorder:
            args += ["reorder", f"{self.reorder * 100:g}%"]
        if self.duplicate:
            args += ["duplicate", f"{self.duplicate * 100:g}%"]
        return args or ["delay", "0ms"]

    def describe(self) -> str:
        return " ".join(self.netem_args())


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=20,
        check=check,
        env={**os.environ, "PATH": TC_PATH},
    )


def netem_available() -> str | None:
    """None if ``tc ... netem`` works on this namespace's ``lo``, else why not."""
    added = _run("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
    if added.returncode != 0:
        return f"tc netem: {added.stderr.strip() or added.returncode}"
    _run("tc", "qdisc", "del", "dev", "lo", "root", check=False)
    return None


def nfqueue_available() -> str | None:
    """None if an NFQUEUE on this namespace can be bound by us, else why not."""
    try:
        with NfQueue(QUEUE):
            pass
    except OSError as exc:
        return f"NFQUEUE: {exc}"
    return None


def probe() -> tuple[str | None, list[str]]:
    """The backend to use here (``netem`` first, then ``nfqueue``) and why each failed."""
    reasons: list[str] = []
    for name, check in (("netem", netem_available), ("nfqueue", nfqueue_available)):
        reason = check()
        if reason is None:
            return name, reasons
        reasons.append(reason)
    return None, reasons


# -- NFQUEUE over raw netlink -------------------------------------------------------------

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_DROP, NF_ACCEPT = 0, 1


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * (-size % 4)


class NfQueue:
    """One bound NFQUEUE: packet ids in, verdicts out (metadata only, no payload copied)."""

    def __init__(self, number: int, maxlen: int = 65536) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
            self.sock.bind((0, 0))
            bind = struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)
            self._configure(_attr(NFQA_CFG_CMD, bind))
            self._configure(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))
            self._configure(_attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)))
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> NfQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _message(self, kind: int, attrs: bytes, flags: int = NLM_F_REQUEST) -> bytes:
        body = struct.pack("=BBH", socket.AF_INET, 0, socket.htons(self.number)) + attrs
        return (
            struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0)
            + body
        )

    def _configure(self, attrs: bytes) -> None:
        self.sock.send(self._message(NFQNL_MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK))
        reply = self.sock.recv(65536)
        _, kind = struct.unpack_from("=IH", reply)
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", reply, 16)
            if code:
                raise OSError(-code, f"NFQUEUE config refused: {os.strerror(-code)}")

    def verdict(self, packet_id: int, verdict: int) -> None:
        self.sock.send(
            self._message(
                NFQNL_MSG_VERDICT, _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
            )
        )

    def packets(self) -> list[int]:
        """Ids of the packets waiting in our socket (without blocking)."""
        ids: list[int] = []
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return ids
            offset = 0
            while offset + 16 <= len(data):
                size, kind = struct.unpack_from("=IH", data, offset)
                if size < 16:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    at = offset + 20  # after nlmsghdr and nfgenmsg
                    while at + 4 <= offset + size:
                        length, attr = struct.unpack_from("=HH", data, at)
                        if length < 4:
                            break
                        if attr & 0x7FFF == NFQA_PACKET_HDR:
                            ids.append(struct.unpack_from("!I", data, at + 4)[0])
                        at += (length + 3) & ~3
                offset += (size + 3) & ~3


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def emulate(impairment: Impairment, seed: int, queue: int = QUEUE) -> dict[str, Any]:
    """Run the user-space netem on ``queue`` until SIGTERM; what it did, as a dict.

    At the end every packet still held is released at once, so nothing stays stuck in
    the kernel's queue.
    """
    rng = random.Random(seed)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    held: list[tuple[float, int, int]] = []  # (release at, order, packet id)
    counts = {"packets": 0, "dropped": 0, "reordered": 0, "delayed": 0, "max_held": 0}
    lateness: list[float] = []
    order = 0
    with NfQueue(queue) as nfq:
        print("ready", flush=True)
        while not stop:
            now = time.monotonic()
            while held and held[0][0] <= now:
                due, _, packet = heapq.heappop(held)
                nfq.verdict(packet, NF_ACCEPT)
                lateness.append(now - due)
            timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.2
            try:
                readable, _, _ = select.select([nfq.sock], [], [], timeout)
            except InterruptedError:
                continue
            if not readable:
                continue
            now = time.monotonic()
            for packet in nfq.packets():
                counts["packets"] += 1
                if impairment.loss and rng.random() < impairment.loss:
                    counts["dropped"] += 1
                    nfq.verdict(packet, NF_DROP)
                    continue
                if impairment.reorder and rng.random() < impairment.reorder:
                    counts["reordered"] += 1
                    nfq.verdict(packet, NF_ACCEPT)  # to the front: ahead of every held one
                    continue
                wait = impairment.delay + impairment.jitter * (2 * rng.random() - 1)
                if wait <= 0:
                    nfq.verdict(packet, NF_ACCEPT)
                    continue
                counts["delayed"] += 1
                order += 1
                heapq.heappush(held, (now + wait, order, packet))
                counts["max_held"] = max(counts["max_held"], len(held))
        for _, _, packet in held:
            nfq.verdict(packet, NF_ACCEPT)
        kernel = _queue_counters(queue)
    return {
        **counts,
        "lateness_ms": {
            "p50": round(_percentile(lateness, 0.5) * 1000, 3),
            "p99": round(_percentile(lateness, 0.99) * 1000, 3),
            "max": round(max(lateness, default=0.0) * 1000, 3),
        },
        "kernel_queue": kernel,
    }


def _queue_counters(queue: int) -> dict[str, int]:
    """The kernel's own counters of the queue: packets it dropped, ours or for lack of room."""
    try:
        lines = Path("/proc/net/netfilter/nfnetlink_queue").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        fields = line.split()
        if fields and int(fields[0]) == queue:
            return {"queue_dropped": int(fields[5]), "user_dropped": int(fields[6])}
    return {}


# -- the controller, used by the scenario -------------------------------------------------


def _tee_packets() -> int:
    """Packets our TEE rules cloned (``iptables -t mangle -L OUTPUT -v -x``)."""
    listing = _run("iptables", "-w", "-t", "mangle", "-L", "OUTPUT", "-v", "-n", "-x").stdout
    return sum(int(line.split()[0]) for line in listing.splitlines()[2:] if " TEE " in line)


def _rules(port: int, action: str, impairment: Impairment, queue: int) -> bytes:
    """iptables-restore input adding (``-A``) or deleting (``-D``) our rules for ``port``."""
    lines: list[str] = []
    if impairment.duplicate:
        lines.append("*mangle")
        for side in ("--dport", "--sport"):
            lines.append(
                f"{action} OUTPUT -o lo -p tcp {side} {port} -m statistic --mode random "
                f"--probability {impairment.duplicate:.6f} -j TEE --gateway {GATEWAY}"
            )
        lines.append("COMMIT")
    lines.append("*filter")
    for side in ("--dport", "--sport"):
        lines.append(f"{action} OUTPUT -o lo -p tcp {side} {port} -j NFQUEUE --queue-num {queue}")
    lines.append("COMMIT")
    return ("\n".join(lines) + "\n").encode()


class Link:
    """The namespace's ``lo`` as a bad link for one TCP port: :meth:`impair`, :meth:`heal`."""

    def __init__(self, backend: str, seed: int = 0) -> None:
        self.backend = backend
        self.seed = seed
        self.impairment: Impairment | None = None
        self._port = 0
        self._emulator: subprocess.Popen[str] | None = None
        self.emulator_report: dict[str, Any] = {}

    def impair(self, port: int, impairment: Impairment) -> None:
        assert self.impairment is None, "heal first"
        self.impairment, self._port = impairment, port
        if self.backend == "netem":
            _run("tc", "qdisc", "replace", "dev", "lo", "root", "netem", *impairment.netem_args())
            return
        command = [sys.executable, __file__, "emulate", "--seed", str(self.seed)]
        for name, value in asdict(impairment).items():
            command += [f"--{name}", repr(value)]
        self._emulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._emulator.stdout is not None
        if self._emulator.stdout.readline().strip() != "ready":
            raise RuntimeError("the NFQUEUE emulator did not start")
        subprocess.run(
            ["iptables-restore", "--noflush", "-w"],
            input=_rules(port, "-A", impairment, QUEUE),
            check=True,
            env={**os.environ, "PATH": TC_PATH},
        )

    def heal(self) -> dict[str, Any]:
        """Remove the impairment; what the emulator did (empty with kernel netem)."""
        impairment, self.impairment = self.impairment, None
        if impairment is None:
            return {}
        if self.backend == "netem":
            _run("tc", "qdisc", "del", "dev", "lo", "root", check=False)
            return {}
        duplicated = _tee_packets() if impairment.duplicate else 0
        subprocess.run(
            ["iptables-restore", "--noflush", "-w"],
            input=_rules(self._port, "-D", impairment, QUEUE),
            check=True,
            env={**os.environ, "PATH": TC_PATH},
        )
        emulator, self._emulator = self._emulator, None
        assert emulator is not None
        emulator.send_signal(signal.SIGTERM)
        out, _ = emulator.communicate(timeout=20)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        self.emulator_report = json.loads(lines[-1]) if lines else {"error": out[-500:]}
        self.emulator_report["duplicated"] = duplicated
        return self.emulator_report

    def close(self) -> None:
        if self._emulator is not None and self._emulator.poll() is None:
            self._emulator.kill()
            self._emulator.wait()


def cap_rate(bits_per_second: int, latency: float = 2.0) -> None:
    """``tbf`` on ``lo``: at most ``bits_per_second``; what would wait longer than
    ``latency`` is dropped, as at a router's full queue. The burst is ten full-size packets
    (the scenario gives ``lo`` Ethernet's MTU: tbf splits bigger GSO segments to it)."""
    _tbf("replace", f"{bits_per_second}bit", latency)


def restore_rate(latency: float = 2.0) -> dict[str, int]:
    """Lift the cap, keeping what is queued (deleting the qdisc would drop it all and cost
    TCP a retransmission timeout); what tbf dropped and delayed so far (``tc -s``)."""
    shown = _run("tc", "-s", "qdisc", "show", "dev", "lo", check=False).stdout
    _tbf("change", "10gbit", latency)
    words = shown.replace(",", " ").replace("(", " ").replace(")", " ").split()
    out: dict[str, int] = {}
    for key in ("dropped", "overlimits"):
        if key in words:
            out[key] = int(words[words.index(key) + 1])
    return out


def remove_qdisc() -> None:
    _run("tc", "qdisc", "del", "dev", "lo", "root", check=False)


def _tbf(verb: str, rate: str, latency: float) -> None:
    _run(
        "tc", "qdisc", verb, "dev", "lo", "root", "tbf",
        "rate", rate, "burst", "15000", "latency", f"{latency * 1000:g}ms",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description="the user-space netem (NFQUEUE); see the docstring"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("emulate")
    for name in ("loss", "delay", "jitter", "reorder", "duplicate"):
        run.add_argument(f"--{name}", type=float, default=0.0)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--queue", type=int, default=QUEUE)
    sub.add_parser("probe")
    args = parser.parse_args()
    if args.command == "probe":
        backend, reasons = probe()
        print(json.dumps({"backend": backend, "unavailable": reasons}))
        return
    impairment = Impairment(args.loss, args.delay, args.jitter, args.reorder, args.duplicate)
    print(json.dumps(emulate(impairment, args.seed, args.queue)), flush=True)


if __name__ == "__main__":
    main()
