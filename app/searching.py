"""Searches and their thumbnails, run in worker lanes; only the newest query's results come back.

Every query gets a sequence number. Results of an older query (typed over, or replaced by a
microphone search) are dropped here, so the window never flashes stale moments.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from app.format import span
from app.workers import JobWorker, Workers
from engine.contract import LibraryContract
from engine.jobs import CancelToken, Progress
from engine.search.moments import Moment, SearchResult

log = logging.getLogger(__name__)
QUERY_KINDS = ("text", "audio", "mic", "image", "like")


def describe_query(kind: str, query: Any) -> str:
    """One line of HTML saying what was searched for."""
    if kind == "text":
        return f"Text: “{html.escape(str(query))}”"
    if kind in ("audio", "image"):
        return f"{'Sound' if kind == 'audio' else 'Picture'}: {html.escape(Path(query).name)}"
    if kind == "mic":
        return f"Microphone: {len(query) / 16000:.1f} s"
    if kind == "like":
        return f"More like {html.escape(Path(query.path).name)} {span(query.start, query.end)}"
    return kind


class SearchRunner(QObject):
    results = Signal(object, float)      # SearchResult of the newest query, seconds it took
    failed = Signal(object, str)         # exception, traceback (newest query only)
    thumbnail = Signal(int, QImage)      # row in the newest results, its image

    def __init__(self, workers: Workers, library: Callable[[], LibraryContract], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.library = library
        self.seq = 0                 # the newest query
        self.shown_seq = 0           # the query whose results are on screen
        self.last_query: tuple[str, Any] | None = None
        self.last_result: SearchResult | None = None
        self.last_error: BaseException | None = None   # of the newest query
        self._thumb_job: JobWorker | None = None

    @property
    def pending(self) -> bool:
        return self.last_query is not None and self.shown_seq != self.seq

    def clear(self) -> None:
        """Forget the query; whatever is in flight is dropped when it lands."""
        self.seq += 1
        self.last_query = None

    def run(self, kind: str, query: Any) -> int:
        if kind not in QUERY_KINDS:
            raise ValueError(f"unknown query kind {kind!r}")
        self.seq += 1
        seq = self.seq
        self.last_query = (kind, query)
        self.last_error = None
        lib = self.library()
        fn = {
            "text": lambda: lib.search_text(query),
            "audio": lambda: lib.search_audio(query),
            "mic": lambda: lib.search_audio(query),
            "image": lambda: lib.search_image(query),
            "like": lambda: lib.search_like(query.best_clip_id),
        }[kind]
        started = time.perf_counter()
        # the "search" lane runs one query at a time and drops a waiting one a newer one replaces
        self.workers.call(fn, on_result=lambda r, s=seq: self._landed(s, r, started),
                          on_error=lambda exc, tb, s=seq: self._failed(s, exc, tb), lane="search")
        return seq

    def _landed(self, seq: int, result: SearchResult, started: float) -> None:
        if seq != self.seq:
            return
        self.shown_seq = seq
        self.last_result = result
        self._load_thumbnails(seq, result.moments)
        self.results.emit(result, time.perf_counter() - started)

    def _failed(self, seq: int, exc: BaseException, tb: str) -> None:
        if seq == self.seq:
            self.shown_seq = seq
            self.last_error = exc
            self.failed.emit(exc, tb)

    def _load_thumbnails(self, seq: int, moments: list[Moment]) -> None:
        if self._thumb_job is not None:
            self._thumb_job.cancel()
        if not moments:
            return
        lib = self.library()

        def thumbs(token: CancelToken) -> Iterator[Progress]:
            for row, m in enumerate(moments):
                token.raise_if_cancelled()
                try:
                    # QImage may be built off the GUI thread, QPixmap may not
                    img = QImage(str(lib.thumbnail(m.path, m.best_time)))
                except Exception as exc:
                    log.debug("thumbnail failed for %s: %s", m.path, exc)
                    continue
                yield Progress("thumbnails", row + 1, len(moments), info={"row": row, "image": img})

        job = JobWorker(thumbs)
        job.signals.progress.connect(lambda p, s=seq: self._on_thumbnail(s, p))
        self._thumb_job = job
        self.workers.start(job, lane="thumbnails")

    def _on_thumbnail(self, seq: int, p: Progress) -> None:
        if seq == self.shown_seq and not p.info["image"].isNull():
            self.thumbnail.emit(p.info["row"], p.info["image"])
