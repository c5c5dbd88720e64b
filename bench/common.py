"""Shared helpers for the benchmarks on ../shared/media (evaluation data only; never copied)."""

from __future__ import annotations

import csv
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("MMVSEARCH_MEDIA", ROOT.parent / "shared" / "media"))
RESULTS = ROOT / "bench" / "results"



def manifest() -> list[dict]:
    with open(MEDIA / "MANIFEST.tsv") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def videos() -> list[dict]:
    return [r for r in manifest() if r["kind"] == "video"]


def video_paths(long: bool = False) -> list[Path]:
    """The shared media's videos, or with ``long`` the two generated 10-minute 720p/1080p ones."""
    if long:
        from bench.long_media import long_videos

        return long_videos()
    return [MEDIA / v["path"] for v in videos()]


def esc50_meta() -> list[dict]:
    """ESC-50 clips with class, fold and source recording (file name: fold-source-take-target)."""
    rows = []
    for r in manifest():
        if r["path"].startswith("audio/esc50/"):
            fold, source, _take, _target = Path(r["path"]).stem.split("-")
            rows.append({"path": MEDIA / r["path"], "label": r["label"], "fold": int(fold),
                         "source": f"{fold}-{source}"})
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, no GPU" if os.cpu_count() else cpu


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


def emit(result: dict, out: Path | None) -> int:
    """Print a benchmark's JSON result, also write it to ``out`` when given; the exit status."""
    text = json.dumps(result, indent=2, default=str)
    if out:
        out.write_text(text)
    print(text)
    return 0
