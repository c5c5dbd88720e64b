"""Where a library lives on disk, and its user settings.

A library is one directory: ``library.db`` (SQLite, the source of truth), ``ann/`` (HNSW files,
rebuildable from the database), ``models/`` (fine-tuned checkpoints), ``thumbs/`` (thumbnail cache)
and ``settings.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import platformdirs

ENV_LIBRARY = "MMVSEARCH_LIBRARY"


def default_library_dir() -> Path:
    return Path(platformdirs.user_data_dir("mmvsearch", appauthor=False)) / "library"


def resolve_library_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``--library`` beats ``$MMVSEARCH_LIBRARY`` beats the per-user default."""
    chosen = explicit or os.environ.get(ENV_LIBRARY) or default_library_dir()
    return Path(chosen).expanduser().resolve()


@dataclass
class LibraryPaths:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "library.db"

    @property
    def ann_dir(self) -> Path:
        return self.root / "ann"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    def ensure(self) -> LibraryPaths:
        for d in (self.root, self.ann_dir, self.models_dir, self.thumbs_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts",
    ".m2ts", ".3gp", ".ogv",
)


@dataclass
class Settings:
    """User settings stored next to the database. Unknown keys in the file are ignored."""

    device: str = "auto"
    clip_seconds: float = 4.0
    transcribe: bool = True
    read_text: bool = False  # OCR of on-screen text after indexing (engine/ocr; docs/ocr.md: why off)
    excluded_patterns: list[str] = field(default_factory=lambda: ["*/.*", "*/@eaDir/*", "*.part"])
    watch_folders: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Settings:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)  # atomic: a crash never leaves half a settings file
