"""HNSW indexes (hnswlib), one file per (model id, space, modality); labels are clip ids.

They are a cache: SQLite holds every vector, so an index that is missing, stale or corrupt is
rebuilt from the database (:func:`sync_index`). Files are written to a temporary name and
renamed, so a crash never leaves a half-written index behind.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import hnswlib
import numpy as np

from engine.errors import LibraryError

SPACES = {("va", "video"), ("va", "audio"), ("vat", "video"), ("vat", "audio")}


def index_path(ann_dir: Path, model_id: str, space: str, modality: str) -> Path:
    return ann_dir / model_id / f"{space}_{modality}.hnsw"


class AnnIndex:
    """A growable cosine HNSW index over L2-normalised vectors."""

    def __init__(self, dim: int, capacity: int = 1024, ef_construction: int = 200, m: int = 16):
        self.dim = dim
        self._lock = threading.Lock()
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(max_elements=max(capacity, 16), ef_construction=ef_construction, M=m,
                               allow_replace_deleted=True)
        self._index.set_ef(128)

    def __len__(self) -> int:
        return self._index.get_current_count()  # includes ids marked deleted; search filters via SQLite

    def ids(self) -> np.ndarray:
        return np.asarray(self._index.get_ids_list(), dtype=np.int64)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.shape[1] != self.dim:
            raise LibraryError(f"vector dim {vecs.shape[1]} != index dim {self.dim}")
        with self._lock:
            need = self._index.get_current_count() + len(ids)
            if need > self._index.get_max_elements():
                self._index.resize_index(max(need, 2 * self._index.get_max_elements()))
            self._index.add_items(vecs, np.asarray(ids, dtype=np.int64), replace_deleted=True)

    def query(self, vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (clip ids, cosine similarities), best first."""
        n = self._index.get_current_count()
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(k, n)
        with self._lock:
            self._index.set_ef(max(128, k + 16))
            try:
                labels, dists = self._index.knn_query(np.asarray(vec, np.float32).reshape(1, -1), k=k)
            except RuntimeError:  # fewer live elements than k after deletions
                labels, dists = self._index.knn_query(np.asarray(vec, np.float32).reshape(1, -1), k=max(1, k // 2))
        return labels[0].astype(np.int64), (1.0 - dists[0]).astype(np.float32)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._index.get_items(np.asarray(ids, np.int64)), np.float32)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with self._lock:
            self._index.save_index(str(tmp))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dim: int) -> AnnIndex:
        self = cls.__new__(cls)
        self.dim = dim
        self._lock = threading.Lock()
        self._index = hnswlib.Index(space="ip", dim=dim)
        try:
            self._index.load_index(str(path), allow_replace_deleted=True)
        except (RuntimeError, OSError) as exc:
            raise LibraryError(f"cannot read index {path}: {exc}") from exc
        self._index.set_ef(128)
        return self

    @classmethod
    def build(cls, ids: np.ndarray, vecs: np.ndarray, dim: int) -> AnnIndex:
        index = cls(dim, capacity=max(1024, int(len(ids) * 1.3)))
        index.add(ids, vecs)
        return index


def db_vectors(conn, model_id: str, space: str, modality: str,
               exclude: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, vectors) stored in SQLite for one index."""
    ids, vecs = [], []
    for cid, blob in conn.execute("SELECT clip_id, vec FROM embeddings WHERE model_id=? AND space=? AND modality=?",
                                  (model_id, space, modality)):
        if exclude is None or cid not in exclude:
            ids.append(cid)
            vecs.append(np.frombuffer(blob, np.float32))
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return np.asarray(ids, np.int64), np.stack(vecs)


def open_index(conn, ann_dir: Path, model_id: str, space: str, modality: str, dim: int) -> AnnIndex:
    """Load the index file and bring it in line with SQLite (add missing vectors, drop stale ids).

    A missing or unreadable file is rebuilt from the database, which is always complete.
    """
    path = index_path(ann_dir, model_id, space, modality)
    db_ids = {r[0] for r in conn.execute(
        "SELECT clip_id FROM embeddings WHERE model_id=? AND space=? AND modality=?", (model_id, space, modality))}
    index = None
    if path.exists():
        try:
            index = AnnIndex.load(path, dim)
        except LibraryError:
            index = None
    if index is not None and not set(index.ids().tolist()) <= db_ids:
        index = None  # removed videos: rebuilding is cheaper than tracking deletions in hnswlib
    if index is None:
        ids, vecs = db_vectors(conn, model_id, space, modality)
        index = AnnIndex.build(ids, vecs, dim) if len(ids) else AnnIndex(dim)
        index.save(path)
        return index
    have = set(index.ids().tolist())
    if len(db_ids) > len(have):
        ids, vecs = db_vectors(conn, model_id, space, modality, exclude=have)
        if len(ids):
            index.add(ids, vecs)
            index.save(path)
    return index
