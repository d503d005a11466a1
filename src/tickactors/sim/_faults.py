"""Fault controls: the live knobs behind ``sim.faults``, and the random fault schedule.

Theory of operation
-------------------
Faults come in three shapes, and the server consults them at fixed points:

- **standing** faults hold until a time (or until switched off): ``stall``
  (checked by the writer and the streamer: nothing is written while it
  holds), ``silence_symbol`` (the streamer skips that code) and the ``ghost``
  rule (consulted when a replace or cancel removes codes).
- **counted** faults arm the next *n* occurrences of something, across all
  connections: ``lose_acks``, ``drop_requests``, ``delay_acks`` (the next
  answers / requests), ``accept_then_close`` and ``hang_upgrade`` (the next
  connections). The server *takes* one with ``take_*`` when the occasion comes.
- **one-shot** faults act at once on every live connection: ``drop``,
  ``kick``, ``malformed``, ``expire_token``; ``set_max_age`` changes a limit.
- **Tradovate only**: ``p_ticket`` and ``rate_limit_429`` are counted (the next
  *n* requests, WebSocket or REST, get a penalty ticket / a 429 and are not
  applied; authorize and REST GETs never take a ticket); ``shutdown`` is
  one-shot (every connection that has a shutdown notice gets it; AllTick
  connections ignore it), and so is ``close_frame_keep_open`` (``c[code,"reason"]``
  and then silence, the socket left open until the client closes it);
  ``drop_after_order`` is counted (the next *n* order-placing requests: the
  connection that sent one is dropped, without a close frame and without an
  answer, either before the order is accepted or right after). What ``kick``,
  ``malformed``, ``expire_token`` and the ages look like there is in
  ``_tradovate_connection``.

Every call is counted in ``stats.faults_injected[kind]`` and logged in ``stats.fault_log``
as ``(trio time, kind, detail)``, once per call; ``armed(kind)`` says what is still to come.

The simulator's own picks, where no venue document says what happens: during a
stall, inbound requests are read and discarded (not applied, not answered), but
accepted-looking heartbeats still refresh the server's heartbeat clock, so a stall
alone never makes the server drop a client; handshakes still complete during a
stall. The ghost rule stays armed until ``clear_ghost()``/``clear()`` (or
``armed_for`` seconds); each code it catches streams on for ``duration`` seconds
after its removal (``None``: as long as the connection lives).

Random mode (``SimConfig.random_faults`` = mean seconds between faults) draws exponential
gaps and a weighted kind from :data:`RANDOM_MENU` (:data:`TRADOVATE_RANDOM_MENU` on the
Tradovate venue), with bounded parameters, from a random stream derived from the seed
alone: the fault log of a run is the same for the same seed and client behaviour.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import attrs
import trio

from ._hub import CloseFrameCapable, Hub, ShutdownCapable

RANDOM_MENU: Final = (
    ("stall", 3),
    ("drop", 2),
    ("silence_symbol", 3),
    ("ghost", 1),
    ("lose_acks", 2),
    ("drop_requests", 1),
    ("delay_acks", 2),
    ("kick", 1),
    ("malformed", 2),
    ("accept_then_close", 1),
    ("hang_upgrade", 1),
)
TRADOVATE_RANDOM_MENU: Final = (
    *RANDOM_MENU,
    ("p_ticket", 1),
    ("rate_limit_429", 1),
    ("shutdown", 1),
    ("close_frame_keep_open", 1),
)
SHUTDOWN_REASONS: Final = ("Maintenance", "ConnectionQuotaReached", "IPQuotaReached")


@attrs.frozen(slots=True)
class GhostRule:
    """The armed ghost fault: which codes (None: every removed one), how long each keeps
    streaming after its removal (None: while the connection lives), and until when the
    rule itself holds (trio time; inf until ``clear_ghost()``)."""

    symbols: frozenset[str] | None
    duration: float | None
    until: float


def _count(n: int) -> int:
    """``n``, the number of occurrences a counted fault arms; never negative."""
    if n < 0:
        raise ValueError(f"a fault count must be >= 0, got {n}")
    return n


class Faults:
    """Live fault controls of one simulator (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._stall_until = -math.inf
        self._stall_changed = trio.Event()
        self._silenced: dict[str, float] = {}
        self._ghost: GhostRule | None = None
        self._lose_acks = 0
        self._drop_requests = 0
        self._delays: list[list[float]] = []  # [seconds, remaining]
        self._accept_then_close = 0
        self._hang_upgrade = 0
        self._tickets: list[tuple[float, bool]] = []  # (p-time, captcha), one per request
        self._too_many = 0
        self._order_drops: list[bool] = []  # accepted?, one per order-placing request

    # ---- controls --------------------------------------------------------------

    def stall(self, duration: float | None = None) -> None:
        """Every connection goes silent for ``duration`` seconds (None: until ``resume()``)."""
        now = trio.current_time()
        self._stall_until = math.inf if duration is None else now + duration
        self._signal_stall()
        self._hub.record_fault("stall", f"duration={duration}")

    def resume(self) -> None:
        """End a stall now."""
        self._stall_until = -math.inf
        self._signal_stall()

    def drop(self) -> None:
        """Reset every connection's TCP, no close frame."""
        self._hub.record_fault("drop", f"connections={len(self._hub.connections)}")
        for conn in list(self._hub.connections.values()):
            conn.abort("drop")

    def accept_then_close(self, n: int = 1) -> None:
        """The next ``n`` connections complete the handshake, then get close frame 1000."""
        self._accept_then_close += _count(n)
        self._hub.record_fault("accept_then_close", f"n={n}")

    def hang_upgrade(self, n: int = 1) -> None:
        """The next ``n`` TCP connections never get an answer to their upgrade request."""
        self._hang_upgrade += _count(n)
        self._hub.record_fault("hang_upgrade", f"n={n}")

    def silence_symbol(self, symbol: str, duration: float | None = None) -> None:
        """``symbol`` stops streaming on every connection while others flow."""
        now = trio.current_time()
        self._silenced[symbol] = math.inf if duration is None else now + duration
        self._hub.record_fault("silence_symbol", f"{symbol} duration={duration}")

    def ghost(
        self,
        symbols: Iterable[str] | None = None,
        duration: float | None = None,
        *,
        armed_for: float | None = None,
    ) -> None:
        """Codes removed by a replace or cancel keep streaming for ``duration`` seconds.

        ``symbols`` limits the rule to those codes (None: every removed code).
        The rule holds until ``clear_ghost()`` or for ``armed_for`` seconds.
        """
        chosen = None if symbols is None else frozenset(symbols)
        until = math.inf if armed_for is None else trio.current_time() + armed_for
        self._ghost = GhostRule(chosen, duration, until)
        shown = "all" if chosen is None else ",".join(sorted(chosen))
        self._hub.record_fault("ghost", f"{shown} duration={duration}")

    def clear_ghost(self) -> None:
        """Disarm the ghost rule (codes already ghosting finish their time)."""
        self._ghost = None

    def lose_acks(self, n: int = 1) -> None:
        """The next ``n`` requests are processed but their answers are never sent."""
        self._lose_acks += _count(n)
        self._hub.record_fault("lose_acks", f"n={n}")

    def drop_requests(self, n: int = 1) -> None:
        """The next ``n`` requests are neither applied nor answered."""
        self._drop_requests += _count(n)
        self._hub.record_fault("drop_requests", f"n={n}")

    def delay_acks(self, seconds: float, n: int = 1) -> None:
        """The next ``n`` answers go out ``seconds`` late (pushes keep flowing)."""
        if n > 0:
            self._delays.append([seconds, _count(n)])
        self._hub.record_fault("delay_acks", f"seconds={seconds} n={n}")

    def kick(self) -> None:
        """Send 606 to every connection, then close it (close frame 1008)."""
        self._hub.record_fault("kick", f"connections={len(self._hub.connections)}")
        for conn in list(self._hub.connections.values()):
            conn.kick()

    def set_max_age(self, seconds: float | None) -> None:
        """Close connections older than ``seconds`` (close frame 1000 "max age"); None = off."""
        self._hub.max_age = seconds
        self._hub.record_fault("max_age", f"seconds={seconds}")
        for conn in list(self._hub.connections.values()):
            conn.limits_changed()

    def malformed(self, n: int = 1) -> None:
        """Send ``n`` bad frames to every connection (kinds cycle through the list)."""
        self._hub.record_fault("malformed", f"n={n}")
        for conn in list(self._hub.connections.values()):
            conn.send_malformed(_count(n))

    def expire_token(self, token: str) -> None:
        """Close every connection using ``token`` (401 first) and refuse it from now on."""
        self._hub.expired_tokens.add(token)
        users = [c for c in self._hub.connections.values() if c.uses_token(token)]
        self._hub.record_fault("expire_token", f"connections={len(users)}")
        for conn in users:
            conn.expire_token()

    def p_ticket(self, n: int = 1, p_time: float | None = None, captcha: bool = False) -> None:
        """The next ``n`` Tradovate requests get a penalty ticket instead of being applied.

        ``p_time`` defaults to 60 s (3600 s with ``captcha``). A resend of the same
        request carrying the ticket is applied once ``p_time`` has passed; sooner, it
        gets a fresh ticket and counts as a ``penalty_ignored`` violation.
        """
        seconds = p_time if p_time is not None else (3600.0 if captcha else 60.0)
        if not seconds >= 0:
            raise ValueError(f"p_time must be >= 0, got {seconds}")
        self._tickets.extend([(seconds, captcha)] * _count(n))
        self._hub.record_fault("p_ticket", f"n={n} p_time={seconds} captcha={captcha}")

    def rate_limit_429(self, n: int = 1) -> None:
        """The next ``n`` Tradovate requests (WebSocket or REST) are answered 429, not applied."""
        self._too_many += _count(n)
        self._hub.record_fault("rate_limit_429", f"n={n}")

    def drop_after_order(self, accepted: bool, n: int = 1) -> None:
        """The next ``n`` order-placing Tradovate requests drop their connection.

        The TCP connection is reset without a close frame and without an answer.
        ``accepted=False``: before the order is accepted (it never exists);
        ``accepted=True``: right after (it exists, works and fills; the client
        never hears of it on that connection).
        """
        self._order_drops.extend([accepted] * _count(n))
        self._hub.record_fault("drop_after_order", f"accepted={accepted} n={n}")

    def shutdown(self, reason_code: str = "Maintenance", reason: str | None = None) -> None:
        """Every Tradovate connection gets a ``shutdown`` event, then ``c[...]`` and close."""
        if reason_code not in SHUTDOWN_REASONS:
            raise ValueError(f"reason_code must be one of {SHUTDOWN_REASONS}, not {reason_code!r}")
        text = reason if reason is not None else f"Server shutdown: {reason_code}"
        targets = [c for c in self._hub.connections.values() if isinstance(c, ShutdownCapable)]
        self._hub.record_fault("shutdown", f"{reason_code} connections={len(targets)}")
        for conn in targets:
            conn.shutdown(reason_code, text)

    def close_frame_keep_open(self, code: int = 3000, reason: str = "Session closed") -> None:
        """Every Tradovate connection gets ``c[code,"reason"]`` and then nothing more, with
        its socket left open: its session is over, and only the client's staleness clock or
        its reading of the close frame ends it (AllTick connections ignore this)."""
        targets = [c for c in self._hub.connections.values() if isinstance(c, CloseFrameCapable)]
        self._hub.record_fault("close_frame_keep_open", f"{code} connections={len(targets)}")
        for conn in targets:
            conn.close_frame_keep_open(code, reason)

    def clear(self) -> None:
        """Switch off every standing and counted fault."""
        self.resume()
        self._silenced.clear()
        self._ghost = None
        self._lose_acks = self._drop_requests = 0
        self._accept_then_close = self._hang_upgrade = 0
        self._delays.clear()
        self._tickets.clear()
        self._too_many = 0
        self._order_drops.clear()

    def armed(self, kind: str) -> int:
        """How many occurrences of the counted fault ``kind`` are still to come."""
        counts = {
            "lose_acks": self._lose_acks,
            "drop_requests": self._drop_requests,
            "delay_acks": sum(int(remaining) for _, remaining in self._delays),
            "accept_then_close": self._accept_then_close,
            "hang_upgrade": self._hang_upgrade,
            "p_ticket": len(self._tickets),
            "rate_limit_429": self._too_many,
            "drop_after_order": len(self._order_drops),
        }
        if kind not in counts:
            raise ValueError(f"{kind!r} is not a counted fault; counted: {', '.join(counts)}")
        return counts[kind]

    # ---- queries used by the server --------------------------------------------

    def _signal_stall(self) -> None:
        """Wake whoever waits in :meth:`wait_unstalled`: the stall's end moved."""
        self._stall_changed.set()
        self._stall_changed = trio.Event()

    def stalled(self) -> bool:
        """Whether a stall holds now: writers write nothing, readers discard requests."""
        return trio.current_time() < self._stall_until

    async def wait_unstalled(self) -> None:
        """Return once no stall holds: at its end, or at once on ``resume()`` (or a
        new ``stall()`` that moved the end)."""
        while self.stalled():
            with trio.move_on_at(self._stall_until):
                await self._stall_changed.wait()

    def silenced(self, symbol: str, now: float) -> bool:
        """Whether ``silence_symbol`` keeps ``symbol`` off every connection at ``now``."""
        until = self._silenced.get(symbol)
        return until is not None and now < until

    def ghost_until(self, symbol: str, now: float) -> float | None:
        """If ``symbol``, removed now, must ghost: until when; else None."""
        rule = self._ghost
        if rule is None or now >= rule.until:
            return None
        if rule.symbols is not None and symbol not in rule.symbols:
            return None
        return math.inf if rule.duration is None else now + rule.duration

    def take_drop_request(self) -> bool:
        """For the request at hand: True (one ``drop_requests`` used up) to neither apply
        nor answer it."""
        if self._drop_requests:
            self._drop_requests -= 1
            return True
        return False

    def take_answer_fault(self) -> Literal["lose"] | float | None:
        """For the answer about to go out: ``"lose"``, a delay in seconds, or None."""
        if self._lose_acks:
            self._lose_acks -= 1
            return "lose"
        if self._delays:
            entry = self._delays[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._delays.pop(0)
            return entry[0]
        return None

    def take_accept_then_close(self) -> bool:
        """For the connection at hand: True to close it right after its handshake."""
        if self._accept_then_close:
            self._accept_then_close -= 1
            return True
        return False

    def take_hang_upgrade(self) -> bool:
        """For the upgrade request at hand: True to never answer it."""
        if self._hang_upgrade:
            self._hang_upgrade -= 1
            return True
        return False

    def take_p_ticket(self) -> tuple[float, bool] | None:
        """``(p_time, captcha)`` if the request at hand must get a penalty ticket."""
        return self._tickets.pop(0) if self._tickets else None

    def take_429(self) -> bool:
        """For the Tradovate request at hand: True to answer it 429 and not apply it."""
        if self._too_many:
            self._too_many -= 1
            return True
        return False

    def take_drop_after_order(self) -> bool | None:
        """For the order-placing request at hand: drop its connection before (False) or
        after (True) accepting it, or None (no fault)."""
        return self._order_drops.pop(0) if self._order_drops else None

    # ---- random mode -----------------------------------------------------------

    def inject_random(
        self,
        rng: random.Random,
        symbols: Iterable[str],
        menu: Sequence[tuple[str, int]] | None = None,
    ) -> str:
        """Inject one random fault with bounded parameters; returns its kind.

        ``menu`` defaults to the venue's (:data:`RANDOM_MENU` or
        :data:`TRADOVATE_RANDOM_MENU`).
        """
        if menu is None:
            menu = TRADOVATE_RANDOM_MENU if self._hub.venue == "tradovate" else RANDOM_MENU
        kinds = [k for k, _ in menu]
        kind = rng.choices(kinds, weights=[w for _, w in menu])[0]
        duration = round(rng.uniform(5.0, 15.0), 3)
        n = rng.randint(1, 3)
        pick = rng.random()
        candidates = sorted(symbols)
        if kind == "stall":
            self.stall(duration)
        elif kind == "drop":
            self.drop()
        elif kind == "silence_symbol":
            if candidates:
                self.silence_symbol(candidates[int(pick * len(candidates))], duration)
            else:
                self._hub.record_fault("silence_symbol", "nothing subscribed")
        elif kind == "ghost":
            self.ghost(None, duration, armed_for=30.0)
        elif kind == "lose_acks":
            self.lose_acks(min(n, 2))
        elif kind == "drop_requests":
            self.drop_requests(1)
        elif kind == "delay_acks":
            self.delay_acks(round(1.0 + 4.0 * pick, 3), min(n, 2))
        elif kind == "kick":
            self.kick()
        elif kind == "malformed":
            self.malformed(n)
        elif kind == "accept_then_close":
            self.accept_then_close(min(n, 2))
        elif kind == "p_ticket":
            self.p_ticket(1, p_time=round(1.0 + 9.0 * pick, 3))
        elif kind == "rate_limit_429":
            self.rate_limit_429(min(n, 2))
        elif kind == "shutdown":
            self.shutdown(SHUTDOWN_REASONS[int(pick * len(SHUTDOWN_REASONS))])
        elif kind == "close_frame_keep_open":
            self.close_frame_keep_open()
        else:
            self.hang_upgrade(1)
        return kind


async def run_random_faults(faults: Faults, hub: Hub, mean: float, purpose: str = "faults") -> None:
    """Inject a random fault every ``Exp(mean)`` seconds, forever (rng derived from the seed)."""
    if not mean > 0:
        raise ValueError(f"the mean time between random faults must be > 0, got {mean}")
    rng = hub.rng(purpose)
    while True:
        await trio.sleep(rng.expovariate(1.0 / mean))
        symbols: set[str] = set()
        for conn in hub.connections.values():
            symbols |= conn.subscribed()
        faults.inject_random(rng, symbols)
