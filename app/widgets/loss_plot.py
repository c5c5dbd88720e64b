"""A tiny line chart of the training loss, painted with QPainter (no plotting library needed)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

MAX_POINTS = 2000


class LossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.colours = {"loss": QColor("#3182ce"), "val_loss": QColor("#dd6b20")}
        self.setMinimumSize(360, 180)

    def clear(self) -> None:
        self.series = {}
        self.update()

    def add(self, x: float, y: float, name: str = "loss") -> None:
        if y is None or not math.isfinite(float(y)):
            return
        points = self.series.setdefault(name, [])
        points.append((float(x), float(y)))
        if len(points) > MAX_POINTS:   # a long run: halve the density, the shape stays
            points[:] = points[::2]
        self.update()

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        fm = p.fontMetrics()
        plot = QRectF(self.rect()).adjusted(fm.horizontalAdvance("0.000") + 12, 10, -10, -fm.height() - 8)
        p.setPen(QPen(self.palette().mid().color()))
        p.drawRect(plot)
        points = [pt for s in self.series.values() for pt in s]
        if not points:
            p.setPen(self.palette().placeholderText().color())
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss appears here while training runs")
            p.end()
            return
        xs, ys = [x for x, _ in points], [y for _, y in points]
        x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

        def at(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())

        p.setPen(self.palette().text().color())
        for frac in (0.0, 0.5, 1.0):
            yv = y0 + frac * (y1 - y0)
            pt = at(x0, yv)
            p.drawText(QRectF(0, pt.y() - fm.height() / 2, plot.left() - 6, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{yv:.3f}")
        p.drawText(QRectF(plot.left(), plot.bottom() + 4, plot.width(), fm.height()),
                   Qt.AlignmentFlag.AlignCenter, f"step {int(x1)}")
        for i, (name, s) in enumerate(self.series.items()):
            path = QPainterPath(at(*s[0]))
            for x, y in s[1:]:
                path.lineTo(at(x, y))
            colour = self.colours.get(name, QColor("#38a169"))
            p.setPen(QPen(colour, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            p.drawText(QRectF(plot.right() - 120, plot.top() + 4 + i * fm.height(), 114, fm.height()),
                       Qt.AlignmentFlag.AlignRight, f"{name} {s[-1][1]:.3f}")
        p.end()
