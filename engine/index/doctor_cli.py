"""The ``doctor`` command (engine/index/doctor.py), plugged into the CLI like the speech and
training commands."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.library import resolve_library_dir


def add_commands(sub) -> None:
    doc = sub.add_parser("doctor", help="check the library; rebuild derived data; salvage a damaged database")
    doc.add_argument("--heal", action="store_true", help="rebuild the search indexes from the database and "
                     "send half-indexed videos back to pending")
    doc.add_argument("--salvage", action="store_true", help="copy every readable row of a damaged library.db "
                     "into a new one (the damaged file is kept beside it)")
    doc.add_argument("--export", metavar="DIR", help="write the readable videos and transcripts as JSON lines")


def run_command(args, lib_factory) -> int | None:
    if args.command != "doctor":
        return None
    from engine.index import doctor

    root = resolve_library_dir(args.library)
    if args.export:
        counts = doctor.export(root, Path(args.export))
        print(f"exported {counts['videos']} videos and {counts['transcripts']} transcript lines to {args.export}")
    if args.salvage:
        damaged, copied = doctor.salvage(root)
        print(f"salvaged into a new library.db; the damaged file is kept as {damaged}")
        print("rows kept: " + ", ".join(f"{t} {n}" for t, n in copied.items()))
    if args.heal or args.salvage:
        for line in doctor.heal(root):
            print(line)
    report = doctor.check(root)
    for note in report.notes:
        print(note)
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print("library is healthy" if report.ok else f"{len(report.problems)} problem(s) found")
    return 0 if report.ok else 1
