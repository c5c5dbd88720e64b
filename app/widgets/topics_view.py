"""The Topics view: the library's clips grouped into named topics (engine.topics), each shown with
a thumbnail of its most central moment; selecting a topic lists its moments, which play like
search results.

The grouping runs in a worker (``lib.topics(k)``); thumbnails load in their own lane, newest
request first, so a long topic list never blocks the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.widgets.results_grid import ResultsGrid
from app.workers import JobWorker, Workers
from engine.contract import LibraryContract
from engine.jobs import CancelToken, Progress

log = logging.getLogger(__name__)
ICON = QSize(112, 63)
TopicRole = Qt.ItemDataRole.UserRole + 2


class TopicsView(QWidget):
    play = Signal(object)       # Moment to play
    cue = Signal(object)        # Moment selected (cue it up in the player)
    shown = Signal(object)      # TopicSet now shown (tests wait on it)
    failed = Signal(object)     # exception

    def __init__(self, library: Callable[[], LibraryContract], workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library, self.workers = library, workers
        self.topic_set = None
        self._jobs: dict[str, JobWorker | None] = {"icons": None, "moments": None}
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.k_box = QSpinBox()
        self.k_box.setRange(0, 200)
        self.k_box.setSpecialValueText("auto")
        self.k_box.setPrefix("topics: ")
        self.k_box.setToolTip("Number of topics; auto chooses it (SwAV prototypes, or the best silhouette)")
        self.find_button = QPushButton("Find topics")
        self.find_button.clicked.connect(self.refresh)
        self.status = QLabel("Group the library's moments by what they show and sound like.")
        self.status.setWordWrap(True)
        bar.addWidget(self.k_box)
        bar.addWidget(self.find_button)
        bar.addWidget(self.status, 1)
        v.addLayout(bar)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.topic_list = QListWidget()
        self.topic_list.setIconSize(ICON)
        self.topic_list.setWordWrap(True)
        self.topic_list.currentItemChanged.connect(lambda cur, _prev: self._select(cur))
        self.grid = ResultsGrid()
        self.grid.activated_moment.connect(self.play)
        self.grid.current_moment.connect(self.cue)
        split.addWidget(self.topic_list)
        split.addWidget(self.grid)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 500])
        v.addWidget(split, 1)
        # No wider than the results grid it shares the window's middle with: the controls may clip
        # in a very narrow window rather than push the window wider.
        self.setMinimumSize(70, 70)

    # ---- computing -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the topics in a worker (k from the spin box; 0 means automatic)."""
        lib = self.library()
        k = self.k_box.value() or None
        self.find_button.setEnabled(False)
        self.status.setText("Finding topics…")
        self.workers.call(lib.topics, k, on_result=self._show, on_error=self._failed, lane="topics")

    def reset(self) -> None:
        """Forget the shown topics (another library or model is active now)."""
        self.topic_set = None
        self.topic_list.clear()
        self.grid.set_moments([])
        self.status.setText("Group the library's moments by what they show and sound like.")

    def ensure_computed(self) -> None:
        if self.topic_set is None and self.find_button.isEnabled():
            self.refresh()

    def _failed(self, exc: BaseException, _tb: str) -> None:
        self.find_button.setEnabled(True)
        self.status.setText(f"Could not find topics: {exc}")
        self.failed.emit(exc)

    def _show(self, topic_set) -> None:
        self.find_button.setEnabled(True)
        self.topic_set = topic_set
        self.status.setText(f"{len(topic_set.topics)} topics over {topic_set.clips} clips "
                            f"({topic_set.method}; {topic_set.seconds:.1f} s)")
        self.status.setToolTip(topic_set.criterion)
        self.topic_list.clear()
        for t in topic_set.topics:
            item = QListWidgetItem(f"{t.name}\n{t.clips} clips · {t.videos} video{'' if t.videos == 1 else 's'}")
            item.setData(TopicRole, t)
            item.setToolTip("\n".join(filter(None, [
                "shows: " + ", ".join(t.classes) if t.classes else "",
                "sounds: " + ", ".join(t.sounds) if t.sounds else "",
                "words: " + ", ".join(t.words) if t.words else ""])))
            self.topic_list.addItem(item)
        firsts = [t.moments[0] for t in topic_set.topics if t.moments]
        rows = [i for i, t in enumerate(topic_set.topics) if t.moments]
        self._load_images("icons", firsts, lambda i, img: self._set_icon(rows[i], img))
        if topic_set.topics:
            self.topic_list.setCurrentRow(0)
        else:
            self.grid.set_moments([])
        self.shown.emit(topic_set)

    def _set_icon(self, row: int, img: QImage) -> None:
        item = self.topic_list.item(row)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(img)))

    # ---- one topic -----------------------------------------------------------------------
    def _select(self, item: QListWidgetItem | None) -> None:
        topic = item.data(TopicRole) if item is not None else None
        moments = topic.moments if topic is not None else []
        self.grid.set_moments(moments)
        self._load_images("moments", moments,
                          lambda i, img: self.grid.results.set_thumbnail(i, QPixmap.fromImage(img)))

    def select_topic(self, row: int) -> None:
        self.topic_list.setCurrentRow(row)

    def _load_images(self, kind: str, moments: list, apply: Callable[[int, QImage], None]) -> None:
        """Thumbnails of ``moments`` in a worker; ``apply(i, image)`` in the GUI thread."""
        old = self._jobs.get(kind)
        if old is not None:
            old.cancel()
        if not moments:
            return
        lib = self.library()

        def images(token: CancelToken) -> Iterator[Progress]:
            for i, m in enumerate(moments):
                token.raise_if_cancelled()
                try:
                    img = QImage(str(lib.thumbnail(m.path, m.best_time)))  # QImage is thread-safe, QPixmap is not
                except Exception as exc:
                    log.debug("thumbnail failed for %s: %s", m.path, exc)
                    continue
                yield Progress("thumbnails", i + 1, len(moments), info={"i": i, "image": img})

        job = JobWorker(images)
        job.signals.progress.connect(
            lambda p, j=job: None if j is not self._jobs.get(kind) or p.info["image"].isNull()
            else apply(p.info["i"], p.info["image"]))
        self._jobs[kind] = job
        self.workers.start(job, lane=f"topic-{kind}")
