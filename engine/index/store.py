"""Write one video's clips, backbone features and embeddings atomically; remove videos."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.index.db import to_blob, transaction

if TYPE_CHECKING:
    from engine.context import LibraryContext


@dataclass
class VideoResult:
    """Everything computed for one video, ready to be written in one transaction."""

    video_id: int
    windows: list[tuple[float, float]]
    video_feats: np.ndarray              # float [N, T, 1280]
    audio_feats: np.ndarray | None       # float [N, 768] or None (no sound)
    embeddings: dict[tuple[str, str], np.ndarray]   # (space, modality) -> [N, D]
    info: dict                           # probe facts: duration, width, height, fps, rotation, has_audio
    segments: list | None = None         # speech Segments, when transcription ran
    tuned_feats: np.ndarray | None = None  # float [N, T, 1280] of a deep model's vision tail
    tail_id: str | None = None           # which tail computed ``tuned_feats``


@dataclass
class Written:
    """What one transaction changed, so open HNSW indexes can follow it without a rebuild:
    ``gen_before``/``gen_after`` are the model's vector generation around the change
    (engine.index.ann), so an index at ``gen_before`` is exact at ``gen_after`` once it has
    removed ``removed_ids`` and added ``clip_ids``."""

    clip_ids: list[int]
    removed_ids: list[int]
    gen_before: int
    gen_after: int

    def __iter__(self):  # older callers unpack or iterate the new clip ids
        return iter(self.clip_ids)

    def __len__(self) -> int:
        return len(self.clip_ids)


def _gen(conn, model_id: str) -> int:
    row = conn.execute("SELECT gen FROM ann_state WHERE model_id=?", (model_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _drop_clips(conn, video_id: int) -> list[int]:
    removed = [r[0] for r in conn.execute("SELECT id FROM clips WHERE video_id=?", (video_id,))]
    conn.execute("DELETE FROM clips WHERE video_id=?", (video_id,))
    return removed


def write_video(lib: LibraryContext, result: VideoResult, model_id: str, backbone_id: str, clip_seconds: float,
                save_segments=None) -> Written:
    """Replace the video's clips and vectors and mark it done, in one transaction. New clips get
    new ids (ids are never reused), so an index never mistakes old vectors for new ones."""
    with transaction(lib.db) as conn:
        gen_before = _gen(conn, model_id)
        removed = _drop_clips(conn, result.video_id)
        clip_ids = []
        for idx, (s, e) in enumerate(result.windows):
            cur = conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                               (result.video_id, idx, s, e))
            clip_ids.append(cur.lastrowid)
        n_frames = result.video_feats.shape[1]
        conn.executemany(
            "INSERT INTO features(clip_id, backbone_id, n_frames, video, audio) VALUES (?, ?, ?, ?, ?)",
            [(cid, backbone_id, n_frames, to_blob(result.video_feats[i], "float16"),
              None if result.audio_feats is None else to_blob(result.audio_feats[i], "float16"))
             for i, cid in enumerate(clip_ids)])
        if result.tuned_feats is not None:
            conn.executemany(
                "INSERT OR REPLACE INTO tuned_features(clip_id, tail_id, n_frames, video) VALUES (?, ?, ?, ?)",
                [(cid, result.tail_id, n_frames, to_blob(result.tuned_feats[i], "float16"))
                 for i, cid in enumerate(clip_ids)])
        conn.executemany(
            "INSERT INTO embeddings(clip_id, model_id, space, modality, vec) VALUES (?, ?, ?, ?, ?)",
            [(cid, model_id, space, modality, to_blob(vecs[i]))
             for (space, modality), vecs in result.embeddings.items() for i, cid in enumerate(clip_ids)])
        if save_segments is not None and result.segments is not None:
            save_segments(conn, result.video_id, result.segments)
        info = result.info
        conn.execute(
            "UPDATE videos SET status='done', error=NULL, duration=?, width=?, height=?, fps=?, rotation=?, "
            "has_audio=?, backbone_id=?, clip_seconds=?, transcribed=?, indexed_at=? WHERE id=?",
            (info["duration"], info["width"], info["height"], info["fps"], info["rotation"],
             int(result.audio_feats is not None), backbone_id, clip_seconds,
             int(result.segments is not None), time.time(), result.video_id))
        return Written(clip_ids, removed, gen_before, _gen(conn, model_id))


def mark_error(lib: LibraryContext, video_id: int, message: str, model_id: str = "") -> Written:
    """Record why a video cannot be indexed (status 'error', kept until the file changes or the
    user retries); its old clips, if any, go."""
    with transaction(lib.db) as conn:
        gen_before = _gen(conn, model_id)
        removed = _drop_clips(conn, video_id)
        conn.execute("UPDATE videos SET status='error', error=?, indexed_at=?, backbone_id=NULL WHERE id=?",
                     (message[:500], time.time(), video_id))
        return Written([], removed, gen_before, _gen(conn, model_id))


def mark_pending(lib: LibraryContext, video_id: int, note: str) -> None:
    """Leave a video to the next run (a transient failure), saying why."""
    with transaction(lib.db) as conn:
        conn.execute("UPDATE videos SET status='pending', error=? WHERE id=?", (note[:500], video_id))


def reset_errors(lib: LibraryContext, folder: Path | None) -> int:
    """Failed videos (under ``folder``, a folder or one file) back to 'pending' for a retry."""
    sql, args = "UPDATE videos SET status='pending' WHERE status='error'", []
    if folder is not None:
        p = str(folder.expanduser().resolve())
        prefix = p.rstrip("/") + "/"
        sql += " AND (path = ? OR substr(path, 1, ?) = ?)"
        args = [p, len(prefix), prefix]
    with transaction(lib.db) as conn:
        return conn.execute(sql, args).rowcount


def remove_videos(lib: LibraryContext, path: Path) -> int:
    """Delete a file's or a folder's videos (clips, features, vectors cascade) and its root entry."""
    p = str(path.expanduser().resolve())
    prefix = p.rstrip("/") + "/"
    with transaction(lib.db) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM videos WHERE path = ? OR substr(path, 1, ?) = ?", (p, len(prefix), prefix))]
        conn.executemany("DELETE FROM videos WHERE id=?", [(i,) for i in ids])
        conn.execute("DELETE FROM meta WHERE key = ? OR substr(key, 1, ?) = ?",
                     (f"root:{p}", len("root:" + prefix), "root:" + prefix))
    return len(ids)
