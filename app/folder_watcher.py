"""Optional: watch the library's folders and re-index one when files appear or change in it.

QFileSystemWatcher is not recursive, so every sub-folder is watched too (up to a limit, since
inotify watches are a per-user resource). Bursts of changes (a copy of 200 files) are merged:
a folder is reported once things have been quiet for ``quiet_ms``.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

MAX_DIRS = 2000


class FolderWatcher(QObject):
    changed = Signal(str)   # the watched root whose contents changed

    def __init__(self, quiet_ms: int = 3000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._on_dir_changed)
        self.roots: list[str] = []
        self._dirty: set[str] = set()
        self.timer = QTimer(self, singleShot=True, interval=quiet_ms)
        self.timer.timeout.connect(self._flush)

    def watch(self, roots: list[str]) -> None:
        """Replace the watched roots (re-reads their sub-folders, which may have changed)."""
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        self.roots = [str(Path(r)) for r in roots if Path(r).is_dir()]
        dirs: list[str] = []
        for root in self.roots:
            for d, subdirs, _files in os.walk(root):
                subdirs[:] = [s for s in subdirs if not s.startswith(".")]
                dirs.append(d)
                if len(dirs) >= MAX_DIRS:
                    break
        if dirs:
            self.watcher.addPaths(dirs[:MAX_DIRS])

    def _on_dir_changed(self, path: str) -> None:
        root = next((r for r in self.roots if path == r or path.startswith(r.rstrip("/") + "/")), None)
        if root is not None:
            self._dirty.add(root)
            self.timer.start()   # restart: report once the burst is over

    def _flush(self) -> None:
        dirty, self._dirty = sorted(self._dirty), set()
        for root in dirty:
            self.changed.emit(root)
        self.watch(self.roots)   # pick up new sub-folders

    def stop(self) -> None:
        self.timer.stop()
        self._dirty.clear()
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
