"""The indexing job: a generator of Progress that honours a cancel token.

Per video: decode (in a prefetch thread, overlapping the models), backbone features, heads,
optional transcription, then one transaction (clips + features + vectors + status). A kill at any
point leaves every video either done or pending; the next run resumes the pending ones. HNSW files
are saved every few videos and at the end, and are re-synced from SQLite on open anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from engine.blas import one_blas_thread
from engine.errors import Cancelled, DiskFullError, LibraryBusyError, MediaError
from engine.index.ann import SPACE_MODALITIES, open_index
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
                retry_errors: bool = False,
                catch_up: Callable[[MMVModel], Iterator[Progress]] | None = None) -> Iterator[Progress]:
    """Index new and changed files under ``paths``. ``catch_up`` runs once the model is loaded:
    the facade passes the re-projection of clips stored under older packaged heads (training code,
    a layer above this one), so that the indexer never imports it."""
    planned = yield from plan_index(lib, paths, retry_errors)
    if planned is None:
        return
    plan, summary = planned
    yield Progress("load", message="loading models")
    model = lib.load_models()
    if catch_up is not None:
        yield from catch_up(model)
    model.load_all()  # now, while the user sees "loading models", not in the middle of the first video
    transcriber = load_transcriber(model) if transcribe else None
    with one_blas_thread():
        yield from _index_files(lib, model, plan.to_index, token, transcriber, summary)


def plan_index(lib: LibraryContext, paths: list[Path],
               retry_errors: bool = False) -> Generator[Progress, None, tuple | None]:
    """Scan ``paths`` and plan the work (shared by local and distributed indexing); returns
    (plan, summary), or None when there is nothing to index (after yielding "done")."""
    yield Progress("scan", message="looking for videos")
    files, problems = find_videos(paths, lib.settings.excluded_patterns)
    roots = [p.expanduser().resolve() for p in paths if p.exists()]
    for r in roots:
        set_meta(lib.db, f"root:{r}", str(r))
    from engine.models.config import get_config

    cfg = get_config(lib.model_name)
    plan = plan_scan(lib.db, files, roots, lib.settings.clip_seconds, cfg.backbone_id, retry_errors)
    summary = {"files_total": len(plan.to_index), "files_found": len(files), "unchanged": plan.unchanged,
               "moved": plan.moved, "missing": plan.missing, "problems": problems + plan.problems}
    yield Progress("scan", 0, len(plan.to_index), "files", _scan_message(plan, len(files)), info=summary)
    if not plan.to_index:
        yield Progress("done", 0, 0, "files", "nothing new to index", info={**summary, "files_done": 0})
        return None
    return plan, summary


def _scan_message(plan, n_files: int) -> str:
    parts = [f"{n_files} videos found", f"{len(plan.to_index)} to index"]
    if plan.unchanged:
        parts.append(f"{plan.unchanged} unchanged")
    if plan.moved:
        parts.append(f"{plan.moved} moved")
    if plan.missing:
        parts.append(f"{plan.missing} missing")
    return ", ".join(parts)


def load_transcriber(model: MMVModel):
    from engine.speech.transcribe import get_transcriber

    return get_transcriber(model.device.type)


def _index_files(lib: LibraryContext, model: MMVModel, todo: list[tuple[int, Path]], token: CancelToken,
                 transcriber, summary: dict) -> Iterator[Progress]:
    """Four stages overlap: decoding of the next file in a prefetch thread, the CNN of this file
    here, and the audio tower's Whisper encoder and the transcription in threads of their own
    (CTranslate2 releases the GIL), which start on a file's audio as soon as it is decoded, before
    its frames. Each stage holds at most a video or two; videos are written in order, each once
    its transcript is in. On a 2-core machine both cores then stay busy, even within one long file.

    The caller runs this with NumPy's BLAS on one thread: its only products here are the log-mel
    filterbanks of Whisper's feature extractors, too small to share, and a second OpenBLAS thread
    spins after each one, taking CPU from decoding and the encoders (speech off on the shared
    media: 9.8 -> 7.4 CPU-s, docs/speed.md)."""
    clip_s = lib.settings.clip_seconds
    writer = IndexWriter(lib, model.model_id, clip_s, len(todo), summary, model.text_features)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmv-decode")
    stages = _AudioStages(model, transcriber, token)

    def submit(i: int) -> Future | None:
        if i >= len(todo):
            return None
        return pool.submit(_decode_and_encode_audio, model, todo[i][1], clip_s, token, stages)

    inflight: _InFlight | None = None  # the previous video, waiting for its transcript
    try:
        pending = submit(0)
        for i, (video_id, path) in enumerate(todo):
            yield writer.progress(f"indexing {path.name}", str(path))
            if token.cancelled:  # checked after each yield: the consumer may have just cancelled
                yield writer.cancelled()
                return
            future, pending = pending, submit(i + 1)  # decode the next file while this one runs
            started = _guarded(writer, video_id, path, _start_video, model, video_id, path, future,
                               transcriber, token)
            if inflight is not None:  # write the previous video while this one's speech runs
                _guarded(writer, inflight.video_id, inflight.path, inflight.finish, writer)
            inflight = started
        if inflight is not None:
            _guarded(writer, inflight.video_id, inflight.path, inflight.finish, writer)
        yield writer.finished()
    except Cancelled:  # the transcriber saw the token mid-video; that video stays pending
        yield writer.cancelled()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        stages.shutdown()
        writer.close()


@dataclass
class _InFlight:
    """A video whose features are computed and whose transcript may still be running."""

    video_id: int
    path: Path
    result: VideoResult
    speech: Future | None

    def finish(self, writer: IndexWriter) -> None:
        if self.speech is not None:
            self.result.segments = self.speech.result()
        writer.write(self.result)


def _start_video(model: MMVModel, video_id: int, path: Path, decoding: Future, transcriber,
                 token: CancelToken) -> _InFlight:
    """Features now; the transcript goes on in the speech thread."""
    prepared = decoding.result()
    result = _embed_media(model, video_id, prepared, token)
    if transcriber is not None and prepared.speech is None:  # no sound: nothing was said
        result.segments = []
    return _InFlight(video_id, path, result, prepared.speech)


def _guarded(writer: IndexWriter, video_id: int, path: Path, step: Callable, *args):
    """``step(*args)`` for one video; a failure marks that video (error, or retry later) instead
    of ending the job. Cancelled, a full disk and a busy library end the job."""
    try:
        return step(*args)
    except (Cancelled, DiskFullError, LibraryBusyError):
        raise
    except Exception as exc:  # MemoryError too: one huge file must not end the whole job
        writer.fail(video_id, path, exc)
        return None


def embed_file(model: MMVModel, video_id: int, path: Path, clip_s: float, transcriber,
               token: CancelToken) -> VideoResult:
    """Decode and embed one file, writing nothing (what a distributed worker runs). It must give
    what the local pipeline gives: tests compare the two. One BLAS thread, as in _index_files."""
    with one_blas_thread():
        return _embed(model, video_id, _decode_and_encode_audio(model, path, clip_s, token), transcriber, token)


class IndexWriter:
    """The one writer of an indexing run: each video in one transaction, then its vectors into the
    open HNSW indexes (saved every few videos and at the end), and the run's counters for Progress.

    ``embed_text`` embeds transcript segments; a distributed run passes the vectors its workers
    computed instead (see :meth:`write`), so the driver never loads a model."""

    def __init__(self, lib: LibraryContext, model_id: str, clip_s: float, total: int, summary: dict,
                 embed_text: Callable | None = None) -> None:
        from engine.models.config import get_config

        cfg = get_config(lib.model_name)
        self.lib, self.model_id, self.clip_s, self.total, self.summary = lib, model_id, clip_s, total, summary
        self.backbone_id, self.embed_text = cfg.backbone_id, embed_text
        dims = {"va": cfg.va_dim, "vat": cfg.vat_dim}
        self.indexes = {(s, m): open_index(lib.db.conn, lib.paths.ann_dir, model_id, s, m, dims[s])
                        for s, m in SPACE_MODALITIES}
        self.stats = {"files_done": 0, "clips": 0, "video_seconds": 0.0, "errors": 0}
        self.t0 = time.monotonic()

    def write(self, result: VideoResult, segment_vectors=None) -> None:
        embed = self.embed_text if segment_vectors is None else (lambda texts: segment_vectors)
        save = None if result.segments is None else _segment_writer(embed)
        written = write_video(self.lib, result, self.model_id, self.backbone_id, self.clip_s, save)
        _follow(self.indexes, written, result)
        self.stats["clips"] += len(written.clip_ids)
        self.stats["video_seconds"] += result.info["duration"]
        self._file_done()

    def fail(self, video_id: int, path: Path, exc: BaseException) -> None:
        """A media problem marks the video 'error'; a transient one leaves it pending (failures.py)."""
        from engine.index.failures import classify

        row = self.lib.db.conn.execute("SELECT size, mtime FROM videos WHERE id=?", (video_id,)).fetchone()
        failure = classify(exc, path, None if row is None else (row[0], row[1]))
        if not isinstance(exc, MediaError):
            log.warning("indexing %s failed", path, exc_info=exc)
        if failure.permanent:
            _follow(self.indexes, mark_error(self.lib, video_id, failure.message, self.model_id), None)
            self.stats["errors"] += 1
        else:
            mark_pending(self.lib, video_id, failure.message)
            self.stats["retry_later"] = self.stats.get("retry_later", 0) + 1
        self._file_done()

    def _file_done(self) -> None:
        self.stats["files_done"] += 1
        if self.stats["files_done"] % SAVE_EVERY == 0:
            self.save()

    def save(self) -> None:
        from engine.index.ann import index_path, save_index

        for (space, modality), index in list(self.indexes.items()):
            path = index_path(self.lib.paths.ann_dir, self.model_id, space, modality)
            self.indexes[(space, modality)] = save_index(self.lib.db.conn, index, path, self.model_id, space,
                                                         modality)

    def close(self) -> None:
        """Save at the end; when the job is already failing (disk full, say), a failed save is
        logged rather than raised, so it never hides the error that stopped the job. The files
        are a cache: the next open repairs them from SQLite."""
        import sys

        failing = sys.exc_info()[1]
        try:
            self.save()
        except Exception:
            if failing is None or isinstance(failing, GeneratorExit):
                raise
            log.warning("could not save the search indexes after an error; they are repaired at the next open",
                        exc_info=True)

    def progress(self, message: str, current: str | None = None, stage: str = "index") -> Progress:
        return _progress(stage, self.stats, self.total, self.t0, message, self.summary, current)

    def cancelled(self) -> Progress:
        left = self.total - self.stats["files_done"]
        return self.progress(f"cancelled; {left} videos left (indexing resumes where it stopped)", stage="cancelled")

    def finished(self) -> Progress:
        return self.progress(_done_message(self.stats), stage="done")


class _Prepared(NamedTuple):
    decoded: DecodedVideo
    whisper_frames: np.ndarray | Future | None   # the audio tower's Whisper encoder frames
    speech: Future | None                        # the transcript, when the speech thread has it


class _AudioStages:
    """The threads that work on a file's audio while its frames decode: the audio tower's Whisper
    encoder and, when transcribing, the speech passes. Each runs its files in order."""

    def __init__(self, model: MMVModel, transcriber, token: CancelToken) -> None:
        self.model, self.transcriber, self.token = model, transcriber, token
        self.encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmv-audio")
        self.speech = None if transcriber is None else ThreadPoolExecutor(max_workers=1,
                                                                          thread_name_prefix="mmv-speech")

    def start(self, audio: np.ndarray) -> tuple[Future, Future | None]:
        frames = self.encoder.submit(self.model.audio.whisper.frame_features, audio, self.token)
        if self.speech is None:
            return frames, None
        return frames, self.speech.submit(_transcribe, self.model, self.transcriber, audio, self.token)

    def shutdown(self) -> None:
        for pool in (self.encoder, self.speech):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _decode_and_encode_audio(model: MMVModel, path: Path, clip_s: float, token: CancelToken,
                             stages: _AudioStages | None = None) -> _Prepared:
    """Runs in the prefetch thread, overlapping the CNN of the previous video on the main thread.
    With ``stages``, the file's audio goes to the audio threads as soon as it is decoded; without,
    the Whisper encoder runs here. All stop mid-file on cancel, so the job ends promptly even
    while an hour-long file is being read."""
    cfg = model.config
    started: list[tuple[Future, Future | None]] = []

    def audio_decoded(audio: np.ndarray | None) -> None:
        if stages is not None and audio is not None:
            started.append(stages.start(audio))

    decoded = decode_video(path, clip_s, cfg.frames_per_clip, cfg.image_size, cfg.sample_rate, token,
                           on_audio=audio_decoded)
    if started:
        return _Prepared(decoded, *started[0])
    frames = None if decoded.audio is None else model.audio.whisper.frame_features(decoded.audio, token)
    return _Prepared(decoded, frames, None)


def _embed(model: MMVModel, video_id: int, prepared: _Prepared, transcriber, token: CancelToken) -> VideoResult:
    result = _embed_media(model, video_id, prepared, token)
    if transcriber is not None:
        audio = prepared.decoded.audio
        result.segments = [] if audio is None else _transcribe(model, transcriber, audio, token)
    return result


def _transcribe(model: MMVModel, transcriber, audio, token: CancelToken) -> list:
    return transcriber.transcribe(audio, model.config.sample_rate, token=token)


def _embed_media(model: MMVModel, video_id: int, prepared: _Prepared, token: CancelToken) -> VideoResult:
    """Features and head vectors of one decoded video (no transcript: ``segments`` is None)."""
    decoded, whisper_frames = prepared.decoded, prepared.whisper_frames
    if isinstance(whisper_frames, Future):
        whisper_frames = whisper_frames.result()
    feats = _clip_features(model, decoded, whisper_frames, token)
    vfeat, afeat = feats.video, feats.audio
    # A deep model's heads take its own tail's features; the frozen ones are stored for all models.
    pv = model.project_video(vfeat if feats.tuned_video is None else feats.tuned_video)
    emb = {("va", "video"): pv["va"], ("vat", "video"): pv["vat"]}
    if afeat is not None:
        pa = model.project_audio(afeat)
        emb[("va", "audio")], emb[("vat", "audio")] = pa["va"], pa["vat"]
    tuned = None if feats.tuned_video is None else feats.tuned_video.numpy()
    return VideoResult(video_id, decoded.windows, vfeat.numpy(), None if afeat is None else afeat.numpy(),
                       emb, decoded.info, None, tuned, model.tail_id)


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


def _segment_writer(embed: Callable):
    from engine.speech.store import save_segments

    return lambda conn, video_id, segments: save_segments(conn, video_id, segments, embed)


def _follow(indexes: dict, written, result: VideoResult | None) -> None:
    """Apply a committed video to the open indexes: its old clips marked deleted, new ones added."""
    ids = np.asarray(written.clip_ids, np.int64)
    for key, index in indexes.items():
        vecs = None if result is None else result.embeddings.get(key)
        index.follow(written.removed_ids, ids, vecs, written.gen_before, written.gen_after)


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


def _done_message(stats: dict) -> str:
    msg = f"indexed {stats['files_done'] - stats['errors']} videos ({stats['clips']} clips)"
    return msg + (f", {stats['errors']} could not be read" if stats["errors"] else "")
