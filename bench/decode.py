"""Per-tick decode alternatives on our real AllTick 22998 frames: ``python bench/decode.py``.

The frames are the replay server's (``bench/_server.py``: the simulator's market and
encoder, "mixed" wire variants: ``seq``/``tick_time`` as int or string, seconds or
milliseconds). Every alternative must build the same ``Tick`` (same symbol, exact
``Decimal`` price/volume/turnover, seconds, seq) as the current decoder; the table
says how many frames differ. Nothing in ``src`` changes: this only measures.

alternatives
    ``orjson.loads`` alone (no values built: the floor of the JSON route);
    ``dialect.decode``: the current full path (orjson + dispatch + ``_trade`` builder,
    ``venues/_alltick.py``);
    ``orjson + _trade``: the builder without the dispatch;
    ``msgspec typed``: ``msgspec.json.Decoder`` into Structs with ``Decimal`` fields,
    then ``Tick`` (range checks as ours);
    ``msgspec only``: the typed decode without building ``Tick``;
    ``cattrs``: ``orjson.loads`` + ``cattrs`` structuring into an attrs class, then ``Tick``.

Each figure is the median of ``--repeat`` passes over all frames, in ns per frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import orjson

from _server import payloads
from tickactors._errors import ProtocolError
from tickactors._values import Tick
from tickactors.venues import AllTick
from tickactors.venues._alltick import _ZERO, _data, _decimal, _seconds, _trade
from tickactors.venues._alltick_trades import take_trades
from tickactors.venues._dialect import MAX_NUMBER, MIN_PRICE, MarketBatch

CODES = ("700.HK", "BTCUSDT", "ETHUSDT", "EURUSD")

try:
    import msgspec
except ImportError:  # the bench extra is not installed
    msgspec = None  # type: ignore[assignment]
try:
    import cattrs
except ImportError:
    cattrs = None  # type: ignore[assignment]

if msgspec is not None:

    class Data(msgspec.Struct):
        code: str
        price: Decimal
        seq: int | str | None = None
        tick_time: int | str | None = None
        volume: Decimal | None = None
        turnover: Decimal | None = None
        trade_direction: int | None = None

    class Push(msgspec.Struct):
        cmd_id: int
        data: Data


@attrs.define
class TradeData:
    code: str
    price: Decimal
    seq: int | None = None
    tick_time: int | None = None
    volume: Decimal | None = None
    turnover: Decimal | None = None
    trade_direction: int | None = None


def _dec(value: Any, what: str, *, positive: bool) -> Decimal:
    """``Decimal`` values (msgspec, cattrs made them) get our range checks; others ours."""
    if type(value) is Decimal:
        low = MIN_PRICE if positive else _ZERO
        if not value.is_finite() or not low <= value < MAX_NUMBER:
            raise ProtocolError(f"{what} out of range")
        return value
    return _decimal(value, what, positive=positive)


def _tick(code: str, price: Any, volume: Any, tick_time: Any, seq: Any, turnover: Any,
          direction: Any, now: float) -> Tick:  # fmt: skip
    fields: dict[str, Any] = {}
    if turnover is not None:
        fields["turnover"] = _dec(turnover, "turnover", positive=False)
    if direction is not None:
        fields["trade_direction"] = direction
    return Tick(
        code,
        _dec(price, "price", positive=True),
        None if volume is None else _dec(volume, "volume", positive=False),
        _seconds(tick_time),
        int(seq) if seq is not None else None,
        now,
        fields,
    )


def alternatives() -> tuple[dict[str, Callable[[str], Any]], dict[str, str]]:
    dialect = AllTick(url="wss://example.invalid/quote-b-ws-api", token="t").dialect
    out: dict[str, Callable[[str], Any]] = {}
    notes: dict[str, str] = {}
    loads = orjson.loads

    def full(frame: str) -> Any:
        batch = MarketBatch()
        dialect.decode(frame, 0.0, batch)
        return batch.trades[0]

    def general(frame: str) -> Any:
        batch = MarketBatch()
        dialect.decode_general(frame, 0.0, batch)
        return batch.trades[0]

    out["orjson.loads only"] = loads
    out["dialect.decode (current)"] = full
    out["dialect.decode_general (before)"] = general
    out["orjson + _trade builder"] = lambda frame: _trade(_data(loads(frame)), 0.0)
    if msgspec is None:
        notes["msgspec"] = "skipped: msgspec does not import"
    else:
        decoder = msgspec.json.Decoder(Push)
        decode = decoder.decode

        def typed(frame: str) -> Tick:
            d = decode(frame).data
            return _tick(d.code, d.price, d.volume, d.tick_time, d.seq, d.turnover,
                         d.trade_direction, 0.0)  # fmt: skip

        out["msgspec typed + Tick"] = typed
        out["msgspec typed only"] = decode
    if cattrs is None:
        notes["cattrs"] = "skipped: cattrs does not import"
    else:
        converter = cattrs.Converter()
        converter.register_structure_hook(Decimal, lambda v, _: Decimal(str(v)))
        structure = converter.structure

        def with_cattrs(frame: str) -> Tick:
            d = structure(loads(frame)["data"], TradeData)
            return _tick(d.code, d.price, d.volume, d.tick_time, d.seq, d.turnover,
                         d.trade_direction, 0.0)  # fmt: skip

        out["orjson + cattrs + Tick"] = with_cattrs
    return out, notes


def measure(frames: list[str], repeat: int) -> dict[str, Any]:
    funcs, notes = alternatives()
    reference = [_trade(_data(orjson.loads(f)), 0.0) for f in frames]
    rows: dict[str, Any] = {"take_trades, batches of 128 (reader)": _batched(frames, repeat)}
    for name, func in funcs.items():
        passes = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for frame in frames:
                func(frame)
            passes.append((time.perf_counter() - t0) / len(frames) * 1e9)
        built = [func(f) for f in frames]
        differ = sum(
            not isinstance(b, Tick) or _key(b) != _key(r)
            for b, r in zip(built, reference, strict=True)
        )
        rows[name] = {
            "ns_per_frame": round(statistics.median(passes)),
            "builds_tick": isinstance(built[0], Tick),
            "frames_differing": differ if isinstance(built[0], Tick) else None,
        }
    return {"frames": len(frames), "repeat": repeat, "results": rows, "notes": notes}


def _batched(frames: list[str], repeat: int) -> dict[str, Any]:
    batches = [frames[i : i + 128] for i in range(0, len(frames), 128)]
    passes = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for batch in batches:
            take_trades(batch, 0, 0.0, [])
        passes.append((time.perf_counter() - t0) / len(frames) * 1e9)
    built: list[Tick] = []
    for batch in batches:
        take_trades(batch, 0, 0.0, built)
    reference = [_trade(_data(orjson.loads(f)), 0.0) for f in frames]
    differ = (
        len(frames)
        - len(built)
        + sum(_key(b) != _key(r) for b, r in zip(built, reference, strict=False))
    )
    return {"ns_per_frame": round(statistics.median(passes)), "builds_tick": True,
            "frames_differing": differ}  # fmt: skip


def _key(t: Tick) -> tuple[Any, ...]:
    return (t.symbol, t.price, t.volume, t.exchange_time, t.seq, dict(t.fields))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/decode.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--frames", type=int, default=16384, help="frames (default 16384)")
    parser.add_argument("--repeat", type=int, default=7, help="passes per alternative")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    frames = [frame.decode() for frame in payloads(CODES, args.frames, 0)]
    result = measure(frames, args.repeat)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['frames']:,} AllTick 22998 frames, median of {args.repeat} passes")
    print("| alternative | ns/frame | builds Tick | frames differing from ours |")
    print("|---|---:|---|---:|")
    for name, row in result["results"].items():
        differ = "-" if row["frames_differing"] is None else row["frames_differing"]
        yes = "yes" if row["builds_tick"] else "no"
        print(f"| {name} | {row['ns_per_frame']:,} | {yes} | {differ} |")
    for name, note in result["notes"].items():
        print(f"{name}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
