"""The search box: text as you type, plus drops of an audio or image file, plus the microphone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.icons import icon
from app.widgets.mic_button import MicButton

AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".oga", ".m4a", ".aac", ".opus", ".wma", ".aiff", ".aif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def query_kind_of(path: str | Path) -> str | None:
    """'audio' / 'image' for a file that can be a query, else None."""
    ext = Path(path).suffix.lower()
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def _local_files(event: QDragEnterEvent | QDropEvent) -> list[str]:
    md = event.mimeData()
    return [u.toLocalFile() for u in md.urls() if u.isLocalFile()] if md.hasUrls() else []


class SearchBox(QLineEdit):
    file_dropped = Signal(str, str)     # path, 'audio' | 'image'
    down_pressed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Describe a moment – “dog catching a ball”, “someone says happy birthday”…  "
                                "(Ctrl+F or /) · drop a sound or a picture here")
        self.setClearButtonEnabled(True)
        self.setMinimumHeight(34)

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:
        files = _local_files(e)
        if files and query_kind_of(files[0]):
            e.acceptProposedAction()
        elif files:
            e.ignore()   # videos and folders go to the window: they are indexed, not searched
        else:
            super().dragEnterEvent(e)

    def dropEvent(self, e: QDropEvent) -> None:
        files = _local_files(e)
        if files and (kind := query_kind_of(files[0])):
            e.acceptProposedAction()
            self.file_dropped.emit(files[0], kind)
            return
        super().dropEvent(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Down:
            self.down_pressed.emit()    # arrows continue into the results
            return
        super().keyPressEvent(e)


class SearchBar(QWidget):
    """Search box + microphone + "search by file" button + one line saying what was searched."""

    open_query_file = Signal()

    def __init__(self, recorder_factory: Callable[[], Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        row = QHBoxLayout()
        self.box = SearchBox()
        self.mic = MicButton(recorder_factory)
        self.file_btn = QPushButton(icon("image"), "")
        self.file_btn.setFixedWidth(40)
        self.file_btn.setToolTip("Search with a sound file or a picture")
        self.file_btn.clicked.connect(self.open_query_file)
        row.addWidget(self.box, 1)
        row.addWidget(self.mic)
        row.addWidget(self.file_btn)
        lay.addLayout(row)
        self.info = QLabel()
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setStyleSheet("color: palette(placeholder-text);")
        self.info.setVisible(False)
        lay.addWidget(self.info)
        self.mic.state_changed.connect(lambda rec: self.box.setVisible(not rec))

    def set_info(self, html: str) -> None:
        self.info.setText(html)
        self.info.setVisible(bool(html))
