"""Distributed indexing on Ray: overhead against a local run of the same files in the same run,
per-worker throughput, the single writer's rate, and an estimate for a 10,000-hour archive.

Usage: python bench/bench_ray.py [--workers 2] [--transcribe] [--files N]
Writes bench/results/ray.json. Needs the cluster extra (pip install 'mmvsearch[cluster]').
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save, video_paths
from engine.api import Library
from engine.jobs import CancelToken

ARCHIVE_HOURS = 10_000


def timed_index(root: Path, paths: list[Path], transcribe: bool, ray=None) -> dict:
    """Wall time of one indexing run from a fresh library, and when the first video landed."""
    shutil.rmtree(root, ignore_errors=True)
    lib = Library(root, device="cpu")
    t0 = time.perf_counter()
    first = None
    last = None
    for p in lib.index(paths, CancelToken(), transcribe=transcribe, ray=ray):
        if first is None and p.info.get("files_done", 0) >= 1:
            first = time.perf_counter() - t0
        last = p
    wall = time.perf_counter() - t0
    lib.close()
    secs = last.info.get("video_seconds", 0.0)
    return {"wall_s": wall, "first_video_s": first, "video_seconds": secs, "x_realtime": secs / wall,
            "files": last.info.get("files_done", 0), "errors": last.info.get("errors", 0)}


def writer_rate(root: Path, n_videos: int = 40, clips_per_video: int = 150) -> dict:
    """The driver's own cost per video (one transaction with features and four vector sets, then
    the HNSW adds): what bounds a cluster however many workers it has. Synthetic features of the
    real shapes; a 10-minute video at 4 s clips has 150 clips."""
    from engine.index.indexer import IndexWriter
    from engine.index.store import VideoResult
    from engine.models.config import get_config

    shutil.rmtree(root, ignore_errors=True)
    lib = Library(root, device="cpu")
    cfg = get_config(lib.model_name)
    rng = np.random.default_rng(0)
    with lib.db.conn:
        sql = "INSERT INTO videos(path, size, mtime, phash, status) VALUES (?, 1, 0, ?, 'pending')"
        ids = [lib.db.conn.execute(sql, (f"/synthetic/{i}.mp4", f"synthetic-{i}")).lastrowid for i in range(n_videos)]
    writer = IndexWriter(lib, lib.base_model_id, 4.0, n_videos, {})
    n = clips_per_video
    results = []
    for vid in ids:
        emb = {(s, m): _unit(rng, n, cfg.va_dim if s == "va" else cfg.vat_dim)
               for s in ("va", "vat") for m in ("video", "audio")}
        results.append(VideoResult(vid, [(4.0 * i, 4.0 * i + 4) for i in range(n)],
                                   rng.standard_normal((n, cfg.frames_per_clip, 1280)).astype(np.float32),
                                   rng.standard_normal((n, 2048)).astype(np.float32), emb,
                                   {"duration": 4.0 * n, "width": 1280, "height": 720, "fps": 30.0, "rotation": 0,
                                    "has_audio": True}))
    t0 = time.perf_counter()
    for r in results:
        writer.write(r)
    writer.close()
    wall = time.perf_counter() - t0
    lib.close()
    video_s = n_videos * n * 4.0
    return {"videos": n_videos, "clips_per_video": n, "wall_s": wall, "clips_per_s": n_videos * n / wall,
            "video_hours_per_hour": video_s / wall}


def _unit(rng, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def estimate(per_worker_x: float, writer_x: float, workers_per_machine: int) -> list[dict]:
    """Hours to index the archive on N machines: workers add up until the writer saturates."""
    rows = []
    for machines in (1, 4, 16, 64):
        cluster_x = min(per_worker_x * workers_per_machine * machines, writer_x)
        rows.append({"machines": machines, "workers": machines * workers_per_machine,
                     "x_realtime": cluster_x, "hours": ARCHIVE_HOURS / cluster_x,
                     "writer_bound": cluster_x >= writer_x})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--transcribe", action="store_true")
    ap.add_argument("--files", type=int, default=0, help="only the first N shared videos (0: all)")
    args = ap.parse_args()
    from engine.index.distributed import RayOptions, connect, wait_started

    paths = video_paths()
    paths = paths[:args.files] if args.files else paths
    tmp = Path(tempfile.mkdtemp(prefix="mmv-bench-ray-"))
    load = os.getloadavg()
    local = timed_index(tmp / "local", paths, args.transcribe)
    options = RayOptions("local", workers=args.workers)
    t0 = time.perf_counter()
    wait_started(connect(options))
    runtime_s = time.perf_counter() - t0
    distributed = timed_index(tmp / "ray", paths, args.transcribe, ray=options)
    steady = distributed["video_seconds"] / max(1e-9, distributed["wall_s"] - (distributed["first_video_s"] or 0))
    writer = writer_rate(tmp / "writer")
    per_worker_x = steady / args.workers
    out = {"files": len(paths), "transcribe": args.transcribe, "workers": args.workers,
           "loadavg_before": load, "loadavg_after": os.getloadavg(), "local": local,
           "ray": {**distributed, "runtime_start_s": runtime_s, "steady_x_realtime": steady},
           "overhead_ratio": distributed["wall_s"] / local["wall_s"], "per_worker_x_realtime": per_worker_x,
           "writer": writer, "estimate_10k_hours": estimate(per_worker_x, writer["video_hours_per_hour"], 8)}
    print(save("ray" + ("_transcribe" if args.transcribe else ""), out))
    for k in ("local", "ray"):
        print(k, {kk: round(v, 2) if isinstance(v, float) else v for kk, v in out[k].items()})
    print("overhead", round(out["overhead_ratio"], 2), "writer", {k: round(v, 1) for k, v in writer.items()})
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
