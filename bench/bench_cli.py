"""Cold command-line search: a new `mmvsearch search --text` process each time (imports, model
loading, index loading, query), on the library built by bench_index.py.

Usage: python bench/bench_cli.py [--library DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_index import DEFAULT_LIB
from bench.common import save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not (args.library / "library.db").exists():
        sys.exit(f"no library at {args.library}: run bench/bench_index.py first")
    times = []
    for query in ["a dog", "fireworks at night", "someone playing the drums"][: args.runs]:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "engine.cli", "--library", str(args.library), "search",
                              "--text", query, "--top", "5"], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=Path(__file__).resolve().parents[1])
        times.append(time.perf_counter() - t0)
        if res.returncode != 0:
            sys.exit(res.stderr)
    out = {"cold_cli_search_s": times, "median_s": statistics.median(times)}
    print(save("cli", out))
    print(out)


if __name__ == "__main__":
    main()
