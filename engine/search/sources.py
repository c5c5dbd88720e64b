"""What search channels read: the library's vector indexes, transcripts and clip rows, for one model.

One ``Sources`` lives as long as the searcher: it keeps the opened HNSW files and whatever the
channels keep between queries (such as transcript vectors), and reads through a connection of its
own, so searches never wait behind (or block) the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from engine.hits import ClipHit
from engine.index.ann import AnnIndex, open_index, sync_index

if TYPE_CHECKING:
    from engine.models.mmv import MMVModel

CANDIDATES = 300   # nearest neighbours each channel asks for
T = TypeVar("T")


def clip_rows_sql(n: int, with_vector: bool = False) -> str:
    """(id, video id, start, end) of ``n`` clip ids whose video is indexed, and with
    ``with_vector`` the clip's vector in one index (model id, space, modality bound before the ids).

    CROSS JOIN fixes the order: clips by id, then their video. Left to itself SQLite walked every
    done video's clips (through the index on status): a scan of the whole library per query."""
    vector = ", e.vec" if with_vector else ""
    join = (" CROSS JOIN embeddings e ON e.clip_id = c.id AND e.model_id = ? AND e.space = ? AND e.modality = ?"
            if with_vector else "")
    return (f"SELECT c.id, c.video_id, c.start, c.end{vector} FROM clips c CROSS JOIN videos v ON v.id = c.video_id"
            f"{join} WHERE v.status = 'done' AND c.id IN ({','.join('?' * n)})")


class Sources:
    def __init__(self, db_path: Path, ann_dir: Path, model: MMVModel):
        self.model = model
        self.ann_dir = ann_dir
        self.conn = sqlite3.connect(str(db_path), timeout=30.0, check_same_thread=False)
        self._indexes: dict[tuple[str, str], AnnIndex] = {}
        self._kept: dict[str, object] = {}
        # A fine-tuned model has learned S_va video <-> audio and S_vat audio <-> text; the base has not.
        self.trained = model.model_id != model.config.base_model_id

    def index(self, space: str, modality: str) -> AnnIndex:
        key = (space, modality)
        if key not in self._indexes:
            dim = self.model.config.va_dim if space == "va" else self.model.config.vat_dim
            self._indexes[key] = open_index(self.conn, self.ann_dir, self.model.model_id, space, modality, dim)
        else:  # another process may have indexed since: one generation read, a repair only if it moved
            self._indexes[key] = sync_index(self.conn, self._indexes[key], self.model.model_id, space, modality)
        return self._indexes[key]

    def kept(self, name: str, make: Callable[[], T]) -> T:
        """A channel's state kept between queries (e.g. text vectors in memory), made on first use."""
        if name not in self._kept:
            self._kept[name] = make()
        return self._kept[name]  # type: ignore[return-value]

    def knn(self, space: str, modality: str, vec: np.ndarray, reason: str, k: int = CANDIDATES,
            weight: float = 1.0) -> list[ClipHit]:
        """The ``k`` clips nearest to ``vec`` in one index, as hits scored by cosine x ``weight``."""
        ids, sims = self.index(space, modality).query(vec, k)
        return self.to_hits(ids, sims * weight, reason)

    def hits_with_vectors(self, space: str, modality: str, ids: np.ndarray, scores: np.ndarray,
                          reason: str) -> tuple[list[ClipHit], np.ndarray]:
        """As ``to_hits``, plus each kept hit's stored vector in that index, read with its clip row
        in one keyed lookup (hnswlib's get_items took ~20 us a vector at 1M clips)."""
        rows = self._clip_rows(ids, (self.model.model_id, space, modality))
        hits = self._hits(rows, ids, scores, reason)
        vecs = np.frombuffer(b"".join(rows[h.clip_id][4] for h in hits), np.float32)
        return hits, vecs.reshape(len(hits), -1)

    def to_hits(self, ids: np.ndarray, scores: np.ndarray, reason: str) -> list[ClipHit]:
        """Clip ids -> hits with their video and times; clips of videos no longer indexed are dropped."""
        return self._hits(self._clip_rows(ids), ids, scores, reason)

    @staticmethod
    def _hits(rows: dict[int, tuple], ids: np.ndarray, scores: np.ndarray, reason: str) -> list[ClipHit]:
        return [ClipHit(i, rows[i][1], rows[i][2], rows[i][3], float(s), reason)
                for i, s in zip(ids.tolist(), scores.tolist()) if i in rows]

    def _clip_rows(self, ids: np.ndarray, vector_of: tuple[str, str, str] | None = None) -> dict[int, tuple]:
        """clip id -> its row (clip_rows_sql), in statements of at most 900 ids."""
        rows: dict[int, tuple] = {}
        for start in range(0, len(ids), 900):
            part = [int(i) for i in ids[start:start + 900]]
            args = part if vector_of is None else [*vector_of, *part]
            rows.update({r[0]: r for r in self.conn.execute(clip_rows_sql(len(part), vector_of is not None), args)})
        return rows

    def paths(self, video_ids: set[int]) -> dict[int, str]:
        """Paths of the videos that have hits (not of the whole library: this runs per query)."""
        ids = sorted(video_ids)
        out: dict[int, str] = {}
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            out.update(self.conn.execute(f"SELECT id, path FROM videos WHERE status='done' AND id IN "
                                         f"({','.join('?' * len(part))})", part))
        return out
