"""The OCR stage of indexing: read the screen of every indexed video that has not been read.

It runs after the indexer (``Library.index``), over new videos and, the same way, over videos of
an existing library indexed before OCR existed or while it was off: nothing is decoded for the
models again and nothing is re-embedded. One transaction per video, so a cancel or a kill keeps
every finished video and the next run resumes. A file that cannot be read is skipped and stays
unread (reported in ``info['failed']``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import MediaError
from engine.index.db import transaction
from engine.jobs import CancelToken, Progress
from engine.media.clips import clip_windows
from engine.ocr.extract import FRAMES_PER_CLIP, ReadStats, read_video
from engine.ocr.reader import INSTALL_HINT, TextReader, available
from engine.ocr.store import attach_vectors, save_screen_text, unread_videos

if TYPE_CHECKING:
    from engine.context import LibraryContext

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], np.ndarray]


def read_library(lib: LibraryContext, token: CancelToken, reader: TextReader | None = None, embed: Embed | None = None,
                 frames_per_clip: int = FRAMES_PER_CLIP) -> Iterator[Progress]:
    """OCR for every unread video; a generator of Progress in seconds of video (stage ``read``).
    The caller holds the library's writer lock."""
    todo = unread_videos(lib.db.conn)
    total = sum(d for _, _, d in todo)
    if not todo:
        return
    if reader is None and not available():
        log.warning(INSTALL_HINT)
        yield Progress("read", 0.0, total, "s", f"on-screen text skipped: {INSTALL_HINT}")
        return
    yield Progress("read", 0.0, total, "s", f"reading on-screen text in {len(todo)} videos")
    reader = reader or TextReader(threads=2)  # the models are idle now: both cores read
    embed = embed or _library_embed(lib)
    stats, failed, done_s, t0 = ReadStats(), [], 0.0, time.perf_counter()
    for n, (video_id, path, duration) in enumerate(todo, 1):
        token.raise_if_cancelled()
        try:
            spans = read_video(Path(path), _windows(lib, video_id, duration), reader, frames_per_clip, token, stats)
        except MediaError as exc:
            log.warning("cannot read the screen of %s: %s", path, exc)
            failed.append(path)
        else:
            spans = attach_vectors(spans, embed)
            with transaction(lib.db) as conn:
                save_screen_text(conn, video_id, spans)
        done_s += duration
        elapsed = time.perf_counter() - t0
        eta = elapsed / done_s * (total - done_s) if done_s > 0 else None
        yield Progress("read", done_s, total, "s", f"reading on-screen text {n}/{len(todo)}: {Path(path).name}",
                       eta, {"failed": list(failed), "frames": stats.frames, "frames_read": stats.read,
                             "frames_same": stats.same, "elapsed_s": elapsed})


def _windows(lib: LibraryContext, video_id: int, duration: float) -> list[tuple[float, float]]:
    """The video's clip windows as indexed (the clips table), else recomputed from its duration."""
    rows = lib.db.conn.execute("SELECT start, end FROM clips WHERE video_id = ? ORDER BY idx", (video_id,)).fetchall()
    return [(float(s), float(e)) for s, e in rows] or clip_windows(duration, lib.settings.clip_seconds)


def _library_embed(lib: LibraryContext) -> Embed:
    """The library's text tower (raw MiniLM features, the space the transcript search compares in)."""
    model = lib.load_models()
    return lambda texts: np.asarray(model.text_features(texts), dtype=np.float32)
