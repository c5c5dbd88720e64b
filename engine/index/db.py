"""The library database: SQLite (WAL) through sqlite-utils. It is the source of truth.

Tables
------
videos       one row per file: identity (path, size, mtime, partial hash), probe facts, status.
clips        fixed windows of a video: (video_id, idx, start, end).
features     per clip, the backbone outputs *before* the heads (frames x 1280 float16 vision,
             768 float16 audio), so fine-tuning and re-projection never decode video again.
tuned_features  per clip and fine-tuned vision tail (deep models): the tail's video features, so
             those models re-project and train on stored features too.
embeddings   per clip, model id, space ('va' | 'vat') and modality ('video' | 'audio'):
             an L2-normalised float32 vector. Every vector records the model it came from.
models       every model the library has used: the packaged base and fine-tuned checkpoints.
transcripts  speech ('said') and sound captions ('heard') with times, tied to clips; FTS5 over text.
screen_text  text read on screen ('read', engine/ocr) per clip with time range and confidence; FTS5.
ocr_done     which videos have been read (and by which OCR engine), so OCR catches up incrementally.
meta         key/value (schema version, active model id).

Only one writer at a time (the indexer or the trainer); readers open their own connections.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlite_utils

from engine.errors import DiskFullError, LibraryBusyError, LibraryError

SCHEMA_VERSION = 6  # 1: first release; 2: tuned_features; 3: stable clip ids + ann_state; 4: screen_text (OCR);
#                    5: backbone v3 (768-d audio features: v2's cut to their Whisper half)
#                    6: transcript and screen-text row ids never reused (their HNSW index, engine.speech.segment_index)
#                       and each row's clip stored with it

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    phash TEXT NOT NULL,
    duration REAL,
    width INTEGER, height INTEGER, fps REAL, rotation INTEGER DEFAULT 0,
    has_audio INTEGER DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | done | error | missing
    error TEXT,
    backbone_id TEXT,
    clip_seconds REAL,
    transcribed INTEGER DEFAULT 0,
    added_at REAL, indexed_at REAL
);
CREATE INDEX IF NOT EXISTS videos_phash ON videos(phash);
CREATE INDEX IF NOT EXISTS videos_status ON videos(status);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: an HNSW label always means one vector
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    UNIQUE(video_id, idx)
);
CREATE TABLE IF NOT EXISTS features (
    clip_id INTEGER PRIMARY KEY REFERENCES clips(id) ON DELETE CASCADE,
    backbone_id TEXT NOT NULL,
    n_frames INTEGER NOT NULL,
    video BLOB NOT NULL,      -- float16 [n_frames, vision_dim]
    audio BLOB                -- float16 [audio_dim = 768], NULL when the clip has no sound
);
CREATE TABLE IF NOT EXISTS tuned_features (
    clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
    tail_id TEXT NOT NULL,    -- the deep model whose vision tail computed them
    n_frames INTEGER NOT NULL,
    video BLOB NOT NULL,      -- float16 [n_frames, vision_dim]
    PRIMARY KEY (tail_id, clip_id)
);
CREATE TABLE IF NOT EXISTS embeddings (
    clip_id INTEGER NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    space TEXT NOT NULL,      -- va | vat
    modality TEXT NOT NULL,   -- video | audio
    vec BLOB NOT NULL,        -- float32, L2-normalised
    PRIMARY KEY (clip_id, model_id, space, modality)
);
CREATE INDEX IF NOT EXISTS embeddings_by_model ON embeddings(model_id, space, modality, clip_id);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent TEXT,
    checkpoint TEXT,          -- path relative to the library's models/ dir; NULL for the base
    created_at REAL,
    info TEXT                 -- JSON: training config, metrics
);
CREATE TABLE IF NOT EXISTS transcripts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the segment HNSW index's labels
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,       -- said (speech) | heard (sound caption)
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL,
    words TEXT,               -- JSON [[word, start, end, prob], ...]
    avg_logprob REAL, no_speech_prob REAL,
    vec BLOB,                 -- float32 text-tower embedding (384), for semantic matching
    clip_id INTEGER           -- the clip it overlaps most when written (engine.speech.store.assign_clips)
);
CREATE INDEX IF NOT EXISTS transcripts_video ON transcripts(video_id, start);
"""

# Which state of a model's vectors an HNSW file reflects (engine.index.ann): ``gen`` moves with
# every vector inserted or deleted, ``epoch`` when a vector is rewritten under an existing clip id.
# Triggers keep them in the same transaction as the change, whoever writes. (No INSERT OR IGNORE
# in them: an outer INSERT OR REPLACE would turn it into a REPLACE that resets the counters.)
ANN_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS ann_state (
    model_id TEXT PRIMARY KEY, gen INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS embeddings_rewrite BEFORE INSERT ON embeddings
WHEN EXISTS (SELECT 1 FROM embeddings WHERE clip_id = new.clip_id AND model_id = new.model_id
             AND space = new.space AND modality = new.modality)
BEGIN
  INSERT INTO ann_state(model_id) SELECT new.model_id
    WHERE NOT EXISTS (SELECT 1 FROM ann_state WHERE model_id = new.model_id);
  UPDATE ann_state SET epoch = epoch + 1 WHERE model_id = new.model_id;
END;
CREATE TRIGGER IF NOT EXISTS embeddings_gen_ai AFTER INSERT ON embeddings BEGIN
  INSERT INTO ann_state(model_id) SELECT new.model_id
    WHERE NOT EXISTS (SELECT 1 FROM ann_state WHERE model_id = new.model_id);
  UPDATE ann_state SET gen = gen + 1 WHERE model_id = new.model_id;
END;
CREATE TRIGGER IF NOT EXISTS embeddings_gen_ad AFTER DELETE ON embeddings BEGIN
  INSERT INTO ann_state(model_id) SELECT old.model_id
    WHERE NOT EXISTS (SELECT 1 FROM ann_state WHERE model_id = old.model_id);
  UPDATE ann_state SET gen = gen + 1 WHERE model_id = old.model_id;
END;
CREATE TRIGGER IF NOT EXISTS embeddings_gen_au AFTER UPDATE ON embeddings BEGIN
  INSERT INTO ann_state(model_id) SELECT m FROM (SELECT old.model_id AS m UNION SELECT new.model_id)
    WHERE m NOT IN (SELECT model_id FROM ann_state);
  UPDATE ann_state SET epoch = epoch + 1 WHERE model_id IN (old.model_id, new.model_id);
END;
"""

FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS transcripts_fts USING fts5(
    text, content='transcripts', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS transcripts_ai AFTER INSERT ON transcripts BEGIN
  INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS transcripts_ad AFTER DELETE ON transcripts BEGIN
  INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS transcripts_au AFTER UPDATE ON transcripts BEGIN
  INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES('delete', old.id, old.text);
  INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
END;
"""


# On-screen text (engine/ocr), schema 4 (engine.index.migrations._to_4 adds it to older libraries);
# the same columns as transcripts, so engine.speech.store searches it as it is.
OCR_SCHEMA = """
CREATE TABLE IF NOT EXISTS screen_text (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused (as transcripts)
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL DEFAULT 'read',
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL,       -- as read, lines joined with ' | '
    words TEXT,               -- run-together words split ("HARBOURFESTIVAL" -> "harbour festival"), searchable
    confidence REAL,          -- mean recognition score of the frames that showed it
    frames INTEGER,           -- frames read that showed it
    vec BLOB,                 -- float32 text-tower embedding (384), for semantic matching
    clip_id INTEGER           -- the clip it overlaps most when written (as transcripts)
);
CREATE INDEX IF NOT EXISTS screen_text_video ON screen_text(video_id, start);
CREATE TABLE IF NOT EXISTS ocr_done (
    video_id INTEGER PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    engine TEXT NOT NULL,
    read_at REAL
);
CREATE VIRTUAL TABLE IF NOT EXISTS screen_text_fts USING fts5(
    text, words, content='screen_text', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS screen_text_ai AFTER INSERT ON screen_text BEGIN
  INSERT INTO screen_text_fts(rowid, text, words) VALUES (new.id, new.text, new.words);
END;
CREATE TRIGGER IF NOT EXISTS screen_text_ad AFTER DELETE ON screen_text BEGIN
  INSERT INTO screen_text_fts(screen_text_fts, rowid, text, words) VALUES('delete', old.id, old.text, old.words);
END;
"""


def connect(path: Path) -> sqlite_utils.Database:
    """Open (and create or migrate) the library database; the file is private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not path.exists():  # created 0600: it holds every path and transcript of the library
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA recursive_triggers=ON")  # REPLACE's implicit deletes bump generations too
        _create_or_migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        raise _database_error(exc, f"cannot open library database {path}") from exc
    except OSError as exc:
        raise LibraryError(f"cannot create library database {path}: {exc.strerror or exc}") from exc
    return sqlite_utils.Database(conn)


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The file's schema version; None for an empty (new) database."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return 1 if row is None else int(row[0])


def _create_or_migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = schema_version(conn)
    if version is None:
        # Every statement is IF NOT EXISTS / OR IGNORE: two processes creating it at once agree.
        conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + ANN_STATE_SCHEMA + FTS_SCHEMA + OCR_SCHEMA +
                           f"INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
                           "COMMIT;")
        return
    if version > SCHEMA_VERSION:
        raise LibraryError(f"the library {path} was written by a newer version of mmvsearch (schema {version}; "
                           f"this version reads up to {SCHEMA_VERSION}). Update mmvsearch to open it.")
    if version < SCHEMA_VERSION:
        from engine.index.migrations import migrate

        migrate(conn, path, version)


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One atomic unit of work: all of it lands or none of it (a kill mid-way loses nothing)."""
    conn = db.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.DatabaseError as exc:
        raise _database_error(exc, "cannot start writing to the library") from exc
    try:
        yield conn
    except BaseException as exc:
        _rollback(conn)  # SQLite may already have rolled back by itself (e.g. SQLITE_FULL)
        if isinstance(exc, sqlite3.DatabaseError):
            raise _database_error(exc, "writing to the library failed") from exc
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            _rollback(conn)
            raise _database_error(exc, "saving to the library failed") from exc


def _database_error(exc: sqlite3.DatabaseError, what: str) -> LibraryError:
    """A typed error with a message a user can act on, for the SQLite errors that reach users."""
    text = str(exc).lower()
    if _is_disk_full(exc):
        return DiskFullError(f"the disk holding the library is full ({what}): free some space and run again")
    if "locked" in text or "busy" in text:
        return LibraryBusyError(f"{what}: the library is busy (another mmvsearch process is writing to it); "
                                "try again when it has finished")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return LibraryError(f"{what}: the database file is damaged ({exc}); run `mmvsearch doctor`")
    return LibraryError(f"{what}: {exc}")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass  # the original error is the one to report


def _is_disk_full(exc: Exception) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "database or disk is full" in text or getattr(exc, "errno", None) == errno.ENOSPC


def get_meta(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return default if row is None else row[0]


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (key, value))


def to_blob(array: np.ndarray, dtype: str = "float32") -> bytes:
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def from_blob(blob: bytes, dtype: str = "float32", shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.frombuffer(blob, dtype=dtype)
    return arr.reshape(shape) if shape is not None else arr
