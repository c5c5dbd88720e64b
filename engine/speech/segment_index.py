"""An HNSW index over a text table's segment vectors (transcripts, on-screen text) for big libraries.

A text query compares itself with every transcript segment. Up to ``EXACT_MAX`` segments that is
one matrix product on vectors held in memory (engine.speech.store.SegmentVectors); a million-clip
library has ~200,000 segments, and that product alone (300 MB of vectors read per query) took
~14 ms of a ~65 ms query. Above ``EXACT_MAX`` the top cosines come from an HNSW index instead,
and what else the search needs is made without touching every segment:

- the query's cosine mean and standard deviation over all segments (the null distribution the
  searcher standardises against) are estimated on a fixed uniform sample of ``SAMPLE`` segments
  (the standard error of the mean is ~1% of a standard deviation at 8,192);
- segments that contain the query's exact words get their cosine from their own stored vectors.

The index is a cache of SQLite, like the clip indexes (engine.index.ann): labels are row ids, which
schema 6 made never reused (AUTOINCREMENT), so an id always means one vector and the index is
brought in line by adding the ids it lacks and marking gone ones deleted. It is saved with the same
manifest/delta files (a small change writes a small delta), under ``<ann dir>/_text/``; a missing
or damaged file is rebuilt from SQLite with a warning.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.errors import LibraryError
from engine.index.ann import AnnIndex
from engine.jobs import Progress

log = logging.getLogger(__name__)

EXACT_MAX = 20_000   # segments searched by one product over all of them (exact, a few ms)
SAMPLE = 8192        # segments the background statistics are estimated on
TEXT_DIR = "_text"   # beside the models' index folders; never a model id (those have no leading '_')


def index_path(ann_dir: Path, table: str, dim: int) -> Path:
    return ann_dir / TEXT_DIR / f"{table}_{dim}.json"


def segment_ids(conn: sqlite3.Connection, table: str, dim: int) -> np.ndarray:
    """Ids of the rows holding a vector of this width, ascending (every video, done or not: the
    searcher drops rows of videos that are not indexed when it reads them)."""
    joined = conn.execute(f"SELECT group_concat(id) FROM (SELECT id FROM {table} WHERE length(vec) = ? "
                          "ORDER BY id)", (4 * dim,)).fetchone()[0]
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, np.int64)


def segment_vectors(conn: sqlite3.Connection, table: str, dim: int, ids: np.ndarray) -> np.ndarray:
    """[len(ids), dim] stored vectors of ``ids`` (in that order; ids without one are zero rows)."""
    out = np.zeros((len(ids), dim), np.float32)
    where = {int(i): n for n, i in enumerate(ids)}
    wanted = list(where)
    for s in range(0, len(wanted), 900):
        part = wanted[s:s + 900]
        for row_id, blob in conn.execute(f"SELECT id, vec FROM {table} WHERE length(vec) = ? AND id IN "
                                         f"({','.join('?' * len(part))})", (4 * dim, *part)):
            out[where[row_id]] = np.frombuffer(blob, np.float32)
    return out


class SegmentIndex:
    """The HNSW index of one table's segments plus the background sample, kept in line with SQLite
    by :meth:`sync` (called by the owner when the table changed)."""

    def __init__(self, ann_dir: Path, table: str, dim: int):
        self.path = index_path(ann_dir, table, dim)
        self.table, self.dim = table, dim
        self.index: AnnIndex | None = None
        self.sample = np.zeros((0, dim), np.float32)

    def sync(self, conn: sqlite3.Connection) -> None:
        """Load (or build) the index, add missing rows, mark gone ones deleted, save a delta."""
        want = segment_ids(conn, self.table, self.dim)
        if self.index is None:
            self._load()
        if self.index is None:
            self.index, changed = self._build(conn, want), True
        else:
            changed = self._follow(conn, want)
        if changed:
            self._save()
        if changed or len(self.sample) == 0:
            self.sample = self._draw_sample(conn, want)

    def _load(self) -> None:
        if self.path.exists():
            try:
                self.index = AnnIndex.load(self.path, self.dim)
            except LibraryError as exc:
                log.warning("rebuilding the %s index from the database: %s", self.table, exc)

    def _build(self, conn: sqlite3.Connection, ids: np.ndarray) -> AnnIndex:
        # Once per library (a minute or two per 100,000 segments on a laptop core): say so, a search waits.
        log.warning("building the search index of %d %s segments (once)", len(ids), self.table.replace("_", " "))
        index = AnnIndex(self.dim, capacity=max(1024, int(len(ids) * 1.3)))
        for s in range(0, len(ids), 20_000):  # bounded memory: a chunk of vectors at a time
            part = ids[s:s + 20_000]
            index.add(part, segment_vectors(conn, self.table, self.dim, part))
        return index

    def _follow(self, conn: sqlite3.Connection, want: np.ndarray) -> bool:
        have = self.index.ids()
        gone = np.setdiff1d(have, want, assume_unique=True)
        new = np.setdiff1d(want, have, assume_unique=True)
        self.index.remove(gone)
        if len(new):
            self.index.add(new, segment_vectors(conn, self.table, self.dim, new))
        return bool(len(gone) or len(new))

    def _save(self) -> None:
        try:
            self.index.save(self.path, gen=0, epoch=0)
        except (OSError, LibraryError) as exc:  # a full disk must not stop searches: memory is right
            log.warning("could not save the %s index: %s", self.table, exc)

    def _draw_sample(self, conn: sqlite3.Connection, ids: np.ndarray) -> np.ndarray:
        """Vectors of a uniform sample of the rows (all of them when fewer), the same rows for the
        same table contents (a fixed seed), so repeated queries get the same statistics."""
        if len(ids) > SAMPLE:
            ids = np.sort(np.random.default_rng(0).choice(ids, SAMPLE, replace=False))
        return segment_vectors(conn, self.table, self.dim, ids)

    def query(self, qvec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (row ids, cosines), best first."""
        return self.index.query(qvec, k) if self.index is not None else (np.zeros(0, np.int64),
                                                                        np.zeros(0, np.float32))


def refresh_indexes(conn: sqlite3.Connection, ann_dir: Path, dim: int) -> Iterator[Progress]:
    """Bring the text tables' indexes up to date at the end of a job that wrote segments, so that
    the first search after a library passed ``EXACT_MAX`` segments does not wait for the build
    (~70 s at 200,000 segments) and later ones load a saved index with a small delta."""
    for table in ("transcripts", "screen_text"):
        n = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        if n > EXACT_MAX:
            yield Progress("search index", message=f"updating the search index of {n} {table.replace('_', ' ')} "
                                                   "segments")
            SegmentIndex(ann_dir, table, dim).sync(conn)
