"""Schema migrations, tested on a library file written by schema 1 (tests/fixtures/library_v1.db:
two generated videos indexed by the mmvsearch of that schema, plus one transcript line)."""

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.errors import LibraryError
from engine.index import db as dbmod
from engine.index.ann import open_index
from engine.index.db import transaction
from engine.models.config import get_config
from tests.ann_check import assert_index_matches_db

FIXTURE = Path(__file__).parent / "fixtures" / "library_v1.db"


def _rows(path: Path, sql: str) -> list:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_schema1_library_is_migrated_keeping_everything(tmp_path):
    path = tmp_path / "library.db"
    shutil.copy(FIXTURE, path)
    before = {t: _rows(path, f"SELECT * FROM {t} ORDER BY 1") for t in ("clips", "embeddings")}
    features = _rows(path, "SELECT clip_id, backbone_id, n_frames, video, audio FROM features ORDER BY 1")
    videos = _rows(path, "SELECT * FROM videos ORDER BY 1")
    db = dbmod.connect(path)
    assert dbmod.schema_version(db.conn) == dbmod.SCHEMA_VERSION
    for table, rows in before.items():
        assert db.conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() == rows, table
    # schema 5: backbone v3, the audio features' first 768 float16 values (the Whisper half) kept
    v3 = get_config("mmv-base").backbone_id
    assert db.conn.execute("SELECT clip_id, backbone_id, n_frames, video, audio FROM features ORDER BY 1").fetchall() \
        == [(c, v3, n, v, None if a is None else a[:1536]) for c, _b, n, v, a in features]
    assert any(a is not None and len(a) == 4096 for *_, a in features)
    column = [d[1] for d in db.conn.execute("PRAGMA table_info(videos)")].index("backbone_id")
    assert db.conn.execute("SELECT * FROM videos ORDER BY 1").fetchall() == \
        [(*r[:column], v3 if r[column] else r[column], *r[column + 1:]) for r in videos]
    assert db.conn.execute("SELECT text FROM transcripts_fts WHERE transcripts_fts MATCH 'schema'").fetchall()
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert (tmp_path / "library.db.schema1.bak").exists()           # the untouched original is kept
    # clip ids are no longer reused: delete the newest video, add a clip, it gets a fresh id
    top = db.conn.execute("SELECT MAX(id) FROM clips").fetchone()[0]
    with transaction(db) as conn:
        conn.execute("DELETE FROM clips WHERE id=?", (top,))
        new = conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (1, 99, 0, 1)").lastrowid
    assert new > top
    # transcript rows know their clip, their ids are not reused either (schema 6), and the FTS index follows
    assert db.conn.execute("SELECT COUNT(*) FROM transcripts WHERE clip_id IS NULL").fetchone()[0] == 0
    old = db.conn.execute("SELECT id, text FROM transcripts ORDER BY id").fetchall()
    with transaction(db) as conn:
        conn.execute("DELETE FROM transcripts WHERE id=?", (old[-1][0],))
        fresh = conn.execute("INSERT INTO transcripts(video_id, kind, start, end, text) "
                             "VALUES (2, 'said', 0, 1, 'a migrated line')").lastrowid
    assert fresh > old[-1][0]
    assert db.conn.execute("SELECT rowid FROM transcripts_fts WHERE transcripts_fts MATCH 'migrated'").fetchall() \
        == [(fresh,)]
    assert not db.conn.execute("SELECT 1 FROM transcripts_fts WHERE transcripts_fts MATCH 'schema'").fetchall()
    # the vector generation moves with changes, so an index file follows
    model = db.conn.execute("SELECT model_id FROM embeddings LIMIT 1").fetchone()[0]
    dim = len(db.conn.execute("SELECT vec FROM embeddings WHERE space='va' LIMIT 1").fetchone()[0]) // 4
    open_index(db.conn, tmp_path / "ann", model, "va", "video", dim)
    with transaction(db) as conn:
        conn.execute("DELETE FROM videos WHERE id=1")
    open_index(db.conn, tmp_path / "ann", model, "va", "video", dim)
    assert_index_matches_db(db.conn, tmp_path / "ann", model, "va", "video", dim)
    db.conn.close()
    assert dbmod.schema_version(dbmod.connect(path).conn) == dbmod.SCHEMA_VERSION  # idempotent reopen


def test_library_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "library.db"
    db = dbmod.connect(path)
    db.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.conn.close()
    data = path.read_bytes()
    with pytest.raises(LibraryError, match="newer version of mmvsearch"):
        dbmod.connect(path)
    assert path.read_bytes() == data


def test_new_library_files_are_private(tmp_path):
    from engine.library import LibraryPaths

    paths = LibraryPaths(tmp_path / "lib").ensure()
    db = dbmod.connect(paths.db)
    db.conn.execute("INSERT INTO meta VALUES ('x', 'y')")
    assert oct(os.stat(paths.root).st_mode & 0o777) == "0o700"
    for f in paths.root.glob("library.db*"):
        assert oct(os.stat(f).st_mode & 0o777) == "0o600", f


def test_damaged_database_gives_a_clear_message(tmp_path):
    path = tmp_path / "library.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match=r"damaged|not a database"):
        dbmod.connect(path)


def test_fixture_is_schema_1():
    assert _rows(FIXTURE, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    assert np.frombuffer(_rows(FIXTURE, "SELECT vec FROM embeddings LIMIT 1")[0][0], np.float32).size > 0
