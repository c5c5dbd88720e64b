"""Run every benchmark in turn on ../shared/media; results land in bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    ["bench/bench_index.py", "--runs", "3"],
    ["bench/bench_index.py", "--transcribe", "--library", "/tmp/mmvsearch-bench-index-transcribed"],
    ["bench/bench_cli.py"],
    ["bench/bench_retrieval.py"],
    ["bench/bench_retrieval.py", "--rebuild", "--transcribe", "--library", "/tmp/mmvsearch-bench-transcribed",
     "--name", "retrieval_transcribed", "--measures", "text_to_video", "text_to_video_caption",
     "sound_to_video"],
    ["bench/bench_speech.py"],
    ["bench/bench_finetune.py", "--out", str(ROOT / "bench" / "results" / "finetune.json")],
    ["bench/bench_finetune.py", "--deep", "--out", str(ROOT / "bench" / "results" / "finetune_deep.json")],
    ["bench/bench_transcripts.py"],
    ["bench/bench_gui.py", "--json", str(ROOT / "bench" / "results" / "gui.json")],
]


def main() -> int:
    failed = 0
    for step in STEPS:
        print(f"== {' '.join(step)}", flush=True)
        failed += subprocess.run([sys.executable, *step], cwd=ROOT).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
