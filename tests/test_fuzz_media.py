"""Fuzzing the media layer for a fixed time (seeded): mutated real and generated videos never
crash or hang it. Rerun: MMV_FUZZ_SECONDS=45 pytest tests/test_fuzz_media.py -s"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.synth import make_video

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("MMV_FUZZ_SECONDS", "40"))
SEED = int(os.environ.get("MMV_FUZZ_SEED", "1234"))
SHARED = [ROOT.parent / "shared" / "media" / "video" / "vas" / "dog__video_02677.mp4",
          ROOT.parent / "shared" / "media" / "video" / "demos" / "difffoley__drum.mp4"]


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 400)
def test_mutated_videos_never_crash_or_hang_the_media_layer(tmp_path):
    sources = [make_video(tmp_path / "src" / "g.mp4", seconds=4.0, size=(96, 72)),
               make_video(tmp_path / "src" / "g.webm", seconds=3.0, size=(96, 72), codec="libvpx-vp9"),
               make_video(tmp_path / "src" / "g.mkv", seconds=3.0, size=(96, 72), audio=False)]
    sources += [p for p in SHARED if p.exists()]
    work = tmp_path / "work"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz_media", str(SECONDS), str(SEED), str(work),
                           *map(str, sources)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=SECONDS + 300)
    wall = time.monotonic() - t0
    stats = json.loads((work / "progress.json").read_text())
    assert proc.returncode == 0, f"the media layer crashed (exit {proc.returncode}) at {stats.get('current')}"
    assert stats["failures"] == [], stats["failures"][:3]
    assert stats["iterations"] >= 20
    print(f"\nfuzz: {stats['iterations']} mutated files in {wall:.0f} s (budget {SECONDS:.0f} s, seed {SEED}): "
          f"{stats['media_errors']} refused as MediaError, {stats['decoded']} decoded, "
          f"slowest {stats['slowest_s']:.1f} s")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fuzz_media.json").write_text(json.dumps({**stats, "wall_s": wall, "budget_s": SECONDS,
                                                     "load": os.getloadavg()[0]}, indent=2))
