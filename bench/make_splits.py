"""Write the fixed tune / report split files of ../shared/media (bench/splits/*.tsv).

Run once; the files are committed and are the reference (re-running must reproduce them, which
tests/test_splits.py checks). Videos split by video, stratified by the sound class their label
belongs to (or the label); sounds split by source recording (ESC-50 file names are
``fold-source-take-class``: takes of one recording stay together), stratified by label.

Usage: python bench/make_splits.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import manifest
from engine.evaluation.labels import video_stratum
from engine.evaluation.splits import SplitRow, load_split, make_rows, write_split

SPLIT_DIR = Path(__file__).resolve().parent / "splits"


def sound_group(path: str) -> str:
    """The source recording of a sound file: ``fold-source`` for ESC-50, else the file itself."""
    if path.startswith("audio/esc50/"):
        fold, source, _take, _target = Path(path).stem.split("-")
        return f"esc50:{fold}-{source}"
    return path


def split_rows() -> dict[str, list[SplitRow]]:
    rows = manifest()
    vids = [(r["path"], r["label"], r["path"], video_stratum(r["label"])) for r in rows if r["kind"] == "video"]
    sounds = [(r["path"], r["label"], sound_group(r["path"]), r["label"]) for r in rows if r["kind"] == "audio"]
    return {"videos": make_rows(vids), "sounds": make_rows(sounds)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = ap.parse_args()
    for name, rows in split_rows().items():
        path = SPLIT_DIR / f"{name}.tsv"
        if args.check:
            if load_split(path) != rows:
                print(f"{path} differs from the manifest's split")
                return 1
            continue
        write_split(path, rows)
        n_report = sum(r.split == "report" for r in rows)
        print(f"{path}: {len(rows)} rows, {len(rows) - n_report} tune, {n_report} report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
