"""Fixed tune/report splits: deterministic, grouped, stratified, and the committed files reproduce."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.evaluation.splits import SplitRow, assign, load_split, make_rows, members, stable_hash, write_split

SPLIT_DIR = Path(__file__).resolve().parents[1] / "bench" / "splits"


def test_stable_hash_is_fixed():
    assert stable_hash("dog") == int("e49512524f47b4138d850c9d9d85972927281da0"[:12], 16)  # sha1("dog")


def test_assign_is_deterministic_stratified_and_even():
    groups = {f"g{i}": f"s{i % 7}" for i in range(40)} | {f"single{i}": f"alone{i}" for i in range(9)}
    sides = assign(groups)
    assert sides == assign(dict(reversed(list(groups.items()))))  # order of input does not matter
    for s in {f"s{i}" for i in range(7)}:  # every stratum with >= 2 groups is on both sides
        assert {sides[g] for g, st in groups.items() if st == s} == {"tune", "report"}
    counts = Counter(sides.values())
    assert abs(counts["tune"] - counts["report"]) <= 1


def test_groups_never_straddle(tmp_path):
    items = [(f"a/{g}-{t}.flac", "dog" if g % 2 else "cat", f"src{g}", "dog" if g % 2 else "cat")
             for g in range(10) for t in "ABC"]
    rows = make_rows(items)
    by_group = {}
    for r in rows:
        by_group.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in by_group.values())
    write_split(tmp_path / "s.tsv", rows)
    assert load_split(tmp_path / "s.tsv") == rows
    assert len(members(rows, "tune")) + len(members(rows, "report")) == len(rows) == len(members(rows, "all"))


def test_loader_rejects_a_group_on_both_sides(tmp_path):
    write_split(tmp_path / "bad.tsv", [SplitRow("a", "x", "g", "tune"), SplitRow("b", "x", "g", "report")])
    with pytest.raises(ValueError):
        load_split(tmp_path / "bad.tsv")


def test_committed_split_files_are_consistent():
    videos, sounds = load_split(SPLIT_DIR / "videos.tsv"), load_split(SPLIT_DIR / "sounds.tsv")
    assert len(videos) == 29 and len({r.path for r in videos}) == 29
    for rows in (videos, sounds):
        counts = Counter(r.split for r in rows)
        assert 0.4 < counts["report"] / len(rows) < 0.6
    esc = [r for r in sounds if r.path.startswith("audio/esc50/")]
    assert all(r.group == "esc50:" + "-".join(Path(r.path).stem.split("-")[:2]) for r in esc)


def test_committed_split_files_reproduce_from_the_manifest(shared_media):
    from bench.make_splits import split_rows

    for name, rows in split_rows().items():
        assert load_split(SPLIT_DIR / f"{name}.tsv") == rows
