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
    started = Signal()               # the runnable left the queue and runs now
    finished = Signal()              # always last, after result / error / cancelled


class _Worker(QRunnable):
    def __init__(self) -> None:
        super().__init__()
        self.signals = WorkerSignals()
        # The pool must not delete the runnable while Python still holds signals on it.
        self.setAutoDelete(False)
        self.failure: BaseException | None = None   # set when run() ended with an exception

    def _emit(self, name: str, *args: Any) -> None:
        """Emit one of ``signals``; a window closed while this job was still finishing (a model
        load outliving the shutdown wait) has deleted them, and nobody is listening any more."""
        try:
            getattr(self.signals, name).emit(*args)
        except RuntimeError:
            log.debug("signal %s dropped: its receiver is gone", name)

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        if isinstance(exc, Cancelled):
            self._emit("cancelled")
            return
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        log.debug("worker failed: %s", tb)
        self._emit("error", exc, tb)


class CallWorker(_Worker):
    """Run ``fn(*args, **kwargs)`` in the pool; emit ``result`` or ``error``, then ``finished``."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def run(self) -> None:
        self._emit("started")
        try:
            value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self._fail(exc)
        else:
            self._emit("result", value)
        finally:
            self._emit("finished")


class JobWorker(_Worker):
    """Consume a generator of Progress made by ``factory(token)``.

    ``snapshot_fn`` (optional) runs in the worker thread after each Progress, between two steps of
    the generator: the job is paused there, so reading the library's database on the job's own
    thread never races with the job's writes. Its value is emitted as ``snapshot``. It runs once
    more with ``None`` when the job has ended (however it ended), before ``finished``.
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
        self._emit("started")
        gen = None
        try:
            gen = self.factory(self.token)
            # The engine polls the token between units of work and ends (or raises Cancelled)
            # cleanly; the worker never abandons a generator half-way through a unit.
            for p in gen:
                self.last = p
                self._emit("progress", p)
                if self.snapshot_fn is not None:
                    snap = self.snapshot_fn(p)
                    if snap is not None:
                        self._emit("snapshot", snap)
            if self.token.cancelled:
                raise Cancelled("cancelled by user")
        except BaseException as exc:
            self._fail(exc)
        else:
            self._emit("result", None)
        finally:
            # Close here, in this thread: a generator kept alive by a stored traceback would
            # otherwise run its ``finally`` (releasing the library's writer lock) much later.
            close = getattr(gen, "close", None)
            if close is not None:
                close()
            if self.snapshot_fn is not None:
                try:
                    self._emit("snapshot", self.snapshot_fn(None))
                except Exception:
                    log.exception("final snapshot failed")
            self._emit("finished")


class Workers(QObject):
    """The app's thread pools plus the set of running workers (for cancel-all and clean shutdown).

    Most work shares one pool. A *lane* is a pool of one thread: work in a lane runs one at a time
    and a newer request replaces one still waiting. Searches use a lane: the engine's searcher is
    not meant for concurrent queries, and a query typed over by a newer one need not run at all.
    """

    def __init__(self, max_threads: int = 4, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.lanes: dict[str, QThreadPool] = {}
        self._waiting: dict[str, _Worker] = {}
        self._running: set[_Worker] = set()

    def _lane(self, name: str) -> QThreadPool:
        if name not in self.lanes:
            pool = QThreadPool(self)
            pool.setMaxThreadCount(1)
            self.lanes[name] = pool
        return self.lanes[name]

    def start(self, worker: _Worker, lane: str | None = None) -> _Worker:
        self._running.add(worker)
        worker.signals.finished.connect(lambda w=worker: self._running.discard(w))
        if lane is None:
            self.pool.start(worker)
            return worker
        pool = self._lane(lane)
        old = self._waiting.get(lane)
        if old is not None and pool.tryTake(old):
            self._running.discard(old)   # superseded before it started: it never runs
            old.signals.finished.emit()
        self._waiting[lane] = worker
        worker.signals.started.connect(lambda ln=lane, w=worker: self._started(ln, w))
        pool.start(worker)
        return worker

    def _started(self, lane: str, worker: _Worker) -> None:
        if self._waiting.get(lane) is worker:
            del self._waiting[lane]

    def call(self, fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], None] | None = None,
             on_error: Callable[[BaseException, str], None] | None = None, lane: str | None = None,
             **kwargs: Any) -> CallWorker:
        w = CallWorker(fn, *args, **kwargs)
        if on_result is not None:
            w.signals.result.connect(on_result)
        if on_error is not None:
            w.signals.error.connect(on_error)
        self.start(w, lane)
        return w

    @property
    def running(self) -> int:
        return len(self._running)

    def _pools(self) -> list[QThreadPool]:
        return [self.pool, *self.lanes.values()]

    def active_threads(self) -> int:
        return sum(p.activeThreadCount() for p in self._pools())

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Wait (without cancelling) until every pool is idle."""
        return all(p.waitForDone(timeout_ms) for p in self._pools())

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every job and wait for the pools; True when every thread finished in time."""
        for w in list(self._running):
            if isinstance(w, JobWorker):
                w.cancel()
        for p in self._pools():
            p.clear()  # drop work that has not started yet
        done = all(p.waitForDone(timeout_ms) for p in self._pools())
        if done:
            self._running.clear()  # their queued "finished" signals may never be delivered now
            self._waiting.clear()
        return done
