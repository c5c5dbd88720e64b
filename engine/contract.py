"""The contract between the GUI (app/) and the engine: everything app/ calls on a library.

``engine.api.Library`` implements it; so does the GUI tests' fake (tests/gui/fake_library.py).
tests/test_contract.py checks both structurally: every member exists with the contract's
parameter names, kinds and defaults. app/ types its library as ``LibraryContract`` and never
probes it with ``hasattr``: what is here is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.jobs import CancelToken, Progress
from engine.library import LibraryPaths, Settings
from engine.search.moments import SearchResult

if TYPE_CHECKING:
    from engine.index.distributed import RayOptions
    from engine.topics.discover import TopicSet


@dataclass
class VideoRow:
    id: int
    path: str
    status: str
    error: str | None
    duration: float | None
    n_clips: int
    has_audio: bool
    transcribed: bool


@dataclass
class FolderSummary:
    path: str
    n_videos: int
    n_done: int
    n_errors: int
    n_pending: int
    n_missing: int
    seconds: float


class LoadedModel(Protocol):
    """What the GUI shows of a loaded model."""

    model_id: str
    device_note: str


class LibraryContract(Protocol):
    paths: LibraryPaths
    settings: Settings

    @property
    def active_model_id(self) -> str: ...

    @property
    def models_loaded(self) -> bool: ...

    def load_models(self) -> LoadedModel: ...

    # jobs: generators of Progress that honour the token
    def index(self, paths: list[str | Path], token: CancelToken | None = None, transcribe: bool | None = None,
              read_text: bool | None = None, retry_errors: bool = False,
              ray: RayOptions | None = None) -> Iterator[Progress]: ...

    def train(self, token: CancelToken | None = None, **options: object) -> Iterator[Progress]:
        """Fine-tune; options are engine.train.config.TrainConfig's fields (epochs, minutes, device,
        deep, objective, resume, holdout, patience, ...): the GUI passes the ones it shows."""
        ...

    def reset_errors(self, folder: str | Path | None = None) -> int: ...

    def remove(self, path: str | Path) -> int: ...

    # search
    def search_text(self, text: str, top_k: int = 20) -> SearchResult: ...

    def search_audio(self, audio: str | Path | np.ndarray, top_k: int = 20,
                     sample_rate: int = 16000) -> SearchResult: ...

    def search_image(self, image: str | Path | np.ndarray, top_k: int = 20) -> SearchResult: ...

    def search_like(self, clip_id: int, top_k: int = 20) -> SearchResult: ...

    # inspection
    def videos(self, folder: str | Path | None = None) -> list[VideoRow]: ...

    def folders(self) -> list[FolderSummary]: ...

    def thumbnail(self, path: str | Path, t: float, width: int = 320) -> Path: ...

    def topics(self, k: int | None = None) -> TopicSet: ...

    # models and settings
    def list_models(self) -> list[dict]: ...

    def use_model(self, model_id: str) -> None: ...

    def save_settings(self) -> None: ...

    def close(self) -> None: ...
