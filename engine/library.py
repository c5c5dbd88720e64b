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
        """Create the library's folders, private to the user (0700): the database holds every path
        and transcript. A root that cannot be created or is a file is a LibraryError."""
        from engine.errors import LibraryError

        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(f"the library location {self.root} is a file, not a folder")
        created = not self.root.exists()
        try:
            for d in (self.root, self.ann_dir, self.models_dir, self.thumbs_dir, self.cache_dir):
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
            if created:
                self.root.chmod(0o700)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise LibraryError(f"cannot create the library folder {self.root}: {exc.strerror or exc}") from exc
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
        """Read and validate the file; a missing file gives the defaults. A file that cannot be
        read or holds a bad value is a SettingsError naming the file and key: it is never replaced
        by defaults, so the next save cannot overwrite what the user wrote."""
        from engine.errors import SettingsError

        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read the settings file {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"the settings file {path} is not valid JSON ({exc}); fix or delete it") from exc
        if not isinstance(data, dict):
            raise SettingsError(f"the settings file {path} must hold a JSON object, not {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key, value in values.items():
            problem = _setting_problem(key, value, getattr(cls(), key))
            if problem:
                raise SettingsError(f"settings file {path}: \"{key}\" {problem}")
        return cls(**values)

    def save(self, path: Path) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(asdict(self), indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: a crash never leaves half a settings file


SETTING_RULES = {
    "device": lambda v: None if v in ("auto", "cpu", "mps") or str(v).startswith("cuda")
    else "must be one of auto, cpu, cuda, mps",
    "clip_seconds": lambda v: None if 0.5 <= v <= 60 else "must be between 0.5 and 60 seconds",
}


def _setting_problem(key: str, value, default) -> str | None:
    """Why ``value`` is not acceptable for ``key`` (type of its default, then its own rule)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(x, str) for x in value)
    else:
        ok = isinstance(value, type(default)) or default is None
    if not ok:
        kind = "a list of strings" if isinstance(default, list) else type(default).__name__
        return f"must be {kind}, not {json.dumps(value)}"
    rule = SETTING_RULES.get(key)
    return rule(value) if rule else None
