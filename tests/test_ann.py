import numpy as np

from engine.index import db as dbmod
from engine.index.ann import AnnIndex, index_path, open_index


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_query_returns_nearest_with_cosine(tmp_path):
    rng = np.random.default_rng(0)
    vecs = unit(rng, 500, 32)
    index = AnnIndex.build(np.arange(100, 600), vecs, 32)
    ids, sims = index.query(vecs[42], 5)
    assert ids[0] == 142 and abs(sims[0] - 1.0) < 1e-4 and np.all(np.diff(sims) <= 1e-6)
    path = tmp_path / "x.hnsw"
    index.save(path)
    again = AnnIndex.load(path, 32)
    assert again.query(vecs[7], 1)[0][0] == 107


def _store(conn, ids, vecs, model="m"):
    conn.execute("INSERT INTO videos(id, path, size, mtime, phash, status) VALUES (1, '/v', 1, 1, 'h', 'done')")
    for i, v in zip(ids, vecs):
        conn.execute("INSERT INTO clips(id, video_id, idx, start, end) VALUES (?, 1, ?, 0, 1)", (int(i), int(i)))
        conn.execute("INSERT INTO embeddings VALUES (?, ?, 'va', 'video', ?)", (int(i), model, dbmod.to_blob(v)))


def test_open_index_rebuilds_and_syncs_from_sqlite(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(1)
    vecs = unit(rng, 50, 16)
    _store(db.conn, range(1, 51), vecs)
    ann = tmp_path / "ann"
    index = open_index(db.conn, ann, "m", "va", "video", 16)           # no file: built from SQLite
    assert sorted(index.ids().tolist()) == list(range(1, 51))
    assert index_path(ann, "m", "va", "video").exists()
    db.conn.execute("DELETE FROM clips WHERE id <= 10")                  # removed videos: stale ids
    index = open_index(db.conn, ann, "m", "va", "video", 16)
    assert sorted(index.ids().tolist()) == list(range(11, 51))
    index_path(ann, "m", "va", "video").write_bytes(b"garbage")          # corrupt file: rebuilt
    index = open_index(db.conn, ann, "m", "va", "video", 16)
    assert index.query(vecs[20], 1)[0][0] == 21
