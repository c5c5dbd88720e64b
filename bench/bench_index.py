"""Indexing speed on ../shared/media: x real time, ratio to decoding alone, peak memory.

Usage: python bench/bench_index.py [--library DIR] [--transcribe] [--device cpu|cuda|mps]
Builds (or reuses, with --keep) a library of the shared videos used by the retrieval benchmarks.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MEDIA, save, videos
from engine.api import Library
from engine.index.decode import decode_video
from engine.jobs import CancelToken
from engine.models.config import get_config

DEFAULT_LIB = Path("/tmp/mmvsearch-bench-lib")


def decode_only(paths: list[Path], clip_seconds: float) -> float:
    cfg = get_config("mmv-base")
    t0 = time.perf_counter()
    for p in paths:
        decode_video(p, clip_seconds, cfg.frames_per_clip, cfg.image_size, cfg.sample_rate)
    return time.perf_counter() - t0


def build_library(root: Path, transcribe: bool = False, fresh: bool = True,
                  device: str = "cpu") -> tuple[Library, dict]:
    if fresh and root.exists():
        shutil.rmtree(root)
    lib = Library(root, device=device)
    t0 = time.perf_counter()
    lib.load_models().load_all()  # towers load lazily; time them apart from indexing
    load_s = time.perf_counter() - t0
    paths = [MEDIA / v["path"] for v in videos()]
    t0 = time.perf_counter()
    last = None
    for progress in lib.index(paths, CancelToken(), transcribe=transcribe):
        last = progress
    index_s = time.perf_counter() - t0
    return lib, {"model_load_s": load_s, "index_s": index_s, "files": last.info.get("files_done", 0),
                 "clips": last.info.get("clips", 0), "video_seconds": last.info.get("video_seconds", 0.0),
                 "errors": last.info.get("errors", 0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--transcribe", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=int, default=1, help="index from scratch this many times; report the median")
    args = ap.parse_args()
    paths = [MEDIA / v["path"] for v in videos()]
    runs = []
    for _ in range(args.runs):
        lib, stats = build_library(args.library, transcribe=args.transcribe, device=args.device)
        dec_s = decode_only(paths, lib.settings.clip_seconds)  # in the same run, for the ratio
        lib.close()
        runs.append({**stats, "decode_only_s": dec_s, "x_realtime": stats["video_seconds"] / stats["index_s"],
                     "decode_x_realtime": stats["video_seconds"] / dec_s,
                     "index_over_decode": stats["index_s"] / dec_s})
        if len(runs) == 1:  # later runs in this process keep earlier models alive: peak of one run
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = sorted(runs, key=lambda r: r["x_realtime"])[len(runs) // 2]
    out = {**median, "runs_x_realtime": [round(r["x_realtime"], 2) for r in runs],
           "peak_rss_mb": peak_mb, "transcribe": args.transcribe, "device": args.device}
    name = "index_transcribe" if args.transcribe else "index"
    print(save(name if args.device == "cpu" else f"{name}_{args.device}", out))
    for k, v in out.items():
        print(f"{k:>20}: {v:.3f}" if isinstance(v, float) else f"{k:>20}: {v}")


if __name__ == "__main__":
    main()
