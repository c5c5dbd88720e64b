"""The indexing job: a generator of Progress that honours a cancel token.

Per video: decode (in a prefetch thread, overlapping the models), backbone features, heads,
optional transcription, then one transaction (clips + features + vectors + status). A kill at any
point leaves every video either done or pending; the next run resumes the pending ones. HNSW files
are saved every few videos and at the end, and are re-synced from SQLite on open anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import Cancelled, DiskFullError, LibraryBusyError, MediaError
from engine.index.ann import SPACE_MODALITIES, AnnIndex, open_index
from engine.index.db import set_meta
from engine.index.decode import DecodedVideo, decode_video
from engine.index.scan import find_videos, plan_scan
from engine.index.store import VideoResult, mark_error, mark_pending, write_video
from engine.jobs import CancelToken, Progress

if TYPE_CHECKING:
    from engine.context import LibraryContext
    from engine.models.mmv import MMVModel

log = logging.getLogger(__name__)
SAVE_EVERY = 10
CHUNK_CLIPS = 32   # clips per CNN call (~1 s of CPU): the cancel token is checked between calls


def index_paths(lib: LibraryContext, paths: list[Path], token: CancelToken, transcribe: bool,
                retry_errors: bool = False) -> Iterator[Progress]:
    yield Progress("scan", message="looking for videos")
    files, problems = find_videos(paths, lib.settings.excluded_patterns)
    roots = [p.expanduser().resolve() for p in paths if p.exists()]
    for r in roots:
        set_meta(lib.db, f"root:{r}", str(r))
    cfg_name = lib.model_name
    from engine.models.config import get_config

    cfg = get_config(cfg_name)
    plan = plan_scan(lib.db, files, roots, lib.settings.clip_seconds, cfg.backbone_id, retry_errors)
    summary = {"files_total": len(plan.to_index), "files_found": len(files), "unchanged": plan.unchanged,
               "moved": plan.moved, "missing": plan.missing, "problems": problems + plan.problems}
    yield Progress("scan", 0, len(plan.to_index), "files", _scan_message(plan, len(files)), info=summary)
    if not plan.to_index:
        yield Progress("done", 0, 0, "files", "nothing new to index", info={**summary, "files_done": 0})
        return
    yield Progress("load", message="loading models")
    model = lib.load_models()
    from engine.train.models import embed_missing

    yield from embed_missing(lib, model, token)  # clips indexed under older packaged heads: no decoding
    model.load_all()  # now, while the user sees "loading models", not in the middle of the first video
    transcriber = _transcriber(model) if transcribe else None
    yield from _index_files(lib, model, plan.to_index, token, transcriber, summary)


def _scan_message(plan, n_files: int) -> str:
    parts = [f"{n_files} videos found", f"{len(plan.to_index)} to index"]
    if plan.unchanged:
        parts.append(f"{plan.unchanged} unchanged")
    if plan.moved:
        parts.append(f"{plan.moved} moved")
    if plan.missing:
        parts.append(f"{plan.missing} missing")
    return ", ".join(parts)


def _transcriber(model: MMVModel):
    from engine.speech.transcribe import get_transcriber

    return get_transcriber(model.device.type)


def _open_indexes(lib: LibraryContext, model: MMVModel) -> dict[tuple[str, str], AnnIndex]:
    dims = {"va": model.config.va_dim, "vat": model.config.vat_dim}
    return {(s, m): open_index(lib.db.conn, lib.paths.ann_dir, model.model_id, s, m, dims[s])
            for s, m in SPACE_MODALITIES}


def _index_files(lib: LibraryContext, model: MMVModel, todo: list[tuple[int, Path]], token: CancelToken,
                 transcriber, summary: dict) -> Iterator[Progress]:
    cfg = model.config
    clip_s = lib.settings.clip_seconds
    indexes = _open_indexes(lib, model)
    save_segments = _segment_writer(model) if transcriber is not None else None
    stats = {"files_done": 0, "clips": 0, "video_seconds": 0.0, "errors": 0}
    t0 = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmv-decode")

    def submit(i: int) -> Future | None:
        if i >= len(todo):
            return None
        return pool.submit(_decode_and_encode_audio, model, todo[i][1], clip_s, token)

    try:
        pending = submit(0)
        for i, (video_id, path) in enumerate(todo):
            yield _progress("index", stats, len(todo), t0, f"indexing {path.name}", summary, current=str(path))
            if token.cancelled:  # checked after each yield: the consumer may have just cancelled
                yield _cancelled(stats, len(todo), i, t0, summary)
                return
            future, pending = pending, submit(i + 1)  # decode the next file while this one runs
            try:
                prepared = future.result()
                decoded = prepared[0]
                result = _embed(model, video_id, prepared, transcriber, token)
                written = write_video(lib, result, model.model_id, cfg.backbone_id, clip_s, save_segments)
            except Cancelled:  # the transcriber saw the token mid-video; this video stays pending
                yield _cancelled(stats, len(todo), i, t0, summary)
                return
            except (DiskFullError, LibraryBusyError):
                raise
            except Exception as exc:  # MemoryError too: one huge file must not end the whole job
                _record_failure(lib, model, indexes, video_id, path, exc, stats)
            else:
                _follow(indexes, written, result)
                stats["clips"] += len(written.clip_ids)
                stats["video_seconds"] += decoded.info["duration"]
            stats["files_done"] += 1
            if stats["files_done"] % SAVE_EVERY == 0:
                _save_indexes(lib, model, indexes)
        yield _progress("done", stats, len(todo), t0, _done_message(stats), summary)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _final_save(lib, model, indexes)


def _decode_and_encode_audio(model: MMVModel, path: Path, clip_s: float,
                             token: CancelToken) -> tuple[DecodedVideo, object]:
    """Runs in the prefetch thread: decoding and the Whisper encoder (CTranslate2, GIL released)
    overlap the CNN of the previous video on the main thread. Both stop mid-file on cancel, so
    the job ends promptly even while an hour-long file is being read."""
    cfg = model.config
    decoded = decode_video(path, clip_s, cfg.frames_per_clip, cfg.image_size, cfg.sample_rate, token)
    frames = None if decoded.audio is None else model.audio.whisper.frame_features(decoded.audio, token)
    return decoded, frames


def _embed(model: MMVModel, video_id: int, prepared: tuple, transcriber, token: CancelToken) -> VideoResult:
    decoded, whisper_frames = prepared
    feats = _clip_features(model, decoded, whisper_frames, token)
    vfeat, afeat = feats.video, feats.audio
    # A deep model's heads take its own tail's features; the frozen ones are stored for all models.
    pv = model.project_video(vfeat if feats.tuned_video is None else feats.tuned_video)
    emb = {("va", "video"): pv["va"], ("vat", "video"): pv["vat"]}
    if afeat is not None:
        pa = model.project_audio(afeat)
        emb[("va", "audio")], emb[("vat", "audio")] = pa["va"], pa["vat"]
    segments = None
    if transcriber is not None:
        segments = [] if decoded.audio is None else transcriber.transcribe(decoded.audio, model.config.sample_rate,
                                                                            token=token)
    tuned = None if feats.tuned_video is None else feats.tuned_video.numpy()
    return VideoResult(video_id, decoded.windows, vfeat.numpy(), None if afeat is None else afeat.numpy(),
                       emb, decoded.info, segments, tuned, model.tail_id)


def _clip_features(model: MMVModel, decoded: DecodedVideo, whisper_frames, token: CancelToken):
    """The CNN pass over a video's clips in chunks, so that Cancel takes effect within a second or
    two even in an hour-long video (the video then stays pending and is redone next time)."""
    from engine.models.mmv import ClipFeatures

    if decoded.audio is not None and whisper_frames is None:  # encode the file's audio once, not per chunk
        whisper_frames = model.audio.whisper.frame_features(decoded.audio)
    parts = []
    for i in range(0, len(decoded.windows), CHUNK_CLIPS):
        token.raise_if_cancelled()
        parts.append(model.clip_features(decoded.frames[i:i + CHUNK_CLIPS], decoded.audio,
                                         decoded.windows[i:i + CHUNK_CLIPS], whisper_frames))
    return ClipFeatures.concat(parts)


def _segment_writer(model: MMVModel):
    from engine.speech.store import save_segments

    return lambda conn, video_id, segments: save_segments(conn, video_id, segments, model.text_features)


def _record_failure(lib: LibraryContext, model: MMVModel, indexes: dict, video_id: int, path: Path,
                    exc: BaseException, stats: dict) -> None:
    """A media problem marks the video 'error'; a transient one leaves it pending (failures.py)."""
    from engine.index.failures import classify

    row = lib.db.conn.execute("SELECT size, mtime FROM videos WHERE id=?", (video_id,)).fetchone()
    failure = classify(exc, path, None if row is None else (row[0], row[1]))
    if not isinstance(exc, MediaError):
        log.warning("indexing %s failed", path, exc_info=exc)
    if failure.permanent:
        _follow(indexes, mark_error(lib, video_id, failure.message, model.model_id), None)
        stats["errors"] += 1
    else:
        mark_pending(lib, video_id, failure.message)
        stats["retry_later"] = stats.get("retry_later", 0) + 1


def _follow(indexes: dict, written, result: VideoResult | None) -> None:
    """Apply a committed video to the open indexes: its old clips marked deleted, new ones added."""
    import numpy as np

    ids = np.asarray(written.clip_ids, np.int64)
    for key, index in indexes.items():
        vecs = None if result is None else result.embeddings.get(key)
        index.follow(written.removed_ids, ids, vecs, written.gen_before, written.gen_after)


def _save_indexes(lib: LibraryContext, model: MMVModel, indexes: dict) -> None:
    from engine.index.ann import index_path, save_index

    for (space, modality), index in list(indexes.items()):
        path = index_path(lib.paths.ann_dir, model.model_id, space, modality)
        indexes[(space, modality)] = save_index(lib.db.conn, index, path, model.model_id, space, modality)


def _final_save(lib: LibraryContext, model: MMVModel, indexes: dict) -> None:
    """Save at the end; when the job is already failing (disk full, say), a failed save is logged
    rather than raised, so it never hides the error that stopped the job. The files are a cache:
    the next open repairs them from SQLite."""
    import sys

    failing = sys.exc_info()[1]
    try:
        _save_indexes(lib, model, indexes)
    except Exception:
        if failing is None or isinstance(failing, GeneratorExit):
            raise
        log.warning("could not save the search indexes after an error; they are repaired at the next open",
                    exc_info=True)


def _progress(stage: str, stats: dict, total: int, t0: float, message: str, summary: dict,
              current: str | None = None) -> Progress:
    elapsed = time.monotonic() - t0
    done = stats["files_done"]
    eta = None if done == 0 else elapsed / done * (total - done)
    speed = stats["video_seconds"] / elapsed if elapsed > 0 else 0.0
    info = {**summary, **stats, "elapsed_s": elapsed, "x_realtime": speed}
    if current:
        info["current"] = current
    return Progress(stage, done, total, "files", message, eta, info)


def _cancelled(stats: dict, total: int, i: int, t0: float, summary: dict) -> Progress:
    message = f"cancelled; {total - i} videos left (indexing resumes where it stopped)"
    return _progress("cancelled", stats, total, t0, message, summary)


def _done_message(stats: dict) -> str:
    msg = f"indexed {stats['files_done'] - stats['errors']} videos ({stats['clips']} clips)"
    return msg + (f", {stats['errors']} could not be read" if stats["errors"] else "")
