"""Indexing speed on ../shared/media: x real time, ratio to decoding alone, peak memory.

Usage: python bench/bench_index.py [--library DIR] [--transcribe] [--device cpu|cuda|mps] [--runs N] [--long]
                                  [--out NAME]
Builds a library of the shared videos used by the retrieval benchmarks (``--long``: of two generated
10-minute 720p30 and 1080p30 H.264 videos with speech, bench/long_media.py, cached in /tmp).
Reports wall time and the process's CPU time (user + sys) of indexing, with the load average:
on a shared machine the wall time depends on the others' load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save, video_paths
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


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_library(root: Path, transcribe: bool = False, fresh: bool = True,
                  device: str = "cpu", paths: list[Path] | None = None) -> tuple[Library, dict]:
    if fresh and root.exists():
        shutil.rmtree(root)
    lib = Library(root, device=device)
    t0 = time.perf_counter()
    lib.load_models().load_all()  # towers load lazily; time them apart from indexing
    load_s = time.perf_counter() - t0
    paths = paths or video_paths()
    t0, c0 = time.perf_counter(), cpu_s()
    last = None
    for progress in lib.index(paths, CancelToken(), transcribe=transcribe):
        last = progress
    index_s, index_cpu_s = time.perf_counter() - t0, cpu_s() - c0
    return lib, {"model_load_s": load_s, "index_s": index_s, "index_cpu_s": index_cpu_s,
                 "files": last.info.get("files_done", 0),
                 "clips": last.info.get("clips", 0), "video_seconds": last.info.get("video_seconds", 0.0),
                 "errors": last.info.get("errors", 0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--transcribe", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=int, default=1, help="index from scratch this many times; report the median")
    ap.add_argument("--long", action="store_true", help="the generated 10-minute 720p/1080p videos instead")
    ap.add_argument("--out", help="name of the results file in bench/results/ (default: index[_long][_transcribe])")
    args = ap.parse_args()
    paths = video_paths(args.long)
    runs = []
    for _ in range(args.runs):
        load = os.getloadavg()[0]
        lib, stats = build_library(args.library, transcribe=args.transcribe, device=args.device, paths=paths)
        c0 = cpu_s()
        dec_s = decode_only(paths, lib.settings.clip_seconds)  # in the same run, for the ratio
        dec_cpu_s = cpu_s() - c0
        lib.close()
        runs.append({**stats, "decode_only_s": dec_s, "decode_only_cpu_s": dec_cpu_s, "load_average": load,
                     "cpu_s_per_video_s": stats["index_cpu_s"] / stats["video_seconds"],
                     "x_realtime": stats["video_seconds"] / stats["index_s"],
                     "decode_x_realtime": stats["video_seconds"] / dec_s,
                     "index_over_decode": stats["index_s"] / dec_s,
                     "index_cpu_over_decode_cpu": stats["index_cpu_s"] / dec_cpu_s,
                     "load_average_end": os.getloadavg()[0]})
        if len(runs) == 1:  # later runs in this process keep earlier models alive: peak of one run
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = sorted(runs, key=lambda r: r["x_realtime"])[len(runs) // 2]
    out = {**median, "runs_x_realtime": [round(r["x_realtime"], 2) for r in runs],
           "runs_index_over_decode": [round(r["index_over_decode"], 3) for r in runs], "runs": runs,
           "peak_rss_mb": peak_mb, "transcribe": args.transcribe, "device": args.device}
    name = ("index_long" if args.long else "index") + ("_transcribe" if args.transcribe else "")
    name = args.out or (name if args.device == "cpu" else f"{name}_{args.device}")
    print(save(name, out))
    for k, v in out.items():
        if k == "runs":
            continue
        print(f"{k:>20}: {v:.3f}" if isinstance(v, float) else f"{k:>20}: {v}")


if __name__ == "__main__":
    main()
