"""The screen_text table: writing a video's on-screen text, and searching it ("read").

Search is the transcripts' search (engine.speech.store) over this table: exact words through
FTS5 (porter stemming) and meaning through the text tower's vectors, one fusion rule for both.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np

from engine.hits import ClipHit
from engine.ocr.extract import ScreenText
from engine.ocr.words import joined_word_splits
from engine.speech.store import SegmentVectors, assign_clips, transcript_hits

ENGINE_ID = "rapidocr-ppocrv4"
TABLE = "screen_text"


def save_screen_text(conn: sqlite3.Connection, video_id: int, spans: list[ScreenText]) -> None:
    """Replace the video's on-screen text and mark it read, inside the caller's transaction.

    Every span carries its text-tower vector already (computed outside the transaction)."""
    conn.execute("DELETE FROM screen_text WHERE video_id = ?", (video_id,))
    conn.executemany(
        "INSERT INTO screen_text(video_id, kind, start, end, text, words, confidence, frames, vec) "
        "VALUES (?, 'read', ?, ?, ?, ?, ?, ?, ?)",
        [(video_id, float(s.start), float(s.end), s.text, joined_word_splits(s.text) or None, float(s.confidence),
          int(s.frames),
          None if s.vec is None else np.ascontiguousarray(s.vec, np.float32).tobytes()) for s in spans])
    assign_clips(conn, TABLE, video_id)
    conn.execute("INSERT INTO ocr_done(video_id, engine, read_at) VALUES (?, ?, ?) ON CONFLICT(video_id) "
                 "DO UPDATE SET engine = excluded.engine, read_at = excluded.read_at",
                 (video_id, ENGINE_ID, time.time()))


def attach_vectors(spans: list[ScreenText], embed) -> list[ScreenText]:
    """Give each span its L2-normalised text-tower vector (``embed``: texts -> [N, D]), of the
    text as read plus its run-together words split, so "HARBOURFESTIVAL" means something."""
    if spans:
        texts = [f"{s.text} {joined_word_splits(s.text)}".strip() for s in spans]
        vecs = np.asarray(_as_numpy(embed(texts)), np.float32).reshape(len(spans), -1)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        for s, v in zip(spans, vecs):
            s.vec = v
    return spans


def _as_numpy(features):
    return features.detach().cpu().float().numpy() if hasattr(features, "detach") else features


def screen_text_hits(conn: sqlite3.Connection, query_text: str, query_vec: np.ndarray, limit: int = 200,
                     background: dict | None = None, vectors: SegmentVectors | None = None) -> list[ClipHit]:
    """On-screen text matching a text query, best first, as "read" clip hits (see
    engine.speech.store.transcript_hits for the scores and ``background``)."""
    return transcript_hits(conn, query_text, query_vec, limit=limit, background=background,
                           vectors=vectors or SegmentVectors(TABLE), table=TABLE)


def unread_videos(conn: sqlite3.Connection) -> list[tuple[int, str, float]]:
    """(id, path, duration) of indexed videos whose screen has not been read yet, or was read
    before the file was last (re-)indexed (its text may have changed with it)."""
    rows = conn.execute("SELECT v.id, v.path, COALESCE(v.duration, 0) FROM videos v "
                        "LEFT JOIN ocr_done o ON o.video_id = v.id WHERE v.status = 'done' "
                        "AND (o.video_id IS NULL OR o.read_at < COALESCE(v.indexed_at, 0)) ORDER BY v.path")
    return [(r[0], r[1], float(r[2])) for r in rows]
