"""Entry point of the frozen app: one program, two names.

The bundle holds one executable, ``mmvsearch``, and a link to it named ``mmvsearch-app``; the name
it was started by picks the command-line tool or the desktop app. One executable instead of two
keeps a single copy of the frozen Python modules in the installer.
"""

from __future__ import annotations

import os
import sys


def _wants_app(argv0: str) -> bool:
    name = os.path.basename(argv0).lower()
    return name.startswith("mmvsearch-app") or os.environ.get("MMVSEARCH_ENTRY") == "app"


def main() -> int:
    if _wants_app(sys.argv[0]):
        from app.main import main as app_main

        return app_main()
    from engine.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
