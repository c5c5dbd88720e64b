"""Render the app's main states to PNGs (docs/screenshots/) with the real engine.

    python -m app.screenshots [--media /work/shared/media] [--out docs/screenshots]

Without a display it starts its own Xvfb (the package ``xvfb``) so the video widget is captured
as a user sees it; ``--offscreen`` uses Qt's offscreen platform instead (no video frames).
The library is built in a temporary folder from the media's ``video/`` subfolders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _start_xvfb() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return None
    for n in range(157, 199):  # away from :99, which people start by hand
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.environ["DISPLAY"] = f":{n}"
            for _ in range(50):
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    break
                time.sleep(0.1)
            return proc
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", default=os.environ.get("MMVSEARCH_MEDIA",
                                                      str(REPO.parent / "shared" / "media")))
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--library", help="use (and keep) this library instead of a temporary one")
    ap.add_argument("--query", default="a dog")
    ap.add_argument("--offscreen", action="store_true")
    args = ap.parse_args(argv)

    xvfb = None
    if args.offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    else:
        xvfb = _start_xvfb()
        if os.environ.get("DISPLAY"):
            os.environ["QT_QPA_PLATFORM"] = "xcb"
        else:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        return _run(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def _run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtGui import QGuiApplication, QPixmap
    from PySide6.QtWidgets import QApplication, QWidget

    from app.main_window import ICON_PATH, MainWindow
    from engine.api import Library

    app = QApplication.instance() or QApplication(["mmvsearch"])
    app.setApplicationName("mmvsearch")
    from PySide6.QtGui import QIcon
    app.setWindowIcon(QIcon(str(ICON_PATH)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mmv-shots-"))
    media = Path(args.media) / "video"
    folders = sorted(str(p) for p in media.iterdir() if p.is_dir()) if media.is_dir() else []
    if not folders:
        print(f"no media under {media}", file=sys.stderr)
        return 2

    def pump(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for {what}")
            pump(50)

    def shot(widget: QWidget, name: str) -> None:
        pump(300)  # let the last paints land
        if QGuiApplication.platformName() == "xcb":
            # a screen grab includes native video surfaces, which widget.grab() leaves black
            g = widget.frameGeometry()
            pix: QPixmap = widget.screen().grabWindow(0, g.x(), g.y(), g.width(), g.height())
        else:
            pix = widget.grab()
        path = out / f"{name}.png"
        pix.save(str(path))
        print(f"wrote {path} ({pix.width()}x{pix.height()})", flush=True)

    lib = Library(args.library or tmp / "library", device="cpu")
    w = MainWindow(lib, qsettings=QSettings(str(tmp / "gui.ini"), QSettings.Format.IniFormat))
    w.resize(1360, 820)
    w.move(20, 20)
    w.show()
    pump(400)
    shot(w, "01-empty")

    wait_until(lambda: w.models_state in ("ready", "failed"), 600, "the models")
    w.index_paths(folders)

    def files_done() -> int:
        job = w.index_job
        return int(((job.last.info or {}) if job is not None and job.last else {}).get("files_done", 0))
    wait_until(lambda: files_done() >= 4 or w.index_job is None, 600, "indexing progress")
    shot(w, "02-indexing")
    wait_until(lambda: w.index_job is None, 1800, "indexing to finish")
    pump(1500)
    w.notifier.clear()

    w.focus_search()
    w.search_box.setText(args.query)
    wait_until(lambda: w.last_result is not None and w.shown_seq == w.search_seq, 300, "search results")
    n = len(w.last_result.moments)
    wait_until(lambda: len(w.grid.results.thumbs) >= min(n, 8), 300, "thumbnails")
    w.notifier.clear()
    shot(w, "03-results")

    w.grid.setFocus()
    w.play(w.grid.selected_moment())
    if w.player.has_multimedia:
        start = w.grid.selected_moment().start
        wait_until(lambda: w.player.position_s() >= start + 1.0, 60, "playback")
        w.player.toggle()  # pause on a frame
    pump(800)
    shot(w, "04-player")

    w.open_finetune()
    dlg = w.finetune_dialog
    dlg.resize(640, 720)
    dlg.minutes.setValue(1)
    dlg.start()
    # a one-minute run to the end, so the before/after figures and "switch back" show
    wait_until(lambda: dlg.job is None, 900, "training")
    wait_until(lambda: dlg.models.count() >= 2, 60, "the new model in the list")
    pump(800)
    shot(dlg, "05-finetune")
    dlg.close()

    from app.dialogs.settings import SettingsDialog
    sd = SettingsDialog(lib, w.workers, w)
    sd.show()
    wait_until(lambda: "Found" in sd.detected.text() or "failed" in sd.detected.text(), 60,
               "device detection")
    shot(sd, "06-settings")
    sd.close()

    w.close()
    app.processEvents()
    lib.close()
    import shiboken6

    # destroy the QApplication now, while the X server (ours, stopped next) is still there
    shiboken6.delete(app)
    if not args.library:
        shutil.rmtree(tmp, ignore_errors=True)
    del Qt
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
