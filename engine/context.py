"""The library context: what the engine's lower layers need of an open library, and nothing more.

Indexing, storing, searching, transcribing and training work on a ``LibraryContext``: the paths,
the settings, the writer's database connection, which model config is in use, and a lazy,
lock-guarded model loader with a public reset. ``engine.api.Library`` (the facade the CLI and the
GUI drive) composes one and passes it down, so no lower layer imports the facade or reaches into
its private state; the import-layer contracts in pyproject.toml keep it that way.

It sits between the models (which it loads) and the layers that use it (index, speech, search,
train); it imports the model code only when a model is first needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from engine.errors import ModelError
from engine.library import LibraryPaths, Settings
from engine.models.config import get_config

if TYPE_CHECKING:
    from engine.models.mmv import MMVModel

log = logging.getLogger(__name__)


class LibraryContext:
    """An open library: paths, settings, the writer connection and the active model (loaded lazily).

    Thread model: model loading is guarded by a lock; ``db`` belongs to whichever job holds the
    facade's writer lock; readers (inspection, search) open connections of their own.
    """

    def __init__(self, paths: LibraryPaths, settings: Settings, db: sqlite_utils.Database, *,
                 model_name: str, device_request: str):
        self.paths = paths
        self.settings = settings
        self.db = db
        self.model_name = model_name
        self.device_request = device_request
        # How the active model is loaded; tests and benchmarks put a stub here (no backbones needed).
        self.loader: Callable[[LibraryContext], MMVModel] = load_active_model
        self._model: MMVModel | None = None
        self._lock = threading.Lock()
        self._on_reset: list[Callable[[], None]] = []

    @property
    def base_model_id(self) -> str:
        """The packaged model of this library's config (what "revert" goes back to)."""
        return get_config(self.model_name).base_model_id

    @property
    def active_model_id(self) -> str:
        """The model searches and new clips use: ``meta.active_model``, else the base."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'active_model'").fetchone()
        return row[0] if row and row[0] else self.base_model_id

    def load_models(self) -> MMVModel:
        """Load (once) the backbones and the active heads; slow the first time."""
        with self._lock:
            if self._model is None:
                self._model = self.loader(self)
            return self._model

    @property
    def model(self) -> MMVModel | None:
        """The loaded model, or None while nothing needed it yet."""
        return self._model

    def adopt_model(self, model: MMVModel) -> None:
        """Use an already loaded model of the same config (tests and benchmarks share one)."""
        with self._lock:
            self._model = model

    def reset_model(self) -> None:
        """Forget the loaded model (after switching or training one); the next use loads the active one.

        Callers above this layer (the facade's cached searcher) register with ``on_reset`` so they
        drop what they built on the old model, without the lower layers knowing about them.
        """
        with self._lock:
            self._model = None
        for callback in self._on_reset:
            callback()

    def on_reset(self, callback: Callable[[], None]) -> None:
        self._on_reset.append(callback)


def load_active_model(ctx: LibraryContext) -> MMVModel:
    """The library's active model: the base, or the base plus the active fine-tuned heads."""
    from engine.models.registry import create_model

    model = create_model(ctx.model_name, ctx.device_request)
    path = active_checkpoint(ctx)
    if path is not None:
        load_checkpoint_or_base(model, path, ctx.active_model_id)
    return model


def active_checkpoint(ctx: LibraryContext) -> Path | None:
    """The active fine-tuned model's checkpoint file; None when the base model is active (or the
    active model has no checkpoint, which is logged)."""
    active = ctx.active_model_id
    if active == ctx.base_model_id:
        return None
    row = ctx.db.execute("SELECT checkpoint FROM models WHERE id=?", (active,)).fetchone()
    if row is None or not row[0]:
        log.warning("active model %s has no checkpoint; using %s", active, ctx.base_model_id)
        return None
    return ctx.paths.models_dir / row[0]


def load_checkpoint_or_base(model: MMVModel, path: Path, model_id: str) -> None:
    """Load fine-tuned heads into ``model``; a checkpoint that does not fit (e.g. trained on an
    older backbone) leaves the base model, so search and indexing go on with it."""
    from engine.models.registry import load_heads_checkpoint

    try:
        load_heads_checkpoint(model, path, model_id)
    except ModelError as exc:
        log.warning("%s; using the base model %s (run `mmvsearch models use %s` to make it permanent)",
                    exc, model.model_id, model.model_id)
