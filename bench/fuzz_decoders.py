"""The long fuzz run: millions of hostile frames through both venues' decoders.

``python bench/fuzz_decoders.py`` (default 1,000,000 frames, seed 0);
``--frames N``, ``--seed S``, ``--venue alltick|tradovate|both``.

Frames come from ``tests/fuzz_frames.py`` (the builders the Hypothesis tests use),
driven by a seeded ``random.Random`` instead of Hypothesis: valid frames of every
kind, the same with fields corrupted, broken as text or bytes, and raw garbage.
``tests/fuzz_oracle.py`` judges each one: rejected (``ProtocolError``, the frame the
session counts as bad), accepted (every value that came out checked), an escaped
exception or an invalid value (both bugs; the first few are printed to stderr).
Venues alternate frame by frame.

Progress goes to stderr; the last stdout line is one JSON object: ``frames``,
``rejected``, ``accepted``, ``exceptions``, ``invalid``, ``seconds``,
``frames_per_s``, ``seed``, ``per_venue`` (the same counters by venue) and
``by_label`` (frames, rejected by how they were made). Exit status 1 when
anything escaped or came out invalid.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz_frames import VENUES, RandomSource, hostile_frame
from tests.fuzz_oracle import Decoders, Escaped

MAX_EXAMPLES = 10


def run(frames: int, seed: int, venues: tuple[str, ...], progress: bool = True) -> dict[str, Any]:
    src = RandomSource(random.Random(seed))
    decoders = Decoders()
    counts = {venue: Counter[str]() for venue in venues}
    labels: Counter[str] = Counter()
    rejected_labels: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    started = time.perf_counter()
    for n in range(frames):
        venue = venues[n % len(venues)]
        label, frame = hostile_frame(src, venue)
        labels[f"{venue}:{label}"] += 1
        try:
            verdict = "accepted" if decoders.judge(venue, frame) else "rejected"
        except Escaped as exc:
            verdict, why = "exceptions", str(exc)
        except AssertionError as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            verdict, why = "invalid", f"invalid value {str(exc)[:200]!r} ({where.line})"
        counts[venue][verdict] += 1
        if verdict == "rejected":
            rejected_labels[f"{venue}:{label}"] += 1
        elif verdict != "accepted" and counts[venue][verdict] <= MAX_EXAMPLES:
            example = {"venue": venue, "label": label, "error": why, "frame": repr(frame[:300])}
            examples.append(example)
            print(json.dumps(example), file=sys.stderr)
        if progress and n and n % 100_000 == 0:
            rate = n / (time.perf_counter() - started)
            print(f"{n:,} frames, {rate:,.0f}/s", file=sys.stderr)
    seconds = time.perf_counter() - started
    per_venue = {
        venue: {
            key: counts[venue][key] for key in ("rejected", "accepted", "exceptions", "invalid")
        }
        | {"frames": sum(counts[venue].values())}
        for venue in venues
    }
    total = {key: sum(v[key] for v in per_venue.values()) for key in next(iter(per_venue.values()))}
    return {
        "frames": total["frames"],
        "rejected": total["rejected"],
        "accepted": total["accepted"],
        "exceptions": total["exceptions"],
        "invalid": total["invalid"],
        "seconds": round(seconds, 2),
        "frames_per_s": round(total["frames"] / seconds) if seconds else None,
        "seed": seed,
        "per_venue": per_venue,
        "by_label": {
            label: {"frames": labels[label], "rejected": rejected_labels[label]}
            for label in sorted(labels)
        },
        "examples": examples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--venue", choices=(*VENUES, "both"), default="both")
    args = parser.parse_args(argv)
    venues = VENUES if args.venue == "both" else (args.venue,)
    summary = run(args.frames, args.seed, venues)
    print(json.dumps(summary, separators=(",", ":")))
    return 1 if summary["exceptions"] or summary["invalid"] else 0


if __name__ == "__main__":
    sys.exit(main())
