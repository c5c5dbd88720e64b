"""GUI benchmarks: time to a visible window, typing-to-results, event-loop latency while indexing.

    python bench/bench_gui.py [--media /work/shared/media] [--library /tmp/mmvsearch-gui-bench-lib] [--json out.json]

1. start-up: ``mmvsearch-app`` is launched as a fresh process (5 runs); it prints the time from
   launch to the first turn of the event loop after ``show()`` (``MMVSEARCH_STARTUP_PROBE``).
2. typing to results: on a library of the shared media (built once, kept in ``--library``), type a
   query in the search box with simulated key presses and time until the results are shown. This
   includes the 250 ms debounce; the search itself (worker) is reported too.
3. responsiveness: a 10 ms QTimer runs while an index job (a fresh library of part of the shared
   media) runs in the worker pool; lateness = actual interval - 10 ms. The same timer idle is the
   baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia*=false")

QUERIES = ["a dog barking", "fireworks at night", "someone playing the drums", "a baby", "a car engine",
           "people applauding", "a boat on the water", "chopping vegetables"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def bench_startup(runs: int = 5) -> dict:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            env = {**os.environ, "MMVSEARCH_STARTUP_PROBE": repr(time.time()), "XDG_CONFIG_HOME": tmp}
            out = subprocess.run([sys.executable, "-m", "app.main", "--library", f"{tmp}/lib"], cwd=REPO,
                                 env=env, capture_output=True, text=True, timeout=120)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("visible_s=")), None)
            if line is None:
                raise RuntimeError(f"no probe output: {out.stdout}\n{out.stderr}")
            times.append(float(line.split("=")[1]))
    return {"runs": runs, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "all_s": [round(t, 3) for t in times]}


def _qt():
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["bench"])
    return app, QEventLoop, QSettings, QTimer


def _wait(pred, timeout_s: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def _window(lib, tmp: str):
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    w = MainWindow(lib, qsettings=QSettings(f"{tmp}/gui.ini", QSettings.Format.IniFormat), multimedia=False)
    w.resize(1280, 780)
    w.show()
    return w


def _models_ready(w) -> None:
    _wait(lambda: w.models_state in ("ready", "failed"), 900)
    if w.models_state == "failed":
        raise RuntimeError(f"models failed to load: {[(n.text, n.details) for n in w.notifier.history]}")


def bench_typing(media: Path, library: Path, tmp: str) -> dict:
    from PySide6.QtTest import QTest

    from engine.api import Library

    _qt()
    lib = Library(library, device="cpu")
    w = _window(lib, tmp)
    t0 = time.monotonic()
    _models_ready(w)
    load_s = time.monotonic() - t0
    t0 = time.monotonic()
    w.index_paths([str(media / "video")])
    _wait(lambda: w.index_job is None, 3600)
    index_s = time.monotonic() - t0
    status = lib.status()
    totals, searches = [], []
    done: list = []
    last_key = [0.0]
    w.search_done.connect(lambda r: done.append((time.perf_counter(), r)))
    # the clock starts when the box's text last changed, i.e. at the last key press
    w.search_box.textChanged.connect(lambda _t: last_key.__setitem__(0, time.perf_counter()))
    for q in QUERIES:
        w.search_box.clear()
        _wait(lambda: w.workers.running == 0, 60)
        done.clear()
        w.search_box.setFocus()
        QTest.keyClicks(w.search_box, q, delay=60)   # ~ a fast typist: 60 ms between keys
        _wait(lambda: bool(done), 120)
        totals.append(done[-1][0] - last_key[0])
        searches.append(done[-1][1].elapsed_s)
    w.close()
    lib.close()
    return {"videos": status.n_done, "clips": status.n_clips, "video_minutes": round(status.seconds / 60, 1),
            "model_load_s": round(load_s, 2), "index_s": round(index_s, 1),
            "typing_to_results_median_s": statistics.median(totals), "typing_to_results_max_s": max(totals),
            "engine_search_median_s": statistics.median(searches), "debounce_s": 0.25,
            "queries": len(QUERIES)}


def _timer_lateness(duration_s: float, busy) -> list[float]:
    from PySide6.QtCore import Qt, QTimer

    late: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - 10.0))
        last[0] = now
    timer = QTimer(interval=10)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start()
    end = time.monotonic() + duration_s
    _wait(lambda: time.monotonic() > end or not busy(), duration_s + 60)
    timer.stop()
    return late


def bench_responsiveness(media: Path, tmp: str) -> dict:
    from engine.api import Library

    _qt()
    lib = Library(Path(tmp) / "resp-lib", device="cpu")
    w = _window(lib, tmp)
    _models_ready(w)
    idle = _timer_lateness(3.0, lambda: True)
    folders = [str(media / "video" / "vas"), str(media / "video" / "demos")]
    w.index_paths(folders)
    t0 = time.monotonic()
    busy = _timer_lateness(600.0, lambda: w.index_job is not None)
    busy_s = time.monotonic() - t0
    _wait(lambda: w.index_job is None, 3600)
    w.close()
    lib.close()

    def summary(v: list[float]) -> dict:
        return {"ticks": len(v), "mean_ms": round(statistics.fmean(v), 2), "p95_ms": round(pct(v, 0.95), 2),
                "p99_ms": round(pct(v, 0.99), 2), "max_ms": round(max(v), 2)}
    return {"idle": summary(idle), "indexing": {**summary(busy), "seconds_measured": round(busy_s, 1)}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=os.environ.get("MMVSEARCH_MEDIA",
                                                      str(REPO.parent / "shared" / "media")))
    ap.add_argument("--library", default="/tmp/mmvsearch-gui-bench-lib",
                    help="kept between runs (indexing is incremental)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--only", choices=("startup", "typing", "responsiveness"))
    args = ap.parse_args()
    media = Path(args.media)
    platform = os.environ["QT_QPA_PLATFORM"]
    results: dict = {"machine": f"{os.cpu_count()} CPU cores, QT_QPA_PLATFORM={platform}"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "startup"):
            results["startup"] = bench_startup()
            print("startup", json.dumps(results["startup"]), flush=True)
        if args.only in (None, "typing"):
            results["typing"] = bench_typing(media, Path(args.library), tmp)
            print("typing", json.dumps(results["typing"]), flush=True)
        if args.only in (None, "responsiveness"):
            results["responsiveness"] = bench_responsiveness(media, tmp)
            print("responsiveness", json.dumps(results["responsiveness"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
