"""Icons drawn for this app (resources/icons/*.svg), with a blank fallback if they are missing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
APP_ICON = ICON_DIR / "mmvsearch.svg"


@cache
def icon(name: str) -> QIcon:
    path = ICON_DIR / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
