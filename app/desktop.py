"""Hand a file to the rest of the desktop: the system player and the file manager."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices


def open_in_system_player(path: str | Path) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def reveal_in_file_manager(path: str | Path) -> bool:
    """Show the file selected in its folder where the platform allows it, else open the folder."""
    p = Path(path)
    if sys.platform == "darwin":
        return QProcess.startDetached("open", ["-R", str(p)])[0]
    if sys.platform.startswith("win"):
        return QProcess.startDetached("explorer", [f"/select,{p}"])[0]
    if shutil.which("dbus-send"):
        # freedesktop FileManager1 selects the file in Nautilus, Dolphin, Nemo, Thunar...
        ok = QProcess.startDetached("dbus-send", [
            "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
            "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1.ShowItems",
            f"array:string:{QUrl.fromLocalFile(str(p)).toString()}", "string:"])[0]
        if ok:
            return True
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(p.parent)))
