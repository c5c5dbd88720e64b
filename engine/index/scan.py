"""Find video files and decide what needs indexing (rclip-style incremental scan).

- unchanged files (same path, size and mtime, already done or failed) are skipped;
- a file at a new path whose partial hash matches a known video that is gone from its old path is
  a move/rename: the row keeps its clips and embeddings, only its path changes;
- files under a scanned folder that no longer exist are marked 'missing' (hidden from results).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from engine.index.db import transaction
from engine.library import VIDEO_EXTENSIONS

HASH_BLOCK = 1 << 20  # 1 MiB from the start, the middle and the end


def partial_hash(path: Path) -> str:
    """sha1 of the size and three 1 MiB blocks: cheap on huge files, stable across moves."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, size // 2 - HASH_BLOCK // 2), max(0, size - HASH_BLOCK)}):
            f.seek(offset)
            h.update(f.read(HASH_BLOCK))
    return h.hexdigest()


def is_excluded(path: Path, patterns: list[str]) -> bool:
    s = str(path)
    return any(fnmatch.fnmatch(s, p) or fnmatch.fnmatch(path.name, p) for p in patterns)


def find_videos(paths: list[Path], excluded: list[str]) -> tuple[list[Path], list[str]]:
    """Video files under ``paths`` (files or folders), sorted; plus messages for bad inputs."""
    found: set[Path] = set()
    problems: list[str] = []
    for p in paths:
        p = p.expanduser().resolve()
        if p.is_file():
            if p.suffix.lower() in VIDEO_EXTENSIONS:
                found.add(p)
            else:
                problems.append(f"not a video file (by its extension): {p}")
        elif p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p, onerror=lambda e: problems.append(str(e))):
                dirnames[:] = [d for d in dirnames if not is_excluded(Path(dirpath) / d, excluded)]
                for name in filenames:
                    f = Path(dirpath) / name
                    if f.suffix.lower() in VIDEO_EXTENSIONS and not is_excluded(f, excluded):
                        found.add(f)
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
              backbone_id: str) -> ScanPlan:
    """Compare the files with the database; register new files as 'pending'. One transaction."""
    conn = db.conn
    plan = ScanPlan()
    known = {r[0]: r for r in conn.execute(
        "SELECT path, id, size, mtime, status, backbone_id, clip_seconds FROM videos")}
    now = time.time()
    with transaction(db) as conn:
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            row = known.get(str(f))
            if row is not None:
                _, vid, size, mtime, status, bb, cs = row
                same_file = size == st.st_size and abs(mtime - st.st_mtime) < 1e-3
                same_model = bb == backbone_id and cs is not None and abs(cs - clip_seconds) < 1e-6
                if same_file and status == "error":
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
                continue
            try:
                ph = partial_hash(f)
            except OSError as exc:  # unreadable (permissions, I/O error): report, go on with the rest
                plan.problems.append(f"cannot read {f}: {exc.strerror or exc}")
                continue
            if _adopt_moved(conn, f, st, ph):
                plan.moved += 1
                continue
            cur = conn.execute(
                "INSERT INTO videos(path, size, mtime, phash, status, added_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                (str(f), st.st_size, st.st_mtime, ph, now))
            plan.to_index.append((cur.lastrowid, f))
        plan.missing = _mark_missing(conn, roots)
    return plan


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
