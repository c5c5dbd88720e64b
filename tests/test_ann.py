import json
import os

import numpy as np
import pytest

from engine.index import ann
from engine.index import db as dbmod
from engine.index.ann import AnnIndex, index_path, open_index
from engine.index.db import transaction
from tests.ann_check import assert_index_matches_db


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_query_returns_nearest_with_cosine(tmp_path):
    rng = np.random.default_rng(0)
    vecs = unit(rng, 500, 32)
    index = AnnIndex.build(np.arange(100, 600), vecs, 32)
    ids, sims = index.query(vecs[42], 5)
    assert ids[0] == 142 and abs(sims[0] - 1.0) < 1e-4 and np.all(np.diff(sims) <= 1e-6)
    path = tmp_path / "x.json"
    index.save(path)
    again = AnnIndex.load(path, 32)
    assert again.query(vecs[7], 1)[0][0] == 107


def _video(db, vid: int, n: int, rng, dim=16, model="m") -> np.ndarray:
    """Store one video of ``n`` clips (new clip ids, as the indexer does); returns its vectors."""
    vecs = unit(rng, n, dim)
    with transaction(db) as conn:
        conn.execute("INSERT OR IGNORE INTO videos(id, path, size, mtime, phash, status) "
                     "VALUES (?, ?, 1, 1, 'h', 'done')", (vid, f"/v{vid}"))
        conn.execute("DELETE FROM clips WHERE video_id=?", (vid,))
        for i, v in enumerate(vecs):
            cid = conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, 0, 1)", (vid, i)).lastrowid
            conn.execute("INSERT INTO embeddings VALUES (?, ?, 'va', 'video', ?)", (cid, model, dbmod.to_blob(v)))
    return vecs


def _library(tmp_path, seed: int, first_clips: int = 20):
    """(db, rng, ann dir) of 20 videos of 20 clips (the first of ``first_clips``): the delta tests' start."""
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(seed)
    for vid in range(1, 21):
        _video(db, vid, first_clips if vid == 1 else 20, rng)
    return db, rng, tmp_path / "ann"


def test_open_index_rebuilds_and_syncs_from_sqlite(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(1)
    for vid in range(1, 6):
        _video(db, vid, 10, rng)
    ann_dir = tmp_path / "ann"
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)           # no file: built from SQLite
    assert sorted(index.ids().tolist()) == list(range(1, 51))
    assert index_path(ann_dir, "m", "va", "video").exists()
    with transaction(db) as conn:
        conn.execute("DELETE FROM videos WHERE id = 1")                   # removed video: ids marked deleted
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    assert sorted(index.ids().tolist()) == list(range(11, 51))
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)
    index_path(ann_dir, "m", "va", "video").write_bytes(b"garbage")       # corrupt manifest: rebuilt
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


@pytest.mark.parametrize("damage", ["truncate", "delete", "garbage"])
def test_damaged_data_file_is_rebuilt_with_a_warning(tmp_path, damage, caplog):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(2)
    _video(db, 1, 20, rng)
    ann_dir = tmp_path / "ann"
    open_index(db.conn, ann_dir, "m", "va", "video", 16)
    data = index_path(ann_dir, "m", "va", "video").with_name(
        json.loads(index_path(ann_dir, "m", "va", "video").read_text())["data"])
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "delete":
        data.unlink()
    else:
        data.write_bytes(os.urandom(data.stat().st_size))  # same size: hnswlib's own check must catch it
    with caplog.at_level("WARNING"):
        open_index(db.conn, ann_dir, "m", "va", "video", 16)
    assert damage == "garbage" or "rebuilding index" in caplog.text
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


def test_reindexed_video_is_followed_without_rebuild_and_slots_are_reused(tmp_path, monkeypatch):
    """The crash of the issue: a video re-indexed, committed, killed before the save. The file is
    older than SQLite; open must notice (generation) and repair it incrementally."""
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(3)
    for vid in range(1, 11):
        _video(db, vid, 30, rng)
    ann_dir = tmp_path / "ann"
    open_index(db.conn, ann_dir, "m", "va", "video", 16)
    new = _video(db, 4, 30, rng)                                           # re-indexed: new content
    _video(db, 11, 5, rng)                                                 # and one new video

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt instead of repaired")

    monkeypatch.setattr(ann, "rebuild_index", no_rebuild)
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    ids4 = [r[0] for r in db.conn.execute("SELECT id FROM clips WHERE video_id=4 ORDER BY idx")]
    assert index.query(new[3], 1)[0][0] == ids4[3]
    assert index.deleted_count == 0 and index._index.get_current_count() == 305  # the 30 slots reused
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


def test_many_deletions_compact_the_index(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(4)
    for vid in range(1, 11):
        _video(db, vid, 20, rng)
    ann_dir = tmp_path / "ann"
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    with transaction(db) as conn:
        conn.execute("DELETE FROM videos WHERE id <= 6")
    index = ann.save_index(db.conn, index, index_path(ann_dir, "m", "va", "video"), "m", "va", "video")
    assert index.deleted_count == 0 and index._index.get_current_count() == 80
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


def test_vector_rewritten_under_the_same_id_forces_a_rebuild(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(5)
    _video(db, 1, 10, rng)
    ann_dir = tmp_path / "ann"
    open_index(db.conn, ann_dir, "m", "va", "video", 16)
    other = unit(rng, 1, 16)[0]
    with transaction(db) as conn:
        conn.execute("INSERT OR REPLACE INTO embeddings VALUES (3, 'm', 'va', 'video', ?)", (dbmod.to_blob(other),))
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    assert index.query(other, 1)[0][0] == 3
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


def test_saves_leave_no_leftovers_and_dead_processes_tmp_files_go(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(6)
    _video(db, 1, 10, rng)
    ann_dir = tmp_path / "ann"
    folder = ann_dir / "m"
    folder.mkdir(parents=True)
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    (folder / f"va_video.{dead}-deadbeef.hnsw").write_bytes(b"x")
    (folder / f"va_video.json.{dead}-deadbeef.tmp").write_bytes(b"x")
    (folder / "va_video.hnsw").write_bytes(b"old format")
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    for _ in range(3):
        index.save(index_path(ann_dir, "m", "va", "video"))
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and "va_video.json" in names, names
    assert oct(os.stat(index_path(ann_dir, "m", "va", "video")).st_mode & 0o777) == "0o600"


def test_a_failed_save_keeps_the_previous_index(tmp_path, monkeypatch):
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(7)
    _video(db, 1, 10, rng)
    ann_dir = tmp_path / "ann"
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    before = index_path(ann_dir, "m", "va", "video").read_bytes()

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ann, "write_atomic", full)
    with pytest.raises(dbmod.DiskFullError):
        index.save(index_path(ann_dir, "m", "va", "video"))
    assert index_path(ann_dir, "m", "va", "video").read_bytes() == before
    assert len(list((ann_dir / "m").iterdir())) == 2


def test_an_index_whose_vectors_did_not_change_saves_only_its_manifest(tmp_path):
    """Videos went into the video index only (no sound): the audio index's generation moves, its
    vectors do not; saving must not rewrite its data file."""
    db = dbmod.connect(tmp_path / "library.db")
    rng = np.random.default_rng(8)
    _video(db, 1, 10, rng)
    ann_dir = tmp_path / "ann"
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    path = index_path(ann_dir, "m", "va", "video")
    data_before = json.loads(path.read_text())["data"]
    with transaction(db) as conn:  # a vector of another index of the same model
        conn.execute("INSERT INTO embeddings SELECT clip_id, 'm', 'va', 'audio', vec FROM embeddings")
    index = ann.save_index(db.conn, index, path, "m", "va", "video")
    manifest = json.loads(path.read_text())
    assert manifest["data"] == data_before and manifest["gen"] == ann.db_state(db.conn, "m")[0]
    _video(db, 2, 3, rng)                                  # now its vectors change: a new data file
    index = ann.save_index(db.conn, index, path, "m", "va", "video")
    assert json.loads(path.read_text())["data"] != data_before
    assert not path.with_name(data_before).exists()
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


def _manifest(ann_dir) -> dict:
    return json.loads(index_path(ann_dir, "m", "va", "video").read_text())


def test_a_small_change_saves_a_delta_beside_the_base_and_open_replays_it(tmp_path, monkeypatch):
    """A million-clip index must not be rewritten for one video: the base stays, a delta names
    the added vectors and the deleted ids, and opening replays it (deleted slots reused)."""
    db, rng, ann_dir = _library(tmp_path, 9, first_clips=8)                # 388 clips: deltas up to 19
    open_index(db.conn, ann_dir, "m", "va", "video", 16)
    base = _manifest(ann_dir)["data"]
    base_bytes = (ann_dir / "m" / base).read_bytes()
    new = _video(db, 21, 5, rng)
    with transaction(db) as conn:
        conn.execute("DELETE FROM videos WHERE id = 1")

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt instead of repaired")

    monkeypatch.setattr(ann, "rebuild_index", no_rebuild)
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    manifest = _manifest(ann_dir)
    assert manifest["data"] == base and (ann_dir / "m" / base).read_bytes() == base_bytes
    assert manifest["delta"].endswith(".delta") and index.delta_size == 13
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)    # base + delta, as loaded
    again = AnnIndex.load(index_path(ann_dir, "m", "va", "video"), 16)
    ids21 = [r[0] for r in db.conn.execute("SELECT id FROM clips WHERE video_id=21 ORDER BY idx")]
    assert again.query(new[2], 1)[0][0] == ids21[2]
    assert again._index.get_current_count() == 388 and again.deleted_count == 3   # 5 of 8 slots reused
    assert sorted(p.name for p in (ann_dir / "m").iterdir()) == sorted(["va_video.json", base, manifest["delta"]])


def test_a_delta_past_its_share_is_folded_into_a_new_base(tmp_path):
    db, rng, ann_dir = _library(tmp_path, 10)
    path = index_path(ann_dir, "m", "va", "video")
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    base = _manifest(ann_dir)["data"]
    _video(db, 21, 12, rng)
    index = ann.save_index(db.conn, index, path, "m", "va", "video")
    first_delta = _manifest(ann_dir)["delta"]
    _video(db, 22, 12, rng)                                                # 24 > 5% of 400: a new base
    index = ann.save_index(db.conn, index, path, "m", "va", "video")
    manifest = _manifest(ann_dir)
    assert manifest["data"] != base and "delta" not in manifest and index.delta_size == 0
    assert sorted(p.name for p in (ann_dir / "m").iterdir()) == sorted(["va_video.json", manifest["data"]])
    assert not (ann_dir / "m" / first_delta).exists()
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_a_damaged_delta_is_rebuilt_from_sqlite(tmp_path, damage, caplog):
    db, rng, ann_dir = _library(tmp_path, 11)
    open_index(db.conn, ann_dir, "m", "va", "video", 16)
    _video(db, 21, 5, rng)
    open_index(db.conn, ann_dir, "m", "va", "video", 16)
    delta = ann_dir / "m" / _manifest(ann_dir)["delta"]
    if damage == "truncate":
        delta.write_bytes(delta.read_bytes()[:-7])
    elif damage == "garbage":
        delta.write_bytes(os.urandom(delta.stat().st_size))
    else:
        delta.unlink()
    with caplog.at_level("WARNING"):
        open_index(db.conn, ann_dir, "m", "va", "video", 16)
    assert "rebuilding index" in caplog.text
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)


def test_a_failed_delta_save_keeps_the_previous_index(tmp_path, monkeypatch):
    """Killed (or out of space) after the delta was written, before the manifest: the old manifest
    and its files stay and are exact for the old generation; the new delta file is gone."""
    db, rng, ann_dir = _library(tmp_path, 12)
    path = index_path(ann_dir, "m", "va", "video")
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)
    before = path.read_bytes()
    _video(db, 21, 5, rng)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ann, "write_atomic", full)
    with pytest.raises(dbmod.DiskFullError):
        ann.save_index(db.conn, index, path, "m", "va", "video")
    assert path.read_bytes() == before and len(list((ann_dir / "m").iterdir())) == 2
    monkeypatch.undo()
    index = open_index(db.conn, ann_dir, "m", "va", "video", 16)     # the next open catches up
    assert "delta" in _manifest(ann_dir)
    assert_index_matches_db(db.conn, ann_dir, "m", "va", "video", 16)
