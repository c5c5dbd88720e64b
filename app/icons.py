"""Icons drawn for this app (resources/icons/*.svg), with a blank fallback if they are missing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon


def _icon_dir() -> Path:
    """resources/icons in a source tree, or <prefix>/share/mmvsearch/resources/icons when installed."""
    from engine.resources import resource_path

    try:
        return resource_path("icons")
    except FileNotFoundError:
        return Path(__file__).resolve().parent.parent / "resources" / "icons"


ICON_DIR = _icon_dir()
APP_ICON = ICON_DIR / "mmvsearch.svg"


@cache
def icon(name: str) -> QIcon:
    path = ICON_DIR / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
