"""Transcript search cost as the library grows: per-query time with the in-memory segment
vectors (the searcher's cache) and without (every vector read from SQLite), on a synthetic
library of N segments (random 384-d vectors, short texts; no models needed).

    python bench/bench_transcripts.py [--segments 50000] [--queries 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save
from engine.index.db import connect, transaction
from engine.speech.store import SegmentVectors, transcript_hits

WORDS = ["dog", "bark", "budget", "music", "speech", "birthday", "cake", "beach", "wave", "car", "engine",
         "rain", "child", "laugh"]


def fill(db, n_segments: int, per_video: int = 500, dim: int = 384) -> None:
    rng = np.random.default_rng(0)
    with transaction(db) as conn:
        for v in range(0, n_segments, per_video):
            cur = conn.execute("INSERT INTO videos(path, size, mtime, phash, duration, status) "
                               "VALUES (?, 1, 0, ?, ?, 'done')", (f"/v/{v}.mp4", f"h{v}", per_video * 5.0))
            vid = cur.lastrowid
            conn.executemany("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                             [(vid, i, i * 4.0, i * 4.0 + 4.0) for i in range(per_video * 5 // 4)])
            vecs = rng.standard_normal((per_video, dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            conn.executemany(
                "INSERT INTO transcripts(video_id, kind, start, end, text, vec) VALUES (?, 'said', ?, ?, ?, ?)",
                [(vid, i * 5.0, i * 5.0 + 4.0, " ".join(rng.choice(WORDS, 6)), vecs[i].tobytes())
                 for i in range(per_video)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=50000)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "library.db")
        fill(db, args.segments)
        cache, timings = SegmentVectors(), {"sqlite_scan_ms": [], "cached_ms": []}
        t0 = time.perf_counter()
        cache.get(db.conn, 384)
        first_load = time.perf_counter() - t0
        for _ in range(args.queries):
            q = rng.standard_normal(384).astype(np.float32)
            text = " ".join(rng.choice(WORDS, 2))
            for key, vectors in (("sqlite_scan_ms", None), ("cached_ms", cache)):
                t0 = time.perf_counter()
                transcript_hits(db.conn, text, q, vectors=vectors)
                timings[key].append(1000 * (time.perf_counter() - t0))
        db.conn.close()
    out = {"segments": args.segments, "cache_load_s": round(first_load, 2),
           **{k: round(float(np.median(v)), 1) for k, v in timings.items()}}
    save("transcripts", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
