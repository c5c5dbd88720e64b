"""``mmvsearch-app``: start the desktop app.

Start-up order matters for the "window in under 1.5 s" goal: Qt, then the library (SQLite only),
then the window is shown, and only then do torch and the models load, in a worker thread.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from engine import __version__

ENV_PROBE = "MMVSEARCH_STARTUP_PROBE"   # bench: print time-to-visible and quit (value: launch epoch time)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="mmvsearch-app", description="Find moments in your videos.")
    ap.add_argument("--library", metavar="DIR", help="library directory (default: $MMVSEARCH_LIBRARY, "
                                                      "the last one used, or the per-user default)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                    help="compute device for this session (default: the library's setting)")
    ap.add_argument("paths", nargs="*", help="folders or videos to add to the library on start")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--version", action="version", version=f"mmvsearch-app {__version__}")
    return ap.parse_args(argv)


class _FirstPaint(QObject):
    """Bench probe: print seconds from launch to the window's first paint, then close it."""

    def __init__(self, window: QWidget, launched: float) -> None:
        super().__init__(window)
        self.window, self.launched = window, launched

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            print(f"visible_s={time.time() - self.launched:.3f}", flush=True)
            obj.removeEventFilter(self)
            QTimer.singleShot(0, self.window.close)
        return False


def _report_first_paint(window: QWidget, launched: float) -> None:
    window.installEventFilter(_FirstPaint(window, launched))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("mmvsearch")
    app.setOrganizationName("mmvsearch")
    app.setApplicationDisplayName("mmvsearch")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("mmvsearch")  # matches resources/mmvsearch.desktop for the dock icon

    from app.main_window import ICON_PATH, MainWindow
    from engine.api import Library
    from engine.library import ENV_LIBRARY

    if ICON_PATH.exists():
        app.setWindowIcon(QIcon(str(ICON_PATH)))
    qsettings = QSettings("mmvsearch", "mmvsearch")
    root = args.library or os.environ.get(ENV_LIBRARY) or qsettings.value("library/last") or None
    try:
        lib = Library(root, device=args.device)
    except Exception as exc:
        print(f"mmvsearch-app: cannot open the library: {exc}", file=sys.stderr)
        return 2
    window = MainWindow(lib, qsettings=qsettings)
    window.show()
    if args.paths:
        QTimer.singleShot(0, lambda: window.index_paths(args.paths))

    probe = os.environ.get(ENV_PROBE)
    if probe:
        _report_first_paint(window, float(probe))
    code = app.exec()
    lib.close()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
