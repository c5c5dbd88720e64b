"""Add transcripts to videos that were indexed without them (no video is decoded or re-embedded)."""

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
from engine.speech.store import save_segments
from engine.speech.transcribe import SAMPLE_RATE, Transcriber, get_transcriber

if TYPE_CHECKING:
    from engine.context import LibraryContext

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], np.ndarray]


def pending_videos(lib: LibraryContext) -> list[tuple[int, str, float, bool]]:
    """(id, path, duration, has_audio) of indexed videos that have no transcript yet."""
    rows = lib.db.conn.execute("SELECT id, path, COALESCE(duration, 0), has_audio FROM videos "
                               "WHERE status = 'done' AND COALESCE(transcribed, 0) = 0 ORDER BY path")
    return [(r[0], r[1], float(r[2]), bool(r[3])) for r in rows]


def transcribe_library(lib: LibraryContext, token: CancelToken, embed: Embed | None = None,
                       transcriber: Transcriber | None = None) -> Iterator[Progress]:
    """Transcribe every indexed, untranscribed video; a generator of Progress in seconds of media.

    One transaction per video, so a cancel or a kill keeps every finished video. A file that can no
    longer be read is skipped (reported in ``info['failed']``) and stays untranscribed.
    The caller holds the library's writer lock.
    """
    todo = pending_videos(lib)
    total = sum(d for _, _, d, _ in todo)
    yield Progress("transcribe", 0.0, total, "s", f"{len(todo)} videos to transcribe")
    if not todo:
        return
    embed = embed or _library_embed(lib)
    transcriber = transcriber or get_transcriber(_speech_device(lib))
    done_s, failed, t0 = 0.0, [], time.perf_counter()
    for n, (video_id, path, duration, has_audio) in enumerate(todo, 1):
        token.raise_if_cancelled()
        try:
            segments = _transcribe_file(transcriber, Path(path), token) if has_audio else []
        except MediaError as exc:
            log.warning("cannot transcribe %s: %s", path, exc)
            failed.append(path)
        else:
            with transaction(lib.db) as conn:
                save_segments(conn, video_id, segments, embed)
        done_s += duration
        elapsed = time.perf_counter() - t0
        eta = elapsed / done_s * (total - done_s) if done_s > 0 else None
        yield Progress("transcribe", done_s, total, "s", f"{n}/{len(todo)} {Path(path).name}", eta,
                       {"video_id": video_id, "failed": list(failed)})


def _transcribe_file(transcriber: Transcriber, path: Path, token: CancelToken) -> list:
    from engine.media.audio import load_audio

    if not path.exists():
        raise MediaError(f"{path} no longer exists")
    wave = load_audio(path, sr=SAMPLE_RATE)
    return [] if wave is None else transcriber.transcribe(wave, SAMPLE_RATE, token=token)


def _library_embed(lib: LibraryContext) -> Embed:
    """The library's text tower (raw MiniLM features, the space transcript_hits compares in)."""
    model = lib.load_models()
    return lambda texts: np.asarray(model.text_features(texts), dtype=np.float32)


def _speech_device(lib: LibraryContext) -> str:
    request = (getattr(lib, "device_request", None) or "cpu").lower()
    return request if request in ("cuda", "auto") else "cpu"
