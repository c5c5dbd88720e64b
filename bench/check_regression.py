"""Fail when a retrieval figure dropped beyond its interval, compared with the last recorded run.

    python bench/check_regression.py NEW.json [BASELINE.json]

Without BASELINE the committed version of NEW (``git show HEAD:<path>``) is the last recorded one,
so the usual flow is: run a benchmark (it rewrites bench/results/X.json), then check it.

Every figure is a dict with ``value``, ``low``, ``high`` (engine.evaluation.Estimate), found
anywhere in the JSON; figures are matched by their path. A recall (higher is better) regresses
when the new value is below the baseline's interval; a rank (lower is better) when it is above.
A move inside the interval is noise, not a change. Exit 1 on any regression, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def figures(data, path: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """(path, figure) for every value/low/high dict in a results JSON."""
    if isinstance(data, dict):
        if {"value", "low", "high"} <= data.keys():
            yield path, data
            return
        for key, val in data.items():
            yield from figures(val, (*path, str(key)))
    elif isinstance(data, list):
        return  # per-query lists hold no figures


def lower_is_better(path: tuple) -> bool:
    return "rank" in path[-1]


def regressions(new: dict, old: dict) -> list[str]:
    """One message per figure of ``old`` that ``new`` fell out of (by its interval)."""
    fresh = dict(figures(new))
    out = []
    for path, before in figures(old):
        after = fresh.get(path)
        if after is None:
            continue
        worse = after["value"] > before["high"] if lower_is_better(path) else after["value"] < before["low"]
        if worse:
            out.append(f"{'/'.join(path)}: {after['value']:.3f} is outside the last run's "
                       f"{before['value']:.3f} [{before['low']:.3f}, {before['high']:.3f}]")
    return out


def committed(path: Path) -> dict:
    path = path.resolve()
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent, capture_output=True,
                          text=True, check=True).stdout.strip()
    rel = path.relative_to(root)
    text = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, text=True, check=True).stdout
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("new", type=Path)
    ap.add_argument("baseline", type=Path, nargs="?")
    args = ap.parse_args(argv)
    try:
        new = json.loads(args.new.read_text())
        old = json.loads(args.baseline.read_text()) if args.baseline else committed(args.new)
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"cannot read the results to compare: {exc}", file=sys.stderr)
        return 2
    compared = sum(1 for p, _ in figures(old) if p in dict(figures(new)))
    found = regressions(new, old)
    for line in found:
        print("REGRESSION", line)
    print(f"{compared} figures compared, {len(found)} regressions")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
