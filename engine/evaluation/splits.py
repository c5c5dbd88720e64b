"""Fixed tune / report splits: what design choices are tuned on, and what figures are reported on.

A split file is a TSV with columns ``path``, ``label``, ``group``, ``split`` (paths relative to
the media folder). Items of one ``group`` (one video; one source recording of a sound, whose
takes are near copies) always share a side, so a choice tuned on one take cannot be rewarded on
its sibling.

Assignment is deterministic and needs no random state: within each stratum (a label, or the set
of labels one sound class maps to) groups are ordered by a hash of their key and dealt to the two
sides in turn, starting on the side that has fewer groups so far. A stratum with two or more
groups therefore appears on both sides, and the two sides differ by at most one group.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("tune", "report")
COLUMNS = ("path", "label", "group", "split")


@dataclass(frozen=True)
class SplitRow:
    path: str
    label: str
    group: str
    split: str


def stable_hash(key: str) -> int:
    """A hash that is the same in every process and on every machine (unlike ``hash``)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16)


def assign(groups: dict[str, str]) -> dict[str, str]:
    """{group key: stratum} -> {group key: split}, stratified and deterministic (see module doc).

    Strata are visited in hash order; each one's odd group goes to the side that has fewer groups
    so far (a tie is broken by the stratum's hash), so many singleton strata still split evenly.
    """
    by_stratum: dict[str, list[str]] = {}
    for group, stratum in groups.items():
        by_stratum.setdefault(stratum, []).append(group)
    out: dict[str, str] = {}
    count = dict.fromkeys(SPLITS, 0)
    for stratum in sorted(by_stratum, key=lambda s: (stable_hash(f"stratum:{s}"), s)):
        first = count[SPLITS[0]] - count[SPLITS[1]]
        offset = stable_hash(f"stratum:{stratum}") % 2 if first == 0 else int(first > 0)
        for i, group in enumerate(sorted(by_stratum[stratum], key=lambda g: (stable_hash(g), g))):
            side = SPLITS[(i + offset) % 2]
            out[group] = side
            count[side] += 1
    return out


def make_rows(items: Iterable[tuple[str, str, str, str]]) -> list[SplitRow]:
    """(path, label, group, stratum) per item -> rows with their split, sorted by path."""
    items = list(items)
    groups: dict[str, str] = {}
    for _path, _label, group, stratum in items:
        if groups.setdefault(group, stratum) != stratum:
            raise ValueError(f"group {group!r} has items in two strata")
    sides = assign(groups)
    return sorted((SplitRow(p, lab, g, sides[g]) for p, lab, g, _s in items), key=lambda r: r.path)


def write_split(path: Path, rows: Iterable[SplitRow]) -> None:
    """Temp file and rename: a split file is never seen half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((r.path, r.label, r.group, r.split) for r in rows)
    os.replace(tmp, path)


def load_split(path: Path) -> list[SplitRow]:
    with open(path, newline="") as fh:
        rows = [SplitRow(**{c: r[c] for c in COLUMNS}) for r in csv.DictReader(fh, delimiter="\t")]
    bad = {r.split for r in rows} - set(SPLITS)
    if bad:
        raise ValueError(f"{path}: unknown split names {sorted(bad)}")
    sides: dict[str, str] = {}
    for r in rows:
        if sides.setdefault(r.group, r.split) != r.split:
            raise ValueError(f"{path}: group {r.group!r} is on both sides")
    return rows


def members(rows: Iterable[SplitRow], split: str) -> list[SplitRow]:
    """The rows of one side (``"all"``: every row)."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}")
    return [r for r in rows if split == "all" or r.split == split]
