"""Cold command-line search: a new `mmvsearch search --text` (and `--audio`) process each time
(imports, model loading, index loading, query, printing), on the library built by bench_index.py.

Usage: python bench/bench_cli.py [--library DIR] [--runs 3] [--audio FILE]

Wall time and the child's CPU time (user + sys) are both reported, with the load average: on a
busy shared machine the wall time mostly measures the others' load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_index import DEFAULT_LIB
from bench.common import MEDIA, save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--audio", type=Path, default=MEDIA / "audio" / "esc50" / "4-182395-A-0.flac",
                    help="the query file of the cold audio search")
    args = ap.parse_args()
    if not (args.library / "library.db").exists():
        sys.exit(f"no library at {args.library}: run bench/bench_index.py first")
    queries = ["a dog", "fireworks at night", "someone playing the drums", "a baby crying", "a car engine"]
    out = {"load_average_at_start": os.getloadavg()[0],
           "text": cold_runs(args.library, [["--text", q] for q in (queries * args.runs)[: args.runs]])}
    if args.audio.exists():
        out["audio"] = cold_runs(args.library, [["--audio", str(args.audio)]] * args.runs)
    out["load_average_at_end"] = os.getloadavg()[0]
    print(save("cli", out))
    print(out)


def cold_runs(library: Path, queries: list[list[str]]) -> dict:
    walls, cpus = [], []
    for query in queries:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "engine.cli", "--library", str(library), "search",
                              *query, "--top", "5"], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=Path(__file__).resolve().parents[1])
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if res.returncode != 0:
            sys.exit(res.stderr)
    return {"wall_s": walls, "cpu_s": cpus, "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus)}


if __name__ == "__main__":
    main()
