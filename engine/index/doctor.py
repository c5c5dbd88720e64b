"""``mmvsearch doctor``: check a library, rebuild what is derived, salvage a damaged database.

- :func:`check` runs SQLite's integrity and reference checks and verifies every HNSW file against
  the database (generation, epoch, readable data), without changing anything.
- :func:`heal` rebuilds every HNSW file from SQLite, deletes leftover temporary files and rows
  whose parent is gone, and sends videos marked done but missing their clips back to 'pending'.
- :func:`salvage` copies every row that can still be read from a damaged ``library.db`` into a
  fresh database of the current schema, keeps the damaged file next to it, and swaps them.
- :func:`export` writes the readable videos and transcripts as JSON lines (a way out that needs
  no mmvsearch at all).

None of these goes through engine.api: a library too damaged to open is exactly their case.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import LibraryError
from engine.index import db as dbmod
from engine.index.ann import AnnIndex, db_state, index_path, rebuild_index
from engine.index.lock import WriterLock
from engine.library import LibraryPaths

MAX_FAILED_READS = 5000  # per table: past this, the rest of it is beyond reading row by row
TABLES = ("meta", "videos", "clips", "features", "tuned_features", "embeddings", "models", "transcripts")


@dataclass
class Report:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


def _open_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)


def check(root: Path) -> Report:
    """Everything that can be verified without changing the library."""
    paths = LibraryPaths(Path(root))
    report = Report()
    if not paths.db.exists():
        report.problem(f"no library database at {paths.db}")
        return report
    try:
        conn = _open_ro(paths.db)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        report.problem(f"library.db cannot be read: {exc} (run `mmvsearch doctor --salvage`)")
        return report
    try:
        if result != ["ok"]:
            report.problem(f"library.db is damaged: {'; '.join(result[:5])} (run `mmvsearch doctor --salvage`)")
            return report
        bad_refs = conn.execute("PRAGMA foreign_key_check").fetchall()
        if bad_refs:
            report.problem(f"{len(bad_refs)} rows point at rows that do not exist (run `mmvsearch doctor --salvage`)")
        version = dbmod.schema_version(conn)
        report.notes.append(f"schema {version} (this mmvsearch: {dbmod.SCHEMA_VERSION})")
        _check_videos(conn, report)
        _check_indexes(conn, paths, report)
    finally:
        conn.close()
    return report


def _check_videos(conn: sqlite3.Connection, report: Report) -> None:
    hollow = conn.execute("SELECT COUNT(*) FROM videos v WHERE v.status='done' AND NOT EXISTS "
                          "(SELECT 1 FROM clips c WHERE c.video_id = v.id)").fetchone()[0]
    if hollow:
        report.problem(f"{hollow} videos are marked indexed but have no clips (run `mmvsearch doctor --heal`)")
    counts = dict(conn.execute("SELECT status, COUNT(*) FROM videos GROUP BY status").fetchall())
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    report.notes.append(f"videos: {summary}" if counts else "no videos")
    leftovers = unpublished_models(conn)
    if leftovers:
        report.notes.append(f"{len(leftovers)} unfinished training runs left vectors behind (removed by --heal)")


def _check_indexes(conn: sqlite3.Connection, paths: LibraryPaths, report: Report) -> None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='ann_state'").fetchone() is None:
        report.notes.append("index files are checked after the library is upgraded (open it once)")
        return
    for model_id, space, modality, dim in _index_keys(conn):
        path = index_path(paths.ann_dir, model_id, space, modality)
        name = f"{model_id}/{space}_{modality}"
        if not path.exists():
            report.notes.append(f"{name}: no index file (built at the next search)")
            continue
        try:
            index = AnnIndex.load(path, dim)
        except LibraryError as exc:
            report.problem(f"{name}: {exc} (rebuilt at the next open, or `mmvsearch doctor --heal`)")
            continue
        gen, epoch = db_state(conn, model_id)
        if (index.gen, index.epoch) != (gen, epoch):
            report.notes.append(f"{name}: behind the database (brought up to date at the next open)")
    leftovers = [p.name for p in paths.ann_dir.glob("*/*.tmp")]
    if leftovers:
        report.notes.append(f"{len(leftovers)} leftover temporary files in ann/ (removed by --heal)")


def _index_keys(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    keys = []
    for model_id, space, modality in conn.execute(
            "SELECT DISTINCT model_id, space, modality FROM embeddings").fetchall():
        blob = conn.execute("SELECT vec FROM embeddings WHERE model_id=? AND space=? AND modality=? LIMIT 1",
                            (model_id, space, modality)).fetchone()[0]
        keys.append((model_id, space, modality, len(blob) // 4))
    return keys


def heal(root: Path) -> list[str]:
    """Rebuild derived data from SQLite (the source of truth). Returns what was done."""
    paths = LibraryPaths(Path(root))
    lock = WriterLock(paths.root, job="repairing (doctor)")
    lock.acquire(blocking=False)  # a writer at work (training mid-publish, say) must not be "repaired"
    db = dbmod.connect(paths.db)
    done = []
    try:
        with dbmod.transaction(db) as conn:
            orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
            for table, rowid, _parent, _fk in orphans:
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
            if orphans:
                done.append(f"{len(orphans)} rows pointing at deleted rows removed")
            n = conn.execute("UPDATE videos SET status='pending' WHERE status='done' AND NOT EXISTS "
                             "(SELECT 1 FROM clips c WHERE c.video_id = videos.id)").rowcount
        if n:
            done.append(f"{n} videos without clips sent back to pending (the next `index` redoes them)")
        done += _discard_unpublished_models(db, paths)
        for model_id, space, modality, dim in _index_keys(db.conn):
            rebuild_index(db.conn, model_id, space, modality, dim).save(
                index_path(paths.ann_dir, model_id, space, modality))
            done.append(f"rebuilt index {model_id}/{space}_{modality}")
        for tmp in paths.ann_dir.glob("*/*.tmp"):
            tmp.unlink(missing_ok=True)
    finally:
        db.conn.close()
        lock.release()
    return done


def unpublished_models(conn) -> list[str]:
    """Model ids with vectors but never registered nor active: what a killed ``train`` leaves
    before its switching transaction (engine.train.publish). Nothing searches them."""
    from engine.models.config import MODEL_CONFIGS

    keep = {r[0] for r in conn.execute("SELECT id FROM models")}
    keep |= {cfg.base_model_id for cfg in MODEL_CONFIGS.values()}
    active = conn.execute("SELECT value FROM meta WHERE key='active_model'").fetchone()
    if active:
        keep.add(active[0])
    ids = {r[0] for r in conn.execute("SELECT DISTINCT model_id FROM embeddings")}
    ids |= {r[0] for r in conn.execute("SELECT DISTINCT tail_id FROM tuned_features")}
    return sorted(ids - keep)


def _discard_unpublished_models(db, paths: LibraryPaths) -> list[str]:
    done = []
    for model_id in unpublished_models(db.conn):
        with dbmod.transaction(db) as conn:
            conn.execute("DELETE FROM embeddings WHERE model_id = ?", (model_id,))
            conn.execute("DELETE FROM tuned_features WHERE tail_id = ?", (model_id,))
        shutil.rmtree(paths.ann_dir / model_id, ignore_errors=True)
        for f in [*paths.models_dir.glob(f"{model_id}.*"), paths.models_dir / f"query-heads-{model_id}.npz"]:
            f.unlink(missing_ok=True)
        done.append(f"removed the leftovers of {model_id}, a training run that never finished")
    return done


def salvage(root: Path) -> tuple[Path, dict[str, int]]:
    """Copy what can be read into a fresh database and put it in place; the damaged file is kept
    as ``library.db.damaged-<time>``. Returns (that file, rows copied per table)."""
    paths = LibraryPaths(Path(root))
    lock = WriterLock(paths.root, job="salvaging (doctor)")
    lock.acquire(blocking=False)
    try:
        return _salvage(paths)
    finally:
        lock.release()


def _salvage(paths: LibraryPaths) -> tuple[Path, dict[str, int]]:
    fresh = paths.db.with_name("library.salvage.db")
    for p in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        p.unlink(missing_ok=True)
    new = dbmod.connect(fresh)
    copied: dict[str, int] = {}
    try:
        old = _open_ro(paths.db)
    except sqlite3.DatabaseError as exc:
        raise LibraryError(f"nothing can be read from {paths.db}: {exc}") from exc
    try:
        new.conn.execute("DELETE FROM meta")
        for table in TABLES:
            copied[table] = _copy_table(old, new.conn, table)
        new.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                         (str(dbmod.SCHEMA_VERSION),))
        new.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        old.close()
        new.conn.close()
    damaged = paths.db.with_name(f"library.db.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    paths.db.rename(damaged)
    for suffix in ("-wal", "-shm"):
        Path(f"{paths.db}{suffix}").unlink(missing_ok=True)
    fresh.rename(paths.db)
    Path(f"{fresh}-wal").unlink(missing_ok=True)
    Path(f"{fresh}-shm").unlink(missing_ok=True)
    return damaged, copied


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, table: str) -> int:
    """Rows of ``table`` that can be read, in columns both schemas have; unreadable stretches are
    skipped by bisecting rowid ranges."""
    try:
        old_cols = [r[1] for r in old.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return 0
    new_cols = {r[1] for r in new.execute(f"PRAGMA table_info({table})")}
    cols = [c for c in old_cols if c in new_cols]
    if not cols:
        return 0
    col_sql = ", ".join(cols)
    insert = f"INSERT OR IGNORE INTO {table}({col_sql}) VALUES ({', '.join('?' * len(cols))})"
    new.execute("PRAGMA foreign_keys=OFF")  # parents may be among the unreadable rows
    new.execute("BEGIN")
    n = 0
    try:
        try:
            lo, hi = old.execute(f"SELECT MIN(rowid), MAX(rowid) FROM {table}").fetchone()
        except sqlite3.DatabaseError:
            lo, hi = 1, 1 << 40
        if lo is None:
            return 0
        for rows in _readable(old, f"SELECT {col_sql} FROM {table}", lo, hi):
            n += sum(new.execute(insert, row).rowcount for row in rows)
    finally:
        new.execute("COMMIT")
        new.execute("PRAGMA foreign_keys=ON")
    return n


def _readable(old: sqlite3.Connection, select: str, lo: int, hi: int):
    """Chunks of rows with rowid in [lo, hi]; a chunk that fails to read is halved until the bad
    rows are isolated and skipped."""
    stack, failures = [(lo, hi)], 0
    while stack and failures < MAX_FAILED_READS:
        a, b = stack.pop()
        try:
            rows = old.execute(f"{select} WHERE rowid BETWEEN ? AND ?", (a, b)).fetchall()
        except sqlite3.DatabaseError:
            failures += 1
            if a < b:
                mid = (a + b) // 2
                stack += [(mid + 1, b), (a, mid)]
            continue
        if rows:
            yield rows


def export(root: Path, out_dir: Path) -> dict[str, int]:
    """Readable videos and transcripts as JSON lines (videos.jsonl, transcripts.jsonl)."""
    paths = LibraryPaths(Path(root))
    out_dir.mkdir(parents=True, exist_ok=True)
    old = _open_ro(paths.db)
    counts = {}
    try:
        for name, table, cols in (("videos", "videos", "id, path, status, error, duration"),
                                  ("transcripts", "transcripts", "video_id, kind, start, end, text")):
            keys = [c.strip() for c in cols.split(",")]
            n = 0
            with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as f:
                try:
                    lo, hi = old.execute(f"SELECT MIN(rowid), MAX(rowid) FROM {table}").fetchone()
                except sqlite3.DatabaseError:
                    lo, hi = 1, 1 << 40
                if lo is not None:
                    for rows in _readable(old, f"SELECT {cols} FROM {table}", lo, hi):
                        for row in rows:
                            f.write(json.dumps(dict(zip(keys, row)), ensure_ascii=False) + "\n")
                            n += 1
            counts[name] = n
    finally:
        old.close()
    return counts
