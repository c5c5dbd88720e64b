"""Find video files and decide what needs indexing (rclip-style incremental scan).

- unchanged files (same path, size and mtime, already done or failed) are skipped;
- a file at a new path whose partial hash matches a known video that is gone from its old path is
  a move/rename: the row keeps its clips and embeddings, only its path changes;
- files under a scanned folder that no longer exist are marked 'missing' (hidden from results).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from engine.index.db import transaction
from engine.library import VIDEO_EXTENSIONS

HASH_BLOCK = 1 << 20  # 1 MiB from the start, the middle and the end


def partial_hash(path: Path) -> str:
    """sha1 of the size and three 1 MiB blocks: cheap on huge files, stable across moves.

    Only regular files: a FIFO or device named like a video would block or never end."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        size = st.st_size
        h = hashlib.sha1(str(size).encode())
        for offset in sorted({0, max(0, size // 2 - HASH_BLOCK // 2), max(0, size - HASH_BLOCK)}):
            f.seek(offset)
            h.update(f.read(HASH_BLOCK))
    return h.hexdigest()


def db_path(path: Path) -> str | None:
    """The path as stored in SQLite, or None when the name cannot be stored (not valid UTF-8)."""
    s = str(path)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return s


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be indexed at all (before decoding), or None."""
    if db_path(path) is None:
        return f"file name is not valid UTF-8, rename it to index it: {path!s}".encode("utf-8", "replace").decode()
    try:
        st = path.stat()
    except OSError as exc:
        if path.is_symlink():
            kind = "symbolic link loop" if exc.errno == errno.ELOOP else "broken symbolic link"
            return f"{kind}: {path}"
        return f"cannot read {path}: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file (a FIFO, socket or device named like a video): {path}"
    return None


def is_excluded(path: Path, patterns: list[str]) -> bool:
    s = str(path)
    return any(fnmatch.fnmatch(s, p) or fnmatch.fnmatch(path.name, p) for p in patterns)


def find_videos(paths: list[Path], excluded: list[str]) -> tuple[list[Path], list[str]]:
    """Video files under ``paths`` (files or folders), sorted; plus messages for bad inputs."""
    found: set[Path] = set()
    problems: list[str] = []
    for p in paths:
        p = p.expanduser().resolve()
        if p.exists() and not p.is_dir():
            if p.suffix.lower() not in VIDEO_EXTENSIONS:
                problems.append(f"not a video file (by its extension): {p}")
            elif (problem := file_problem(p)) is not None:
                problems.append(problem)
            else:
                found.add(p)
        elif p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p, onerror=lambda e: problems.append(str(e))):
                dirnames[:] = [d for d in dirnames if not is_excluded(Path(dirpath) / d, excluded)]
                for name in filenames:
                    f = Path(dirpath) / name
                    if f.suffix.lower() not in VIDEO_EXTENSIONS or is_excluded(f, excluded):
                        continue
                    problem = file_problem(f)
                    if problem is None:
                        found.add(f)
                    else:
                        problems.append(problem)
        else:
            problems.append(f"no such file or folder: {p}")
    return sorted(found), problems


@dataclass
class ScanPlan:
    to_index: list[tuple[int, Path]] = field(default_factory=list)   # (video_id, path)
    unchanged: int = 0
    moved: int = 0
    missing: int = 0
    failed_before: int = 0
    problems: list[str] = field(default_factory=list)


def plan_scan(db: sqlite_utils.Database, files: list[Path], roots: list[Path], clip_seconds: float,
              backbone_id: str, retry_errors: bool = False) -> ScanPlan:
    """Compare the files with the database; register new files as 'pending'.

    New files are hashed first, outside any transaction (reading a file can take long on a slow
    disk); the decisions are then made on rows read inside one write transaction, so another
    process's insert cannot break ``UNIQUE(path)``. ``retry_errors``: files recorded as failing
    are tried again even though they did not change."""
    plan = ScanPlan()
    stats = _stat_files(files, plan.problems)
    known_before = {r[0] for r in db.conn.execute("SELECT path FROM videos")}
    hashes = {}
    for f, key, _ in stats:
        if key not in known_before:
            try:
                hashes[key] = partial_hash(f)
            except OSError as exc:  # unreadable (permissions, I/O error): report, go on with the rest
                plan.problems.append(f"cannot read {f}: {exc.strerror or exc}")
    now = time.time()
    with transaction(db) as conn:
        known = {r[0]: r for r in conn.execute(
            "SELECT path, id, size, mtime, status, backbone_id, clip_seconds FROM videos")}
        for f, key, st in stats:
            row = known.get(key)
            if row is not None:
                _plan_known(conn, plan, f, st, row, clip_seconds, backbone_id, retry_errors)
            elif key in hashes:
                if _adopt_moved(conn, f, st, hashes[key]):
                    plan.moved += 1
                    continue
                cur = conn.execute(
                    "INSERT INTO videos(path, size, mtime, phash, status, added_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                    (key, st.st_size, st.st_mtime, hashes[key], now))
                plan.to_index.append((cur.lastrowid, f))
        plan.missing = _mark_missing(conn, roots)
    return plan


def _stat_files(files: list[Path], problems: list[str]) -> list[tuple[Path, str, os.stat_result]]:
    out = []
    for f in files:
        key = db_path(f)
        try:
            st = f.stat()
        except OSError:
            continue  # gone since it was found
        if key is None or not stat.S_ISREG(st.st_mode):
            problems.append(file_problem(f) or f"cannot index {f}")
            continue
        out.append((f, key, st))
    return out


def _plan_known(conn, plan: ScanPlan, f: Path, st: os.stat_result, row, clip_seconds: float, backbone_id: str,
                retry_errors: bool) -> None:
    _, vid, size, mtime, status, bb, cs = row
    same_file = size == st.st_size and abs(mtime - st.st_mtime) < 1e-3
    same_model = bb == backbone_id and cs is not None and abs(cs - clip_seconds) < 1e-6
    if same_file and status == "error" and not retry_errors:
        plan.failed_before += 1
    elif same_file and status == "done" and same_model:
        plan.unchanged += 1
    elif same_file and status == "missing" and same_model:
        conn.execute("UPDATE videos SET status='done' WHERE id=?", (vid,))  # it came back
        plan.unchanged += 1
    else:
        conn.execute("UPDATE videos SET size=?, mtime=?, status='pending', error=NULL WHERE id=?",
                     (st.st_size, st.st_mtime, vid))
        plan.to_index.append((vid, f))


def _adopt_moved(conn, f: Path, st: os.stat_result, ph: str) -> bool:
    """If a known video with this content lost its file, it moved here: keep its embeddings."""
    for vid, old_path in conn.execute("SELECT id, path FROM videos WHERE phash=? AND size=?", (ph, st.st_size)):
        if not Path(old_path).exists():
            conn.execute("UPDATE videos SET path=?, mtime=?, status=CASE WHEN status='missing' THEN 'done' "
                         "ELSE status END WHERE id=?", (str(f), st.st_mtime, vid))
            return True
    return False


def _mark_missing(conn, roots: list[Path]) -> int:
    n = 0
    for root in roots:
        if not root.is_dir():
            continue
        prefix = str(root).rstrip("/") + "/"
        for vid, path, status in conn.execute("SELECT id, path, status FROM videos WHERE substr(path, 1, ?) = ?",
                                              (len(prefix), prefix)).fetchall():
            if status != "missing" and not Path(path).exists():
                conn.execute("UPDATE videos SET status='missing' WHERE id=?", (vid,))
                n += 1
    return n
