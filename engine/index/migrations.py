"""Numbered schema migrations of library.db, each one transaction that also records its number.

A library written by an older mmvsearch is brought forward step by step; a copy of the file is kept
first (``library.db.schema<N>.bak``) so an update never costs a user their library. A library from
a newer version is refused before anything here runs (engine.index.db).
"""

from __future__ import annotations

import json
import logging
import re
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


# Backbone v2 -> v3 (engine.models.config.ModelConfig.backbone_id): the stored audio feature was the
# Whisper encoder's mean + std (768 float16) followed by the spectrogram CNN (1280), which no head
# read; v3 stores the first part alone. Frozen here: a later backbone change adds its own step.
_V2_BACKBONE = re.compile(r"^(?P<head>.+)\+specnet@(?P<rate>\d+)\+v2$")
_V3_AUDIO_BYTES = 768 * 2


def upgrade_backbone_id(backbone_id: str | None) -> str | None:
    """The id of features of ``backbone_id`` after migration 5 (itself when not a v2 id)."""
    match = None if backbone_id is None else _V2_BACKBONE.match(backbone_id)
    return backbone_id if match is None else f"{match['head']}@{match['rate']}+v3"


def _to_5(conn: sqlite3.Connection) -> None:
    """Backbone v3: stored v2 audio features keep their first 768 values (the same numbers), and
    features, videos and fine-tuned models are relabelled with the v3 id, so the library is not
    decoded again, its vectors (the heads read only the first 384 values) stay as they are, and
    models fine-tuned on v2 features stay usable."""
    ids = {r[0] for r in conn.execute("SELECT DISTINCT backbone_id FROM features "
                                      "UNION SELECT DISTINCT backbone_id FROM videos")}
    for old in ids:
        new = upgrade_backbone_id(old)
        if new == old:
            continue
        conn.execute("UPDATE features SET backbone_id = ?, audio = substr(audio, 1, ?) WHERE backbone_id = ?",
                     (new, _V3_AUDIO_BYTES, old))
        conn.execute("UPDATE videos SET backbone_id = ? WHERE backbone_id = ?", (new, old))
    _relabel_models(conn)


def _relabel_models(conn: sqlite3.Connection) -> None:
    """Fine-tuned models record the backbone they were trained on (engine.train.models: ``usable``)."""
    for model_id, info in conn.execute("SELECT id, info FROM models").fetchall():
        try:
            data = json.loads(info) if info else None
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        new = upgrade_backbone_id(data.get("backbone_id"))
        if new != data.get("backbone_id"):
            data["backbone_id"] = new
            conn.execute("UPDATE models SET info = ? WHERE id = ?", (json.dumps(data), model_id))


def _to_6(conn: sqlite3.Connection) -> None:
    """Transcript and on-screen text row ids never reused (AUTOINCREMENT), so a label of their HNSW
    index (engine.speech.segment_index) always means one vector, and each row's clip stored with it
    (engine.speech.store.assign_clips). Rows keep their ids, so the FTS5 indexes (keyed by rowid)
    stay valid; the tables' triggers and indexes are made again."""
    from engine.index.db import FTS_SCHEMA, OCR_SCHEMA, SCHEMA
    from engine.speech.store import assign_clips

    for table, schema in (("transcripts", SCHEMA), ("screen_text", OCR_SCHEMA)):
        create = _statement_containing(schema, f"TABLE IF NOT EXISTS {table} (")
        run_script(conn, create.replace(f"IF NOT EXISTS {table} (", f"{table}_v6 ("))
        columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
        conn.execute(f"INSERT INTO {table}_v6({columns}) SELECT {columns} FROM {table}")
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {table}_v6 RENAME TO {table}")
        assign_clips(conn, table)
    run_script(conn, _statement_containing(SCHEMA, "transcripts_video"))
    run_script(conn, FTS_SCHEMA)
    run_script(conn, OCR_SCHEMA)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _to_2, 3: _to_3, 4: _to_4, 5: _to_5, 6: _to_6}


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
