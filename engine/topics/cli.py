"""CLI command ``topics``: the library's clips grouped into named topics.

Plugged into ``engine/cli.py`` through :func:`add_commands` and :func:`run_command`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def add_commands(sub) -> None:
    tp = sub.add_parser("topics", help="group the library's clips into named topics")
    tp.add_argument("--k", type=int, help="number of topics (default: chosen by the silhouette criterion, "
                                          "or the SwAV prototypes of a swav model)")
    tp.add_argument("--moments", type=int, default=5, help="moments listed per topic (text output)")
    tp.add_argument("--json", action="store_true", help="one JSON object with every topic and its moments")


def run_command(args, lib_factory: Callable) -> int | None:
    if args.command != "topics":
        return None
    from engine.topics.discover import discover_topics

    result = discover_topics(lib_factory(), args.k)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    print(f"{len(result.topics)} topics over {result.clips} clips ({result.method}; {result.criterion}); "
          f"{result.seconds:.2f} s")
    for t in result.topics:
        print(f"\n[{t.id + 1}] {t.name}  ({t.clips} clips, {t.videos} video{'' if t.videos == 1 else 's'})")
        for m in t.moments[: args.moments]:
            print(f"    {Path(m.path).name}  {_clock(m.start)}-{_clock(m.end)}")
    return 0


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"
