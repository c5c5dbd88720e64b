"""Retrieval quality on ../shared/media through the product's search, per side of the fixed split.

Measures (bench/harness.py): text -> video (labels; captions), sound -> video (`search --audio`),
sound-alike (sound -> sound). Each figure: value, 95% bootstrap interval, random baseline, number
of queries. README figures come from the *report* side; design choices are made on *tune*
(docs/evaluation.md).

Usage: python bench/bench_retrieval.py [--library DIR] [--rebuild] [--transcribe] [--name NAME]
                                       [--sides tune report] [--measures ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_index import DEFAULT_LIB, build_library
from bench.common import save
from bench.harness import MEASURES, headline, load_splits, run_all
from engine.api import Library
from engine.evaluation.splits import SPLITS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--transcribe", action="store_true")
    ap.add_argument("--name", default="retrieval")
    ap.add_argument("--sides", nargs="+", default=list(SPLITS), choices=[*SPLITS, "all"])
    ap.add_argument("--measures", nargs="+", default=list(MEASURES), choices=MEASURES)
    args = ap.parse_args()
    if args.rebuild or not (args.library / "library.db").exists():
        lib, _ = build_library(args.library, transcribe=args.transcribe)
    else:
        lib = Library(args.library, device="cpu")
    results = run_all(lib, load_splits(), args.sides, args.measures)
    print(save(args.name, {"model": lib.active_model_id, "transcribed": args.transcribe,
                           "splits": "bench/splits/videos.tsv, bench/splits/sounds.tsv", "results": results}))
    print(headline(results))


if __name__ == "__main__":
    main()
