"""Indexing jobs for the window: one at a time (the database has one writer), a queue behind it,
pause / resume / cancel. It knows nothing about widgets; the window connects its signals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.widgets.library_panel import LibrarySnapshot, take_snapshot
from app.workers import JobWorker, Workers
from engine.contract import LibraryContract
from engine.jobs import Progress

SNAPSHOT_EVERY_S = 0.5


class IndexQueue(QObject):
    started = Signal(str)            # a label for the job ("Indexing holidays, birthdays")
    progress = Signal(object)        # engine.jobs.Progress
    snapshot = Signal(object)        # LibrarySnapshot, read in the job's own thread
    failed = Signal(object, str)     # exception, traceback
    finished = Signal(str)           # 'done' | 'cancelled' | 'paused' | 'error'

    def __init__(self, workers: Workers, library: Callable[[], LibraryContract], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.library = library       # a getter: the window may switch libraries
        self.job: JobWorker | None = None
        self.paths: list[str] = []   # what the running (or paused) job indexes
        self.queue: list[list[str]] = []
        self.paused_paths: list[str] | None = None
        self._pausing = False
        self._snapshot_at = 0.0

    @property
    def busy(self) -> bool:
        return self.job is not None

    def covers(self, paths: list[str]) -> bool:
        """Already running or queued: a watcher need not ask again."""
        return (self.job is not None and paths == self.paths) or paths in self.queue

    def index(self, paths: list[str]) -> bool:
        """Start indexing ``paths``; False when it was queued behind the running job."""
        if self.job is not None:
            self.queue.append(paths)
            return False
        self.paused_paths = None
        self.paths = paths
        lib = self.library()
        job = JobWorker(lambda token: lib.index(paths, token), snapshot_fn=lambda p: self._snapshot(lib, p))
        job.signals.progress.connect(self.progress)
        job.signals.snapshot.connect(self.snapshot)
        job.signals.error.connect(self.failed)
        job.signals.finished.connect(lambda j=job: self._done(j))
        self.job = job
        self.started.emit("Indexing " + ", ".join(Path(p).name for p in paths[:3])
                          + ("…" if len(paths) > 3 else ""))
        self.workers.start(job)
        return True

    def _snapshot(self, lib: LibraryContract, p: Progress | None) -> LibrarySnapshot | None:
        """In the job's thread, between two steps: at most twice a second, and once at the end."""
        now = time.monotonic()
        if p is not None and now - self._snapshot_at < SNAPSHOT_EVERY_S:
            return None
        self._snapshot_at = now
        return take_snapshot(lib)

    def _done(self, job: JobWorker) -> None:
        self.job = None
        state = "done"
        if job.token.cancelled:
            state = "paused" if self._pausing else "cancelled"
        elif job.failure is not None:
            state = "error"
        self._pausing = False
        if state == "paused":
            self.paused_paths = self.paths
        self.finished.emit(state)
        if self.queue and state == "done":
            self.index(self.queue.pop(0))

    def pause(self) -> None:
        """Stop after the current file; ``resume`` indexes the same paths again (incremental)."""
        if self.job is not None:
            self._pausing = True
            self.job.cancel()

    def resume(self) -> bool:
        paths, self.paused_paths = self.paused_paths, None
        return self.index(paths) if paths else False

    def cancel(self) -> None:
        self.queue.clear()
        self.paused_paths = None
        if self.job is not None:
            self.job.cancel()
