"""The Library facade: one object that the CLI and the GUI drive.

Thread model: the facade may be used from a GUI thread and one worker thread. Model loading is
lazy and guarded by a lock (in engine.context.LibraryContext, the part the lower layers get); the
database connection used for writing belongs to whichever job is running (one writer at a time,
enforced by ``_writer_lock``); searches and inspection use their own read connections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sqlite_utils

from engine.context import LibraryContext
from engine.contract import FolderSummary, VideoRow
from engine.errors import LibraryError
from engine.index import db as dbmod
from engine.index.lock import WriterLock
from engine.jobs import CancelToken, Progress
from engine.library import LibraryPaths, Settings, resolve_library_dir
from engine.models.config import DEFAULT_MODEL, get_config
from engine.search.moments import SearchResult

if TYPE_CHECKING:
    from engine.index.distributed import RayOptions
    from engine.models.mmv import MMVModel
    from engine.models.query_model import QueryModel
    from engine.search.searcher import Searcher

BASE_MODEL_ID = get_config(DEFAULT_MODEL).base_model_id



@dataclass
class LibraryStatus:
    root: str
    n_videos: int
    n_done: int
    n_errors: int
    n_pending: int
    n_missing: int
    n_clips: int
    seconds: float
    active_model: str
    device: str
    folders: list[FolderSummary]


class Library:
    """A video library on disk plus the models that index and search it.

    Implements engine.contract.LibraryContract, what the GUI calls (checked by tests/test_contract.py)."""

    def __init__(self, root: str | Path | None = None, device: str | None = None, model_name: str = "mmv-base",
                 one_shot: bool = False):
        """``one_shot``: this process answers one request and exits (the command line), so queries
        take the quickest path to start (the NumPy text tower: ~0.15 s less than starting ONNX
        Runtime, which answers each later query ~7 ms sooner)."""
        paths = LibraryPaths(resolve_library_dir(root)).ensure()
        settings = Settings.load(paths.settings)
        # What the lower layers (index, speech, ocr, search, train, topics) get: never this facade.
        self.ctx = LibraryContext(paths, settings, dbmod.connect(paths.db), model_name=model_name,
                                  device_request=device or settings.device)
        self.ctx.on_reset(self._forget_searcher)
        self._writer_lock = WriterLock(paths.root)  # one writer across threads and processes
        # Inspection (videos/folders/status) reads through its own connection, so a GUI refresh never
        # runs inside the writer's open transaction on another thread.
        self._reader = sqlite3.connect(str(paths.db), timeout=30.0, check_same_thread=False)
        self._searcher: Searcher | None = None
        self._one_shot = one_shot

    # ---- the context's parts, for the CLI, the GUI and tests ------------------------------
    @property
    def paths(self) -> LibraryPaths:
        return self.ctx.paths

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def db(self) -> sqlite_utils.Database:
        return self.ctx.db

    @property
    def model_name(self) -> str:
        return self.ctx.model_name

    @property
    def device_request(self) -> str:
        return self.ctx.device_request

    # ---- models -------------------------------------------------------------------------
    @property
    def base_model_id(self) -> str:
        return self.ctx.base_model_id

    @property
    def active_model_id(self) -> str:
        return self.ctx.active_model_id

    def load_models(self) -> MMVModel:
        """Load (once) the backbones and the active heads; returns the MMVModel. Slow the first time."""
        return self.ctx.load_models()

    @property
    def models_loaded(self) -> bool:
        return self.ctx.model is not None

    def _forget_searcher(self) -> None:
        self._searcher = None

    # ---- indexing -----------------------------------------------------------------------
    def index(self, paths: list[str | Path], token: CancelToken | None = None,
              transcribe: bool | None = None, read_text: bool | None = None,
              retry_errors: bool = False, ray: RayOptions | None = None) -> Iterator[Progress]:
        """Add files/folders; a generator of Progress. Unchanged files are skipped, and so are files
        that failed before unless ``retry_errors``. Then, when on-screen text is on (``read_text``,
        default: the setting), its OCR stage catches up. With ``ray``, the decoding and embedding
        run on Ray workers and this process alone writes."""
        from engine.index.indexer import index_paths

        if not self._writer_lock.acquire(blocking=False):
            raise LibraryError("another job is already writing to this library")
        token = token or CancelToken()
        try:
            files = [Path(p) for p in paths]
            transcribe = self.settings.transcribe if transcribe is None else transcribe
            if ray is None:
                from engine.train.models import embed_missing

                stages = index_paths(self.ctx, files, token, transcribe, retry_errors=retry_errors,
                                     catch_up=lambda model: embed_missing(self.ctx, model, token))
            else:
                from engine.index.distributed import index_paths_ray

                stages = index_paths_ray(self.ctx, files, token, transcribe, ray, retry_errors)
            final = None
            for progress in stages:
                if progress.stage == "done":
                    final = progress  # reported after the OCR stage: the CLI reads its summary
                    continue
                yield progress
                if progress.stage == "cancelled":
                    return
            if self.settings.read_text if read_text is None else read_text:
                for progress in _read_text_stage(self.ctx, token):
                    yield progress
                    if progress.stage == "cancelled":
                        return
            yield from self._refresh_segment_indexes()
            if final is not None:
                yield final
        finally:
            self._writer_lock.release()
            self._searcher = None  # pick up the new vectors

    def _refresh_segment_indexes(self) -> Iterator[Progress]:
        from engine.models.config import get_config
        from engine.speech.segment_index import refresh_indexes

        yield from refresh_indexes(self.db.conn, self.paths.ann_dir, get_config(self.ctx.model_name).text_dim)

    def reset_errors(self, folder: str | Path | None = None) -> int:
        """Make the videos recorded as unreadable (under ``folder``) pending again, so the next
        index run tries them; returns how many."""
        from engine.index.store import reset_errors

        return reset_errors(self.ctx, None if folder is None else Path(folder))

    def error_folders(self) -> list[str]:
        """The added folders (or files) that hold videos recorded as unreadable: what a retry rescans."""
        return [f.path for f in self.folders() if f.n_errors]

    def transcribe(self, token: CancelToken | None = None) -> Iterator[Progress]:
        """Add transcripts and sound captions to videos indexed without them (no video re-embedding)."""
        from engine.speech.transcribe_library import transcribe_library

        if not self._writer_lock.acquire(blocking=False):
            raise LibraryError("another job is already writing to this library")
        try:
            yield from transcribe_library(self.ctx, token or CancelToken())
            yield from self._refresh_segment_indexes()
        finally:
            self._writer_lock.release()
            self._searcher = None

    def remove(self, path: str | Path) -> int:
        """Forget a file or every file under a folder. Returns how many videos were removed."""
        from engine.index.store import remove_videos

        with self._writer_lock:
            n = remove_videos(self.ctx, Path(path))
        self._searcher = None
        return n

    # ---- search -------------------------------------------------------------------------
    def searcher(self) -> Searcher:
        from engine.index.upgrade import needs_catch_up
        from engine.search.searcher import Searcher

        if self._searcher is None:
            if needs_catch_up(self.ctx):
                self._embed_missing(self.load_models())
            # A loaded (warm) torch model serves queries as it is; otherwise the torch-free query
            # model (engine.models.query_model) answers text queries without importing torch.
            model = self.ctx.model if self.ctx.model is not None else self._query_model()
            self._searcher = Searcher(self.ctx, model)
        return self._searcher

    def _query_model(self) -> QueryModel:
        from engine.models.query_model import load_query_model

        return load_query_model(self.ctx, onnx_text=not self._one_shot)

    def _embed_missing(self, model) -> None:
        """Re-project stored clips the loaded model has no vectors for (after an upgrade of the
        packaged heads), unless a job is writing: that job (indexing) does it instead."""
        from engine.train.models import embed_missing

        if not self._writer_lock.acquire(blocking=False):
            return
        try:
            for _ in embed_missing(self.ctx, model):
                pass
        finally:
            self._writer_lock.release()

    def search_text(self, text: str, top_k: int = 20) -> SearchResult:
        return self.searcher().search_text(text, top_k)

    def search_audio(self, audio: str | Path | np.ndarray, top_k: int = 20, sample_rate: int = 16000) -> SearchResult:
        _check_query_file(audio, "audio")  # fail fast, before the models load
        return self.searcher().search_audio(audio, top_k, sample_rate)

    def search_image(self, image: str | Path | np.ndarray, top_k: int = 20) -> SearchResult:
        _check_query_file(image, "image")
        return self.searcher().search_image(image, top_k)

    def search_like(self, clip_id: int, top_k: int = 20) -> SearchResult:
        return self.searcher().search_like(clip_id, top_k)

    # ---- inspection ---------------------------------------------------------------------
    def videos(self, folder: str | Path | None = None) -> list[VideoRow]:
        sql = ("SELECT v.id, v.path, v.status, v.error, v.duration, COUNT(c.id), v.has_audio, v.transcribed "
               "FROM videos v LEFT JOIN clips c ON c.video_id = v.id")
        args: list = []
        if folder is not None:
            prefix = str(Path(folder).expanduser().resolve()).rstrip("/") + "/"
            sql += " WHERE v.path LIKE ? ESCAPE '\\'"
            args.append(_like_prefix(prefix))
        sql += " GROUP BY v.id ORDER BY v.path"
        return [VideoRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7]))
                for r in self._reader.execute(sql, args)]

    def folders(self) -> list[FolderSummary]:
        """Folders the user added (roots), with counts."""
        roots = [r[0] for r in self._reader.execute("SELECT value FROM meta WHERE key LIKE 'root:%' ORDER BY value")]
        out = []
        for root in roots:
            # A root is a folder (its videos are below it) or a single file the user added.
            rows = self.videos(root) or [v for v in self.videos() if v.path == root]
            out.append(_summarise(root, rows))
        return out

    def status(self) -> LibraryStatus:
        rows = self.videos()
        s = _summarise(str(self.paths.root), rows)
        n_clips = self._reader.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
        model = self.ctx.model
        device = model.device_note if model is not None else self.device_request
        return LibraryStatus(str(self.paths.root), s.n_videos, s.n_done, s.n_errors, s.n_pending, s.n_missing,
                             n_clips, s.seconds, self.active_model_id, device, self.folders())

    def clip(self, clip_id: int) -> dict:
        row = self._reader.execute(
            "SELECT c.id, c.video_id, c.start, c.end, v.path FROM clips c JOIN videos v ON v.id = c.video_id "
            "WHERE c.id = ?", (clip_id,)).fetchone()
        if row is None:
            from engine.errors import QueryError

            raise QueryError(f"no clip with id {clip_id}")
        return {"id": row[0], "video_id": row[1], "start": row[2], "end": row[3], "path": row[4]}

    def thumbnail(self, path: str | Path, t: float, width: int = 320) -> Path:
        """A JPEG of the frame at ``t`` seconds, cached in the library's thumbs/ folder."""
        from engine.media.thumbnails import thumbnail

        return thumbnail(Path(path), t, self.paths.thumbs_dir, width)

    def save_settings(self) -> None:
        self.settings.save(self.paths.settings)

    def close(self) -> None:
        try:
            self.db.conn.close()
        except Exception:
            pass

    # ---- topics (engine/topics) ----------------------------------------------------------
    def topics(self, k: int | None = None):
        """The library's clips grouped into named topics under the active model (a TopicSet);
        ``k`` None chooses the number (SwAV prototypes of a swav model, else the silhouette)."""
        from engine.topics.discover import discover_topics

        return discover_topics(self.ctx, k)

    # ---- fine-tuning and model management (engine/train) --------------------------------
    def train(self, token: CancelToken | None = None, **options) -> Iterator[Progress]:
        """Fine-tune the heads on this library and switch to the result; a generator of Progress.
        ``options``: see engine.train.trainer.TrainConfig (epochs, minutes, device, resume, ...)."""
        from engine.train.trainer import train

        if not self._writer_lock.acquire(blocking=False):
            raise LibraryError("another job is already writing to this library")
        try:
            yield from train(self.ctx, token=token or CancelToken(), **options)
        finally:
            self._writer_lock.release()
            self._searcher = None

    def list_models(self) -> list[dict]:
        from engine.train.models import list_models

        return list_models(self.ctx)

    def use_model(self, model_id: str) -> None:
        """Switch (or revert) the active model; its embeddings and index files are kept per model."""
        from engine.train.models import use_model

        with self._writer_lock:
            use_model(self.ctx, model_id)


def _read_text_stage(lib: LibraryContext, token: CancelToken) -> Iterator[Progress]:
    """The OCR stage (engine.ocr.catchup); a cancel ends the job like a cancelled indexing run."""
    from engine.errors import Cancelled
    from engine.ocr.catchup import read_library

    try:
        yield from read_library(lib, token)
    except Cancelled:
        yield Progress("cancelled", message="cancelled while reading on-screen text (it resumes next time)")


def _check_query_file(query, kind: str) -> None:
    if isinstance(query, (str, Path)) and not Path(query).is_file():
        from engine.errors import QueryError

        raise QueryError(f"{kind} file not found: {query}")


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _summarise(path: str, rows: list[VideoRow]) -> FolderSummary:
    count = lambda s: sum(1 for r in rows if r.status == s)
    return FolderSummary(path, len(rows), count("done"), count("error"), count("pending"), count("missing"),
                         sum(r.duration or 0.0 for r in rows if r.status == "done"))
