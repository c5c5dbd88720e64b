"""Non-blocking notifications ("toasts") stacked in a corner of the main window.

Errors never open a modal box: the user keeps working, and can unfold the details (traceback or
per-file reason) when curious. Every notification is also kept in ``history`` (tests read it).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from engine.errors import MMVError


@dataclass
class Note:
    level: str      # info | warning | error
    title: str
    text: str
    details: str = ""


_COLOURS = {"info": "#2b6cb0", "warning": "#b7791f", "error": "#c53030"}


class Toast(QFrame):
    def __init__(self, note: Note, parent: QWidget) -> None:
        super().__init__(parent)
        self.note = note
        self.setObjectName("toast")
        self.setStyleSheet(
            f"#toast {{ background: palette(window); border: 1px solid {_COLOURS[note.level]};"
            f" border-left: 5px solid {_COLOURS[note.level]}; border-radius: 6px; }}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 8)
        top = QHBoxLayout()
        title = QLabel(f"<b>{note.title}</b>")
        top.addWidget(title, 1)
        self.details_btn = QPushButton("Details")
        self.details_btn.setFlat(True)
        self.details_btn.setVisible(bool(note.details))
        top.addWidget(self.details_btn)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(26)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        top.addWidget(close)
        lay.addLayout(top)
        body = QLabel(note.text)
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(body)
        self.details = QPlainTextEdit(note.details)
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        self.details.setMaximumHeight(160)
        lay.addWidget(self.details)
        self.details_btn.clicked.connect(self._toggle_details)
        self.setFixedWidth(380)
        # Errors stay longer: the user may be looking elsewhere when they happen.
        self._timer = QTimer(self, singleShot=True, interval=20000 if note.level == "error" else 7000)
        self._timer.timeout.connect(self.dismiss)
        self._timer.start()

    def _toggle_details(self) -> None:
        self.details.setVisible(not self.details.isVisible())
        self._timer.stop()  # someone is reading: do not vanish under their eyes
        self.adjustSize()
        if isinstance(self.parent(), QWidget):
            Notifier.of(self.parentWidget()).relayout()

    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()
        self.deleteLater()
        notifier = Notifier.of(self.parentWidget())
        if notifier is not None:
            notifier.forget(self)


class Notifier(QObject):
    """Owns the toasts shown over ``host`` (the main window's central widget)."""

    _by_host: dict[int, Notifier] = {}  # noqa: RUF012 - registry keyed by host id

    def __init__(self, host: QWidget) -> None:
        super().__init__(host)
        self.host = host
        self.toasts: list[Toast] = []
        self.history: list[Note] = []
        Notifier._by_host[id(host)] = self
        host.installEventFilter(self)
        host.destroyed.connect(lambda *_: Notifier._by_host.pop(id(host), None))

    @classmethod
    def of(cls, host: QWidget | None) -> Notifier | None:
        return cls._by_host.get(id(host)) if host is not None else None

    def notify(self, level: str, title: str, text: str, details: str = "") -> Toast:
        note = Note(level, title, text, details)
        self.history.append(note)
        toast = Toast(note, self.host)
        self.toasts.append(toast)
        while len(self.toasts) > 4:  # never bury the window under old news
            self.toasts[0].dismiss()
        toast.show()
        toast.raise_()
        self.relayout()
        return toast

    def info(self, title: str, text: str = "", details: str = "") -> Toast:
        return self.notify("info", title, text, details)

    def error(self, title: str, exc: BaseException | str, details: str = "") -> Toast:
        """An engine error becomes a one-line message; anything unexpected keeps its traceback."""
        if isinstance(exc, MMVError):
            text = str(exc) or type(exc).__name__
        elif isinstance(exc, BaseException):
            text = f"Unexpected {type(exc).__name__}: {exc}"
        else:
            text = str(exc)
        return self.notify("error", title, text, details)

    def forget(self, toast: Toast) -> None:
        if toast in self.toasts:
            self.toasts.remove(toast)
            self.relayout()

    def clear(self) -> None:
        for t in list(self.toasts):
            t.dismiss()

    def relayout(self) -> None:
        margin, y = 12, self.host.height() - 12
        for t in reversed(self.toasts):
            t.adjustSize()
            y -= t.height()
            t.move(self.host.width() - t.width() - margin, max(0, y))
            y -= 8

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.host and event.type() == QEvent.Type.Resize:
            self.relayout()
        return False
