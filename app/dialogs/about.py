"""The About box: which version is running, so a user can say it in a bug report."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QMessageBox, QWidget

from engine import __version__


def about_text() -> str:
    return (f"<b>mmvsearch {html.escape(__version__)}</b><br>"
            "Find moments in your own videos by words, sound, speech or picture.<br>"
            "Everything runs on this computer; the models are included and nothing is downloaded.")


def show_about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About mmvsearch", about_text())
