"""Check that an HNSW file holds exactly SQLite's live vectors (by vector, not only by id)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.index.ann import AnnIndex, db_vectors, index_path


def assert_index_matches_db(conn, ann_dir: Path, model_id: str, space: str, modality: str, dim: int,
                            atol: float = 1e-6) -> None:
    """The saved file (as loaded, before any repair) must equal SQLite's rows for the index."""
    path = index_path(ann_dir, model_id, space, modality)
    ids, vecs = db_vectors(conn, model_id, space, modality)
    if not path.exists():
        assert len(ids) == 0, f"{path} missing but SQLite holds {len(ids)} vectors"
        return
    index = AnnIndex.load(path, dim)
    have = np.sort(index.ids())
    assert np.array_equal(have, np.sort(ids)), (
        f"{path.name}: ids differ: {len(np.setdiff1d(have, ids))} stale, {len(np.setdiff1d(ids, have))} missing")
    if len(ids):
        got = index.vectors(ids)
        assert np.allclose(got, vecs, atol=atol), f"{path.name}: vectors differ from SQLite's"
