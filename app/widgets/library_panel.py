"""Left panel: the folders in the library, their counts and errors, and the indexing progress.

It only displays what it is given (a :class:`LibrarySnapshot`) and emits what the user asked for;
the main window decides what runs where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.format import duration, index_progress_line
from app.icons import icon
from engine.contract import FolderSummary, LibraryContract, VideoRow
from engine.jobs import Progress

PathRole = Qt.ItemDataRole.UserRole + 1


@dataclass
class LibrarySnapshot:
    """What the panel shows; built from ``lib.folders()`` and ``lib.videos()`` in a worker thread."""

    folders: list[FolderSummary] = field(default_factory=list)
    errors: dict[str, list[VideoRow]] = field(default_factory=dict)  # folder -> its videos with status 'error'
    n_videos: int = 0
    n_done: int = 0
    seconds: float = 0.0


def take_snapshot(lib: LibraryContract) -> LibrarySnapshot:
    folders = lib.folders()
    videos = lib.videos()
    errors: dict[str, list[VideoRow]] = {}
    for v in videos:
        if v.status == "error":
            owner = next((f.path for f in folders
                          if v.path == f.path or v.path.startswith(f.path.rstrip("/") + "/")),
                         str(Path(v.path).parent))
            errors.setdefault(owner, []).append(v)
    done = [v for v in videos if v.status == "done"]
    return LibrarySnapshot(folders, errors, len(videos), len(done), sum(v.duration or 0.0 for v in done))


class LibraryPanel(QWidget):
    add_folder = Signal()
    rescan = Signal(str)
    retry = Signal(str)   # index the folder's failed files again
    remove = Signal(str)
    pause = Signal()
    resume = Signal()
    cancel = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshot = LibrarySnapshot()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        head = QHBoxLayout()
        title = QLabel("<b>Library</b>")
        self.add_btn = QPushButton(icon("folder-add"), "Add folder…")
        self.add_btn.setToolTip("Add a folder of videos (or drop folders and files anywhere on the window)")
        self.add_btn.clicked.connect(self.add_folder)
        head.addWidget(title, 1)
        head.addWidget(self.add_btn)
        lay.addLayout(head)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Videos", "Errors"])
        self.tree.setRootIsDecorated(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        lay.addWidget(self.tree, 1)
        self.empty = QLabel("No videos yet.\n\nDrop folders of videos on this window, or click "
                            "“Add folder…”. Indexing runs in the background; you can search while it works.")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(placeholder-text); padding: 12px;")
        lay.addWidget(self.empty, 1)
        btns = QHBoxLayout()
        self.rescan_btn = QPushButton("Re-scan")
        self.rescan_btn.setToolTip("Look for new, changed and deleted files in this folder")
        self.rescan_btn.clicked.connect(lambda: (f := self.selected_folder()) and self.rescan.emit(f))
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setToolTip("Forget this folder (the files themselves are not touched)")
        self.remove_btn.clicked.connect(lambda: (f := self.selected_folder()) and self.remove.emit(f))
        self.retry_btn = QPushButton("Retry failed")
        self.retry_btn.setToolTip("Try again the files of this folder that could not be indexed")
        self.retry_btn.clicked.connect(lambda: (f := self.selected_folder()) and self.retry.emit(f))
        self.retry_btn.hide()
        btns.addWidget(self.rescan_btn)
        btns.addWidget(self.retry_btn)
        btns.addWidget(self.remove_btn)
        lay.addLayout(btns)
        self.summary = QLabel()
        self.summary.setStyleSheet("color: palette(placeholder-text);")
        lay.addWidget(self.summary)

        self.job_box = QGroupBox("Indexing")
        jl = QVBoxLayout(self.job_box)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.job_label = QLabel()
        self.job_label.setWordWrap(True)
        jl.addWidget(self.bar)
        jl.addWidget(self.job_label)
        jb = QHBoxLayout()
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setToolTip("Stops after the current file. Finished files are kept: "
                                  "Resume (or a re-scan) continues where it stopped.")
        self.pause_btn.clicked.connect(self._pause_clicked)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop indexing. Files already indexed stay searchable.")
        self.cancel_btn.clicked.connect(self.cancel)
        jb.addWidget(self.pause_btn)
        jb.addWidget(self.cancel_btn)
        jl.addLayout(jb)
        self.job_box.setVisible(False)
        lay.addWidget(self.job_box)
        self.paused = False
        self.set_snapshot(LibrarySnapshot())

    # ---- library contents --------------------------------------------------------------
    def set_snapshot(self, snap: LibrarySnapshot) -> None:
        selected = self.selected_folder()
        self.snapshot = snap
        self.tree.clear()
        for f in snap.folders:
            # "12/40" while some are still waiting, so progress is visible per folder
            count = str(f.n_videos) if not f.n_pending else f"{f.n_done}/{f.n_videos}"
            item = QTreeWidgetItem([Path(f.path).name or f.path, count, str(f.n_errors or "")])
            item.setData(0, PathRole, f.path)
            tip = (f"{f.path}\n{f.n_done} indexed · {f.n_pending} waiting · {f.n_errors} errors"
                   f" · {f.n_missing} missing · {duration(f.seconds)} of video")
            for c in range(3):
                item.setToolTip(c, tip)
            if f.n_errors:
                item.setForeground(2, Qt.GlobalColor.red)
            for v in snap.errors.get(f.path, []):
                child = QTreeWidgetItem([Path(v.path).name, "", "error"])
                child.setData(0, PathRole, v.path)
                child.setForeground(2, Qt.GlobalColor.red)
                reason = v.error or "unreadable"
                for c in range(3):
                    child.setToolTip(c, f"{v.path}\n{reason}")
                child.setText(1, "")
                sub = QTreeWidgetItem([reason])
                sub.setFirstColumnSpanned(True)
                sub.setForeground(0, Qt.GlobalColor.gray)
                child.addChild(sub)
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            if f.path == selected:
                self.tree.setCurrentItem(item)
        empty = not snap.folders
        self.tree.setVisible(not empty)
        self.empty.setVisible(empty)
        self.summary.setText("" if empty else
                             f"{snap.n_done} of {snap.n_videos} videos indexed · {duration(snap.seconds)}")
        self._update_buttons()

    def selected_folder(self) -> str | None:
        item = self.tree.currentItem()
        while item is not None and item.parent() is not None:
            item = item.parent()
        return item.data(0, PathRole) if item is not None else None

    def select_folder(self, path: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            if self.tree.topLevelItem(i).data(0, PathRole) == path:
                self.tree.setCurrentItem(self.tree.topLevelItem(i))

    def _update_buttons(self) -> None:
        busy = self.job_box.isVisible() and not self.paused
        has = self.selected_folder() is not None
        self.rescan_btn.setEnabled(has and not busy)
        failed = bool(self.snapshot.errors.get(self.selected_folder() or ""))
        self.retry_btn.setVisible(failed)  # shown only where there is something to retry
        self.retry_btn.setEnabled(has and not busy and failed)
        self.remove_btn.setEnabled(has and not busy)

    def _menu(self, pos: QPoint) -> None:
        folder = self.selected_folder()
        if folder is None:
            return
        menu = QMenu(self)
        menu.addAction("Re-scan", lambda: self.rescan.emit(folder)).setEnabled(self.rescan_btn.isEnabled())
        menu.addAction("Retry failed files", lambda: self.retry.emit(folder)).setEnabled(self.retry_btn.isEnabled())
        menu.addAction("Remove from library", lambda: self.remove.emit(folder)).setEnabled(
            self.remove_btn.isEnabled())
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    # ---- job progress ------------------------------------------------------------------
    def job_started(self, label: str) -> None:
        self.paused = False
        self.job_box.setTitle(label)
        self.job_box.setVisible(True)
        self.bar.setRange(0, 0)   # busy until the first Progress says how much there is
        self.job_label.setText("Looking for videos…")
        self.pause_btn.setText("Pause")
        self.pause_btn.setEnabled(True)
        self.cancel_btn.setEnabled(True)
        self._update_buttons()

    def job_progress(self, p: Progress) -> None:
        if p.total > 0:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(p.fraction * 1000))
        self.job_label.setText(index_progress_line(p))

    def job_paused(self) -> None:
        self.paused = True
        self.bar.setRange(0, 1000)
        self.job_label.setText("Paused. Indexed files are kept; Resume continues with the rest.")
        self.pause_btn.setText("Resume")
        self.pause_btn.setEnabled(True)
        self.cancel_btn.setEnabled(True)
        self._update_buttons()

    def job_stopping(self) -> None:
        self.job_label.setText("Stopping after the current file…")
        self.pause_btn.setEnabled(False)
        self.cancel_btn.setEnabled(False)

    def job_finished(self) -> None:
        self.paused = False
        self.job_box.setVisible(False)
        self._update_buttons()

    def _pause_clicked(self) -> None:
        if self.paused:
            self.resume.emit()
        else:
            self.pause.emit()
