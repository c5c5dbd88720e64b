"""The media-layer fuzzer (run by tests/test_fuzz_media.py in a child process, so that a crash or a
hang in native code is seen, not suffered): mutated real and generated videos go through probe and
decode_video for a fixed time; every outcome must be a result or a MediaError.

    python -m tests.fuzz_media SECONDS SEED WORKDIR [SOURCE ...]

Writes WORKDIR/progress.json after every iteration (iterations, current case, failures)."""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from pathlib import Path

from engine.errors import MediaError
from engine.index.decode import decode_video
from engine.media.deadline import DeadlineToken


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of: bit flips, random byte runs, truncation, a duplicated or dropped chunk, a 32-bit
    field set to an extreme (header sizes and durations live in such fields)."""
    b = bytearray(data)
    kind = rng.randrange(6)
    n = len(b)
    if kind == 0:
        for _ in range(rng.randint(1, 64)):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif kind == 1:
        at = rng.randrange(n)
        b[at:at + rng.randint(1, 4096)] = rng.randbytes(rng.randint(1, 4096))
    elif kind == 2:
        b = b[: rng.randrange(1, n)]
    elif kind == 3:
        a, c = sorted(rng.randrange(n) for _ in range(2))
        b = b[:c] + b[a:c] + b[c:] if rng.random() < 0.5 else b[:a] + b[c:]
    elif kind == 4:
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(max(1, n - 4))
            b[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                       b"\x80\x00\x00\x00"])
    else:  # damage only the first 4 kB (headers)
        for _ in range(rng.randint(1, 32)):
            b[rng.randrange(min(n, 4096))] = rng.randrange(256)
    return bytes(b)


def main(argv: list[str]) -> int:
    seconds, seed, work = float(argv[0]), int(argv[1]), Path(argv[2])
    sources = [Path(p) for p in argv[3:]]
    data = [p.read_bytes() for p in sources]
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    t_end = time.monotonic() + seconds
    stats = {"iterations": 0, "media_errors": 0, "decoded": 0, "failures": [], "seed": seed,
             "sources": [p.name for p in sources], "slowest_s": 0.0}
    while time.monotonic() < t_end:
        i = stats["iterations"]
        src = rng.randrange(len(data))
        case = work / f"case{sources[src].suffix}"
        case.write_bytes(mutate(data[src], rng))
        stats["current"] = {"iteration": i, "source": sources[src].name}
        (work / "progress.json").write_text(json.dumps(stats))
        t0 = time.monotonic()
        try:
            decode_video(case, 4.0, 2, 64, token=DeadlineToken(None, 60.0, case.name))
            stats["decoded"] += 1
        except MediaError:
            stats["media_errors"] += 1
        except Exception as exc:  # anything else is a robustness bug: keep the input
            keep = work / f"failure{i}{sources[src].suffix}"
            keep.write_bytes(case.read_bytes())
            stats["failures"].append({"iteration": i, "file": keep.name, "error": repr(exc)[:300],
                                      "where": traceback.format_exc(limit=-3)[-800:]})
        stats["slowest_s"] = max(stats["slowest_s"], time.monotonic() - t0)
        stats["iterations"] += 1
    stats.pop("current", None)
    (work / "progress.json").write_text(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
