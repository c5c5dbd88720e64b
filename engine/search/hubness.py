"""Hubness correction for clip retrieval (CSLS, Lample et al., 2018).

In a high-dimensional space some clips ("hubs") sit close to almost everything and top every
query. CSLS lowers each candidate's cosine by its mean cosine to its k nearest neighbours; here
the neighbours are the library's own clips of *other* videos (a video's adjacent clips are near
copies of each other and would call every clip a hub). It is computed at search time from the
index, so it follows the library as it grows and needs nothing stored with the model.

Chosen for audio queries on the tune side of the split (bench/tune_audio_rank.py,
docs/evaluation.md): the rank of the first right video improved on every tune measure, by an
interval that excludes zero on three of four.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from engine.index.ann import AnnIndex

HUB_K = 10          # neighbours that define a clip's hubness (the CSLS paper's k)
HUB_WEIGHT = 0.5    # CSLS: 2 cos - r_q - r_c, ranked per query, is cos - r_c / 2
HUB_EXTRA = 20      # neighbours asked for beyond HUB_K, to skip those of the clip's own video


def video_of(conn: sqlite3.Connection, ids: np.ndarray) -> dict[int, int]:
    """Clip id -> video id, in chunks (SQLite's parameter limit)."""
    out: dict[int, int] = {}
    flat = [int(i) for i in np.unique(ids)]
    for start in range(0, len(flat), 900):
        part = flat[start:start + 900]
        out.update(conn.execute(f"SELECT id, video_id FROM clips WHERE id IN ({','.join('?' * len(part))})",
                                part).fetchall())
    return out


def clip_hubness(index: AnnIndex, conn: sqlite3.Connection, ids: np.ndarray, k: int = HUB_K,
                 extra: int = HUB_EXTRA) -> np.ndarray:
    """Each clip's mean cosine to its ``k`` nearest clips of other videos in ``index``.

    A clip whose neighbourhood holds no other video (a one-video library) falls back to its
    nearest clips of any video, so every candidate is corrected the same way.
    """
    if len(ids) == 0:
        return np.zeros(0, np.float32)
    neighbours = [index.query(v, k + extra + 1) for v in index.vectors(ids)]
    video = video_of(conn, np.concatenate([np.asarray(ids)] + [n for n, _ in neighbours]))
    out = np.empty(len(ids), np.float32)
    for row, (clip_id, (nids, sims)) in enumerate(zip(np.asarray(ids).tolist(), neighbours)):
        own = video.get(clip_id)
        other = sims[np.array([video.get(int(n)) != own for n in nids], bool)] if len(nids) else sims
        chosen = other if len(other) else sims[nids != clip_id]
        out[row] = float(chosen[:k].mean()) if len(chosen) else 0.0
    return out


def corrected(index: AnnIndex, conn: sqlite3.Connection, ids: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """CSLS scores of the candidates ``ids`` (cosines ``sims``)."""
    return sims - HUB_WEIGHT * clip_hubness(index, conn, ids)
