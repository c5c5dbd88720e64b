"""Numbered schema migrations of library.db, each one transaction that also records its number.

A library written by an older mmvsearch is brought forward step by step; a copy of the file is kept
first (``library.db.schema<N>.bak``) so an update never costs a user their library. A library from
a newer version is refused before anything here runs (engine.index.db).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from engine.errors import LibraryError

log = logging.getLogger(__name__)

CLIPS_V3 = """
CREATE TABLE clips_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    UNIQUE(video_id, idx)
);
INSERT INTO clips_v3(id, video_id, idx, start, end) SELECT id, video_id, idx, start, end FROM clips;
DROP TABLE clips;
ALTER TABLE clips_v3 RENAME TO clips;
DROP INDEX IF EXISTS embeddings_model;
"""


def _to_2(conn: sqlite3.Connection) -> None:
    """tuned_features (deep models' tail features) arrived without a version number of its own."""
    from engine.index.db import SCHEMA

    run_script(conn, _statement_containing(SCHEMA, "tuned_features"))


def _to_3(conn: sqlite3.Connection) -> None:
    """Clip ids never reused (AUTOINCREMENT), a covering index of ids per model, and ann_state, so
    HNSW files can prove which vectors they hold (engine.index.ann). Old index files carry no
    manifest and are rebuilt on their next open."""
    from engine.index.db import ANN_STATE_SCHEMA, SCHEMA

    run_script(conn, CLIPS_V3)
    run_script(conn, _statement_containing(SCHEMA, "embeddings_by_model"))
    run_script(conn, ANN_STATE_SCHEMA)
    conn.execute("INSERT OR IGNORE INTO ann_state(model_id, gen, epoch) SELECT DISTINCT model_id, 1, 1 FROM embeddings")


def _to_4(conn: sqlite3.Connection) -> None:
    """On-screen text (engine.ocr): screen_text with its FTS5 index, and ocr_done."""
    from engine.index.db import OCR_SCHEMA

    run_script(conn, OCR_SCHEMA)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _to_2, 3: _to_3, 4: _to_4}


def migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """Run every migration after ``version``, each atomically, after backing the file up."""
    from engine.index.db import SCHEMA_VERSION

    _backup(conn, path, version)
    conn.execute("PRAGMA foreign_keys=OFF")  # table rebuilds (12-step procedure of the SQLite docs)
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[target](conn)
                bad = conn.execute("PRAGMA foreign_key_check").fetchall()
                if bad:
                    raise LibraryError(f"migration to schema {target} broke {len(bad)} references")
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(target),))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            log.warning("library %s upgraded to schema %d", path, target)
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute statements one by one inside the open transaction (``executescript`` would commit
    it first); trigger bodies hold ';' too, so statements are cut where SQLite says one is complete."""
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if buf.strip(" \n;") and sqlite3.complete_statement(buf):
            conn.execute(buf)
            buf = ""


def _backup(conn: sqlite3.Connection, path: Path, version: int) -> None:
    backup = path.with_name(f"{path.name}.schema{version}.bak")
    if backup.exists():
        return
    target = sqlite3.connect(str(backup))
    try:
        conn.backup(target)
    finally:
        target.close()
    backup.chmod(0o600)


def _statement_containing(script: str, name: str) -> str:
    """The one CREATE statement of ``script`` that mentions ``name`` (statements end with ';')."""
    for stmt in script.split(";"):
        if name in stmt and "CREATE" in stmt:
            return stmt.strip() + ";"
    raise LibraryError(f"no schema statement for {name}")
