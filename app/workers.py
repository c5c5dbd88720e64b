"""Background work for the GUI: the GUI thread only draws, engine calls run in a thread pool.

Two kinds of work:

* :class:`CallWorker` runs one function (a search, a thumbnail, loading the models) and reports its
  result or its error.
* :class:`JobWorker` consumes an engine job, a generator of :class:`engine.jobs.Progress`
  (``lib.index(paths, token)``, ``lib.train(minutes=..., token=token)``), emits one signal per
  Progress and stops early when its :class:`engine.jobs.CancelToken` is set.

Signals live on a QObject created in the GUI thread; the runnables emit them from pool threads,
so Qt queues delivery to the GUI thread (slots never run in a worker).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import Cancelled
from engine.jobs import CancelToken, Progress

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """Signals shared by both worker kinds (a QRunnable is not a QObject, so it cannot own them)."""

    progress = Signal(object)        # Progress (JobWorker) – delivered in the GUI thread
    snapshot = Signal(object)        # whatever ``snapshot_fn`` returned, taken in the worker thread
    result = Signal(object)          # the function's return value (CallWorker) / None (JobWorker)
    error = Signal(object, str)      # (exception, formatted traceback)
    cancelled = Signal()
    finished = Signal()              # always last, after result / error / cancelled


class _Worker(QRunnable):
    def __init__(self) -> None:
        super().__init__()
        self.signals = WorkerSignals()
        # The pool must not delete the runnable while Python still holds signals on it.
        self.setAutoDelete(False)
        self.failure: BaseException | None = None   # set when run() ended with an exception

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        if isinstance(exc, Cancelled):
            self.signals.cancelled.emit()
            return
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        log.debug("worker failed: %s", tb)
        self.signals.error.emit(exc, tb)


class CallWorker(_Worker):
    """Run ``fn(*args, **kwargs)`` in the pool; emit ``result`` or ``error``, then ``finished``."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def run(self) -> None:
        try:
            value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self._fail(exc)
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()


class JobWorker(_Worker):
    """Consume a generator of Progress made by ``factory(token)``.

    ``snapshot_fn`` (optional) runs in the worker thread after each Progress, between two steps of
    the generator: the job is paused there, so reading the library's database on the job's own
    thread never races with the job's writes. Its value is emitted as ``snapshot``.
    """

    def __init__(self, factory: Callable[[CancelToken], Iterator[Progress]],
                 snapshot_fn: Callable[[Progress], Any] | None = None,
                 token: CancelToken | None = None) -> None:
        super().__init__()
        self.factory = factory
        self.snapshot_fn = snapshot_fn
        self.token = token or CancelToken()
        self.last: Progress | None = None

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:
        gen = None
        try:
            gen = self.factory(self.token)
            # The engine polls the token between units of work and ends (or raises Cancelled)
            # cleanly; the worker never abandons a generator half-way through a unit.
            for p in gen:
                self.last = p
                self.signals.progress.emit(p)
                if self.snapshot_fn is not None:
                    snap = self.snapshot_fn(p)
                    if snap is not None:
                        self.signals.snapshot.emit(snap)
            if self.token.cancelled:
                raise Cancelled("cancelled by user")
        except BaseException as exc:
            self._fail(exc)
        else:
            self.signals.result.emit(None)
        finally:
            # Close here, in this thread: a generator kept alive by a stored traceback would
            # otherwise run its ``finally`` (releasing the library's writer lock) much later.
            close = getattr(gen, "close", None)
            if close is not None:
                close()
            self.signals.finished.emit()


class Workers(QObject):
    """The app's thread pool plus the set of running workers (for cancel-all and clean shutdown)."""

    def __init__(self, max_threads: int = 4, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._running: set[_Worker] = set()

    def start(self, worker: _Worker) -> _Worker:
        self._running.add(worker)
        worker.signals.finished.connect(lambda w=worker: self._running.discard(w))
        self.pool.start(worker)
        return worker

    def call(self, fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], None] | None = None,
             on_error: Callable[[BaseException, str], None] | None = None, **kwargs: Any) -> CallWorker:
        w = CallWorker(fn, *args, **kwargs)
        if on_result is not None:
            w.signals.result.connect(on_result)
        if on_error is not None:
            w.signals.error.connect(on_error)
        self.start(w)
        return w

    @property
    def running(self) -> int:
        return len(self._running)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every job and wait for the pool; True when every thread finished in time."""
        for w in list(self._running):
            if isinstance(w, JobWorker):
                w.cancel()
        self.pool.clear()  # drop work that has not started yet
        done = self.pool.waitForDone(timeout_ms)
        if done:
            self._running.clear()  # their queued "finished" signals may never be delivered now
        return done
