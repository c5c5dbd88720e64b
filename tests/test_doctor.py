"""`mmvsearch doctor`: check, heal derived data, salvage a damaged library.db, export."""

from __future__ import annotations

import json
import sqlite3

import numpy as np

from engine.cli import main
from engine.index import db as dbmod
from engine.index import doctor
from engine.index.ann import index_path, open_index
from engine.index.db import transaction
from engine.library import LibraryPaths
from tests.ann_check import assert_index_matches_db


def _library(root, n_videos=300, clips=4, dim=16):
    paths = LibraryPaths(root).ensure()
    db = dbmod.connect(paths.db)
    rng = np.random.default_rng(0)
    with transaction(db) as conn:
        for v in range(1, n_videos + 1):
            conn.execute("INSERT INTO videos(id, path, size, mtime, phash, status) VALUES (?, ?, 1, 1, 'h', 'done')",
                         (v, f"/videos/v{v}.mp4"))
            for i in range(clips):
                cid = conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                                   (v, i, 4.0 * i, 4.0 * i + 4)).lastrowid
                vec = rng.standard_normal(dim).astype(np.float32)
                conn.execute("INSERT INTO embeddings VALUES (?, 'm', 'va', 'video', ?)",
                             (cid, dbmod.to_blob(vec / np.linalg.norm(vec))))
            conn.execute("INSERT INTO transcripts(video_id, kind, start, end, text) VALUES (?, 'said', 0, 1, ?)",
                         (v, f"words of video {v} " + "x" * 200))
        dbmod.set_meta(db, "active_model", "m")
    open_index(db.conn, paths.ann_dir, "m", "va", "video", dim)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return paths


def test_heal_removes_what_a_killed_training_run_left(tmp_path):
    paths = _library(tmp_path / "lib", n_videos=5)
    db = dbmod.connect(paths.db)
    with transaction(db) as conn:
        conn.execute("INSERT INTO embeddings SELECT clip_id, 'ft-unfinished', space, modality, vec FROM embeddings")
    (paths.models_dir / "ft-unfinished.pt").write_bytes(b"x")
    assert doctor.unpublished_models(db.conn) == ["ft-unfinished"]
    assert any("unfinished training" in n for n in doctor.check(paths.root).notes)
    doctor.heal(paths.root)
    assert doctor.unpublished_models(db.conn) == []
    assert not (paths.models_dir / "ft-unfinished.pt").exists()
    assert db.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id='m'").fetchone()[0] == 20


def test_healthy_library_checks_ok(tmp_path, capsys):
    paths = _library(tmp_path / "lib")
    assert doctor.check(paths.root).ok
    assert main(["--library", str(paths.root), "doctor"]) == 0
    assert "library is healthy" in capsys.readouterr().out


def test_heal_rebuilds_a_damaged_index_and_hollow_videos(tmp_path):
    paths = _library(tmp_path / "lib")
    manifest = index_path(paths.ann_dir, "m", "va", "video")
    data = manifest.with_name(json.loads(manifest.read_text())["data"])
    data.write_bytes(data.read_bytes()[:100])
    conn = sqlite3.connect(paths.db)
    conn.execute("DELETE FROM clips WHERE video_id = 7")
    conn.commit()
    conn.close()
    report = doctor.check(paths.root)
    assert not report.ok and any("truncated" in p for p in report.problems)
    assert any("no clips" in p for p in report.problems)
    assert main(["--library", str(paths.root), "doctor", "--heal"]) == 0
    db = dbmod.connect(paths.db)
    assert_index_matches_db(db.conn, paths.ann_dir, "m", "va", "video", 16)
    assert db.conn.execute("SELECT status FROM videos WHERE id=7").fetchone()[0] == "pending"


def test_damaged_database_is_salvaged_and_exported(tmp_path, capsys):
    paths = _library(tmp_path / "lib")
    raw = bytearray(paths.db.read_bytes())
    page = 4096
    n_pages = len(raw) // page
    for p in range(n_pages // 3, n_pages // 3 + 4):  # wreck four pages in the middle
        raw[p * page:(p + 1) * page] = b"\xAB" * page
    paths.db.write_bytes(bytes(raw))
    assert not doctor.check(paths.root).ok
    counts = doctor.export(paths.root, tmp_path / "export")
    assert counts["videos"] > 0
    assert (tmp_path / "export" / "videos.jsonl").read_text().count("\n") == counts["videos"]
    assert main(["--library", str(paths.root), "doctor", "--salvage"]) in (0, 1)
    out = capsys.readouterr().out
    assert "damaged file is kept" in out
    db = dbmod.connect(paths.db)
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = db.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    assert kept > 0.5 * 300 * 4, kept
    assert list(paths.root.glob("library.db.damaged-*"))
    assert_index_matches_db(db.conn, paths.ann_dir, "m", "va", "video", 16)
    assert db.conn.execute("SELECT COUNT(*) FROM transcripts_fts WHERE transcripts_fts MATCH 'words'").fetchone()[0] > 0
