"""The grid of moments: thumbnail at the moment, file name, time range, score, why it matched."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import QListView, QMenu, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.format import span
from engine.search.moments import Moment

THUMB = QSize(192, 108)
CARD = QSize(208, 196)
REASON_COLOURS = {"seen": "#2f855a", "heard": "#2b6cb0", "said": "#9c4221", "read": "#6b46c1"}
READ_CHIP_MAX = 150  # px: the 'read' chip shows the words read, elided
MomentRole = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


class ResultsModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.moments: list[Moment] = []
        self.thumbs: dict[int, QPixmap] = {}

    def set_moments(self, moments: list[Moment]) -> None:
        self.beginResetModel()
        self.moments = list(moments)
        self.thumbs = {}
        self.endResetModel()

    def set_thumbnail(self, row: int, pixmap: QPixmap) -> None:
        if 0 <= row < len(self.moments):
            self.thumbs[row] = pixmap
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self.moments)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        m = self.moments[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(m.path).name
        if role == MomentRole:
            return m
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.get(index.row())
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{m.path}\n{span(m.start, m.end)} · score {m.score:.3f} · {', '.join(m.reasons)}"
            tip += f"\n“{m.snippet}”" if m.snippet else ""
            return tip + (f"\nread on screen: “{m.read_text}”" if m.read_text and m.read_text != m.snippet else "")
        return None


class MomentDelegate(QStyledItemDelegate):
    """Paints one card; painting by hand keeps a grid of hundreds of results cheap."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return CARD

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        m: Moment = index.data(MomentRole)
        pix: QPixmap | None = index.data(Qt.ItemDataRole.DecorationRole)
        r = option.rect.adjusted(4, 4, -4, -4)
        pal = option.palette
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.setPen(QColor(pal.highlight().color()) if selected else QColor(0, 0, 0, 40))
        p.setBrush(pal.highlight().color().lighter(185) if selected else pal.base())
        p.drawRoundedRect(r, 8, 8)
        thumb = QRect(r.left() + 4, r.top() + 4, THUMB.width(), THUMB.height())
        if pix is not None and not pix.isNull():
            scaled = pix.scaled(thumb.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                Qt.TransformationMode.SmoothTransformation)
            p.fillRect(thumb, QColor("#111"))
            p.drawPixmap(thumb.left() + (thumb.width() - scaled.width()) // 2,
                         thumb.top() + (thumb.height() - scaled.height()) // 2, scaled)
        else:
            p.fillRect(thumb, QColor("#2d3748"))
            p.setPen(QColor("#a0aec0"))
            p.drawText(thumb, Qt.AlignmentFlag.AlignCenter, "…")
        # time range badge over the thumbnail, like video sites do
        badge = span(m.start, m.end)
        f = QFont(option.font)
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.85))
        p.setFont(f)
        bw = p.fontMetrics().horizontalAdvance(badge) + 10
        brect = QRect(thumb.right() - bw - 4, thumb.bottom() - 20, bw, 16)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
        p.drawRoundedRect(brect, 4, 4)
        p.setPen(QColor("white"))
        p.drawText(brect, Qt.AlignmentFlag.AlignCenter, badge)
        # file name
        y = thumb.bottom() + 6
        p.setPen(pal.text().color())
        bold = QFont(option.font)
        bold.setBold(True)
        p.setFont(bold)
        name = p.fontMetrics().elidedText(Path(m.path).name, Qt.TextElideMode.ElideMiddle, r.width() - 10)
        p.drawText(QRect(r.left() + 6, y, r.width() - 12, 18), Qt.AlignmentFlag.AlignLeft, name)
        y += 20
        # reasons as coloured chips, then the score
        p.setFont(f)
        x = r.left() + 6
        for reason in m.reasons:
            label = chip_label(p, reason, m)
            w = p.fontMetrics().horizontalAdvance(label) + 12
            chip = QRect(x, y, w, 16)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(REASON_COLOURS.get(reason, "#4a5568")))
            p.drawRoundedRect(chip, 8, 8)
            p.setPen(QColor("white"))
            p.drawText(chip, Qt.AlignmentFlag.AlignCenter, label)
            x += w + 4
        p.setPen(pal.placeholderText().color())
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        p.drawText(QRect(x, y, r.right() - x - 6, 16), right, f"{m.score:.2f}")
        y += 20
        if m.snippet:
            p.setPen(pal.text().color())
            it = QFont(f)
            it.setItalic(True)
            p.setFont(it)
            text = p.fontMetrics().elidedText(f"“{m.snippet}”", Qt.TextElideMode.ElideRight, r.width() - 12)
            p.drawText(QRect(r.left() + 6, y, r.width() - 12, 16), Qt.AlignmentFlag.AlignLeft, text)
        p.restore()


def chip_label(p: QPainter, reason: str, m: Moment) -> str:
    """A chip's text: the reason, and for 'read' the words read on screen (elided)."""
    if reason != "read" or not m.read_text:
        return reason
    return p.fontMetrics().elidedText(f"read “{m.read_text}”", Qt.TextElideMode.ElideRight, READ_CHIP_MAX)


class ResultsGrid(QListView):
    """Arrow keys move between moments (QListView does that); Enter/double-click plays one."""

    activated_moment = Signal(object)   # Moment to play
    current_moment = Signal(object)     # Moment now selected (or None)
    more_like_this = Signal(object)
    open_external = Signal(object)
    reveal = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results = ResultsModel(self)
        self.setModel(self.results)
        self.setItemDelegate(MomentDelegate(self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setGridSize(CARD)
        self.setSpacing(0)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.setWordWrap(True)
        self.setMouseTracking(True)
        self.doubleClicked.connect(lambda idx: self.activated_moment.emit(idx.data(MomentRole)))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.selectionModel().currentChanged.connect(
            lambda cur, _prev: self.current_moment.emit(cur.data(MomentRole) if cur.isValid() else None))

    def set_moments(self, moments: list[Moment]) -> None:
        self.results.set_moments(moments)
        # a fresh model resets the selection model's connections' source; reselect the first hit
        if moments:
            self.setCurrentIndex(self.results.index(0))

    def selected_moment(self) -> Moment | None:
        idx = self.currentIndex()
        return idx.data(MomentRole) if idx.isValid() else None

    def _menu(self, pos: QPoint) -> None:
        idx = self.indexAt(pos)
        if not idx.isValid():
            return
        m: Moment = idx.data(MomentRole)
        menu = QMenu(self)
        menu.addAction("Play", lambda: self.activated_moment.emit(m))
        menu.addAction("More like this", lambda: self.more_like_this.emit(m)).setEnabled(m.best_clip_id >= 0)
        menu.addSeparator()
        menu.addAction("Open in system player", lambda: self.open_external.emit(m))
        menu.addAction("Show in folder", lambda: self.reveal.emit(m))
        menu.exec(self.viewport().mapToGlobal(pos))

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.selected_moment() is not None:
            self.activated_moment.emit(self.selected_moment())
            return
        super().keyPressEvent(e)
