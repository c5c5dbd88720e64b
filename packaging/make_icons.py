"""Render resources/icons/mmvsearch.svg into the icon formats Windows (.ico) and macOS (.icns) need.

``python packaging/make_icons.py`` (the installers workflow runs it before PyInstaller; it needs
PySide6 to draw the SVG and Pillow to write the icon files).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)


def render(size: int):
    from PIL import Image
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    QGuiApplication.instance() or QGuiApplication(["make_icons", "-platform", "offscreen"])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(ROOT / "resources" / "icons" / "mmvsearch.svg")).render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def main() -> int:
    big = render(1024)
    ico = ROOT / "packaging" / "windows" / "mmvsearch.ico"
    big.save(ico, sizes=[(s, s) for s in SIZES if s <= 256])
    icns = ROOT / "packaging" / "macos" / "mmvsearch.icns"
    big.save(icns)
    print(f"wrote {ico} and {icns}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
