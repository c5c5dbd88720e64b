"""Transcript rows in the library database, and search over them.

Fusion rule of :func:`transcript_hits` (scores stay on the cosine scale, so the searcher can
fuse them with visual hits):

    score = min(1, cosine(query_vec, segment_vec) + EXACT_BOOST * coverage)

where ``coverage`` is the fraction of the query's content words (stop words removed) that the
segment contains according to FTS5 (porter stemming: "barking" matches "bark"). A segment that
says every query word gains ``EXACT_BOOST``; one that only paraphrases the query keeps its cosine.
Segments with no exact word and a cosine under ``MIN_COSINE`` are dropped as noise.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.hits import ClipHit
from engine.speech.segment_index import EXACT_MAX, SegmentIndex, segment_vectors
from engine.speech.transcribe import Segment

EXACT_BOOST = 0.25
MIN_COSINE = 0.2
EXTRA_MAX = 1000  # rows with exact words compared beyond the index's nearest (big libraries), most words first
SNIPPET_WORDS = 24
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP_WORD_TEXT = (
    "a an the and or of to in on at for with by from is are was were be been it its this that these those "
    "i you he she we they me my your his her our their what where when who how which find show "
    "part moment video clip scene someone something says said say talking about")
_STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


# ---- writing ------------------------------------------------------------------------------------
def save_segments(conn: sqlite3.Connection, video_id: int, segments: list[Segment],
                  embed: Callable[[list[str]], np.ndarray]) -> None:
    """Replace the transcript of ``video_id`` and mark the video transcribed.

    Runs inside the caller's transaction (no BEGIN/COMMIT here), so a video's clips, vectors and
    transcript land together or not at all.
    """
    conn.execute("DELETE FROM transcripts WHERE video_id = ?", (video_id,))
    if segments:
        vecs = _normalised(embed([s.text for s in segments]), len(segments))
        conn.executemany(
            "INSERT INTO transcripts(video_id, kind, start, end, text, words, avg_logprob, no_speech_prob,"
            " vec) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(video_id, s.kind, float(s.start), float(s.end), s.text,
              json.dumps([[w[0], float(w[1]), float(w[2]), float(w[3])] for w in s.words]),
              float(s.avg_logprob), float(s.no_speech_prob), vec.tobytes())
             for s, vec in zip(segments, vecs)])
        assign_clips(conn, "transcripts", video_id)
    conn.execute("UPDATE videos SET transcribed = 1 WHERE id = ?", (video_id,))


def assign_clips(conn: sqlite3.Connection, table: str, video_id: int | None = None) -> None:
    """Store with each row (of one video, or all) the clip it overlaps most, so a search reads it
    instead of working it out per query (~5 ms for 300 rows at a million clips). Clips written
    later get new ids (never reused), so a stale one is seen at search time and worked out again."""
    where, args = ("WHERE video_id = ?", (video_id,)) if video_id is not None else ("", ())
    rows = conn.execute(f"SELECT id, video_id, start, end FROM {_checked_table(table)} {where}", args).fetchall()
    for s in range(0, len(rows), 2000):  # SQLite's limit on bound values per statement
        best = _best_clips(conn, rows[s:s + 2000])
        conn.executemany(f"UPDATE {table} SET clip_id = ? WHERE id = ?", [(c, k) for k, c in best.items()])


def _normalised(features, n: int) -> np.ndarray:
    if hasattr(features, "detach"):  # a torch tensor from the text tower
        features = features.detach().cpu().float().numpy()
    vecs = np.asarray(features, dtype=np.float32).reshape(n, -1)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)


# ---- searching ----------------------------------------------------------------------------------
SEARCHABLE_TABLES = frozenset({"transcripts", "screen_text"})  # same columns: id video_id kind start end text vec


def _checked_table(table: str) -> str:
    if table not in SEARCHABLE_TABLES:
        raise ValueError(f"not a searchable text table: {table}")
    return table


class SegmentVectors:
    """What a text query is compared with, kept between queries: the segments' vectors in memory
    (one matrix product per query instead of reading every vector from SQLite), or, given
    ``ann_dir`` and more than ``EXACT_MAX`` segments, their HNSW index
    (engine.speech.segment_index). Reloaded only when the table or the set of indexed videos
    changed. Use it with a read-only connection (the searcher's): changes are noticed through
    commits made by *other* connections."""

    def __init__(self, table: str = "transcripts", ann_dir: Path | None = None) -> None:
        self.table = _checked_table(table)
        self.ann_dir = ann_dir
        self.segments: SegmentIndex | None = None
        self._key: tuple | None = None
        self._version: tuple | None = None
        self.ids = np.zeros(0, np.int64)
        self.matrix = np.zeros((0, 0), np.float32)
        self.hidden = np.zeros(0, np.int64)  # indexed mode: rows in the index whose video is not done
        self.count = 0

    def get(self, conn: sqlite3.Connection, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(row ids [S], vectors [S, dim]) of segments of videos that are done (empty when the
        table is searched through its index)."""
        self._refresh(conn, dim)
        return self.ids, self.matrix

    def _refresh(self, conn: sqlite3.Connection, dim: int) -> None:
        # data_version moves only when another connection commits: between commits a query costs
        # no table scan at all. After a commit, cheap aggregates tell whether these rows changed.
        version = (conn.execute("PRAGMA data_version").fetchone()[0], dim)
        if version == self._version:
            return
        key = (conn.execute(f"SELECT COUNT(*), MAX(id), SUM(id) FROM {self.table}").fetchone(),
               conn.execute("SELECT COUNT(*), SUM(id) FROM videos WHERE status = 'done'").fetchone(), dim)
        if key != self._key:
            if self.ann_dir is not None and key[0][0] > EXACT_MAX:
                if self.segments is None or self.segments.dim != dim:
                    self.segments = SegmentIndex(self.ann_dir, self.table, dim)
                self.segments.sync(conn)
                self.ids, self.matrix = np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
                self.hidden = _rows_of_unindexed_videos(conn, self.table)
                self.count = key[0][0]
            else:
                self.segments = None
                self.ids, self.matrix = _load_segment_vectors(conn, dim, self.table)
                self.count = len(self.ids)
            self._key = key
        self._version = version

    def cosines(self, conn: sqlite3.Connection, qvec: np.ndarray, limit: int,
                coverage: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row ids ascending, their cosines to ``qvec``, the query's cosines over the background)
        for the rows that can rank: every row when searched exactly; else the index's ``limit``
        nearest plus the rows with exact words (``coverage``: at most ``EXTRA_MAX``, most words
        first), against a sample."""
        self._refresh(conn, qvec.shape[0])
        if self.segments is None:
            cosines = self.matrix @ qvec
            return self.ids, cosines, cosines
        top, top_cos = self.segments.query(qvec, limit + min(len(self.hidden), limit))
        if len(self.hidden):
            shown = ~np.isin(top, self.hidden)
            top, top_cos = top[shown][:limit], top_cos[shown][:limit]
        extra = np.setdiff1d(self._most_covered(coverage), top)
        ids = np.concatenate([top, extra])
        cosines = np.concatenate([top_cos, segment_vectors(conn, self.table, qvec.shape[0], extra) @ qvec])
        order = np.argsort(ids)
        return ids[order], cosines[order].astype(np.float32), self.segments.sample @ qvec

    def _most_covered(self, coverage: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Up to EXTRA_MAX rows with exact words, of indexed videos, most query words first (ties
        by id): their vectors are read from SQLite, ~10 us a row."""
        rows, fractions = coverage
        if len(self.hidden):
            keep = ~np.isin(rows, self.hidden)
            rows, fractions = rows[keep], fractions[keep]
        if len(rows) <= EXTRA_MAX:
            return rows
        return rows[np.argsort(-fractions, kind="stable")[:EXTRA_MAX]]


def _rows_of_unindexed_videos(conn: sqlite3.Connection, table: str) -> np.ndarray:
    """Ids of rows whose video is not indexed (pending, failed, missing): few, read by video."""
    joined = conn.execute(f"SELECT group_concat(t.id) FROM videos v JOIN {table} t ON t.video_id = v.id "
                          "WHERE v.status != 'done'").fetchone()[0]
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, np.int64)


def segment_vectors_sql(table: str) -> str:
    """Every searchable row's (id, vector) in id order. CROSS JOIN fixes the order (rows by id, then
    their video by key): left to itself SQLite went through the videos' status index and sorted
    every row in a temporary tree, three times slower at 200,000 rows (1.0 s against 0.35 s)."""
    return (f"SELECT t.id, t.vec FROM {_checked_table(table)} t CROSS JOIN videos v ON v.id = t.video_id "
            "WHERE v.status = 'done' AND t.vec IS NOT NULL AND length(t.vec) = ? ORDER BY t.id")


def _load_segment_vectors(conn: sqlite3.Connection, dim: int, table: str) -> tuple[np.ndarray, np.ndarray]:
    ids, parts = [], []
    rows = conn.execute(segment_vectors_sql(table), (4 * dim,))
    while batch := rows.fetchmany(4096):  # vectors of another text model (other width) are skipped
        ids += [r[0] for r in batch]
        parts.append(np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32).reshape(len(batch), dim))
    matrix = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return np.asarray(ids, np.int64), matrix


def transcript_hits(conn: sqlite3.Connection, query_text: str, query_vec: np.ndarray,
                    limit: int = 200, background: dict | None = None,
                    vectors: SegmentVectors | None = None, table: str = "transcripts") -> list[ClipHit]:
    """Transcript segments matching a text query, best first, as clip hits ("said" / "heard").

    ``table``: another table of the same columns searched the same way (``screen_text``: "read").

    ``background``, when given, receives the mean and standard deviation of the query's cosine
    over *all* segments (``mean``, ``std``, ``n``): the null distribution that the searcher uses to
    put these hits on the same scale as its other channels. ``vectors``: a cache kept by the
    caller between queries (one is made for this query when absent); it decides whether every
    segment is compared or only those its HNSW index and the exact words bring (big libraries).
    """
    qvec = _normalised(query_vec, 1)[0]
    terms = content_words(query_text)
    coverage = _exact_coverage(conn, terms, table)
    vectors = vectors or SegmentVectors(table)
    ids, cosines, null = vectors.cosines(conn, qvec, limit, coverage)
    bonus = _coverage_vector(coverage, ids)
    keep = np.flatnonzero((bonus > 0) | (cosines >= MIN_COSINE))
    scores = np.minimum(1.0, cosines[keep] + EXACT_BOOST * bonus[keep])
    ranked = top_stable(scores, limit)
    order, final = keep[ranked], scores[ranked]
    if background is not None and len(null):
        background.update(mean=float(null.mean()), std=float(null.std()), n=vectors.count)
    return _to_hits(conn, ids[order], final, terms, bonus[order] >= 1.0, table)


def top_stable(scores: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` highest scores, best first, ties in position order: the same as
    ``np.argsort(-scores, kind="stable")[:limit]`` without sorting every row (a common word can
    keep tens of thousands of a big library's rows)."""
    if limit <= 0:
        return np.zeros(0, np.int64)
    if len(scores) <= limit:
        return np.argsort(-scores, kind="stable")
    cut = -np.partition(-scores, limit - 1)[limit - 1]     # the limit-th best score
    near = np.flatnonzero(scores >= cut)                     # every row that can rank, ties included
    return near[np.argsort(-scores[near], kind="stable")][:limit]


def _coverage_vector(coverage: tuple[np.ndarray, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """``coverage`` (row ids, fractions) as a vector aligned with ``ids`` (sorted ascending), zeros elsewhere."""
    rows, fractions = coverage
    bonus = np.zeros(len(ids), np.float32)
    if len(rows) and len(ids):
        pos = np.minimum(np.searchsorted(ids, rows), len(ids) - 1)
        found = ids[pos] == rows
        bonus[pos[found]] = fractions[found]
    return bonus


def content_words(text: str) -> list[str]:
    """Lower-cased query words worth matching exactly (stop words dropped, order kept, unique)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]
    return list(dict.fromkeys(words))


def _exact_coverage(conn: sqlite3.Connection, terms: list[str],
                    table: str = "transcripts") -> tuple[np.ndarray, np.ndarray]:
    """(row ids, fraction of ``terms`` found in each row) by FTS5 (stemmed, case-insensitive).

    Counted with NumPy: a common word ("music" in sound captions) matches a large share of a big
    library's rows, and a dict update per matching row cost more than the rest of the query."""
    if not terms:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    fts = _checked_table(table) + "_fts"
    found = [_fts_rows(conn, fts, term) for term in terms]
    rows, counts = np.unique(np.concatenate(found), return_counts=True)
    return rows, (counts / len(terms)).astype(np.float32)


def _fts_rows(conn: sqlite3.Connection, fts: str, term: str) -> np.ndarray:
    """Row ids whose text contains ``term``, as one comma-joined string parsed by NumPy: 50,000
    matching rows cost 55 ms as Python tuples and 5 ms this way."""
    joined = conn.execute(f"SELECT group_concat(rowid) FROM {fts} WHERE {fts} MATCH ?",
                          ('"' + term.replace('"', '""') + '"',)).fetchone()[0]
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, np.int64)


def _to_hits(conn: sqlite3.Connection, row_ids: np.ndarray, scores: np.ndarray, terms: list[str],
             exact: np.ndarray, table: str = "transcripts") -> list[ClipHit]:
    """Hits for transcript rows, each tied to the clip it overlaps most (stored with the row; worked
    out here when that clip is gone or was never stored). ``exact``: per row, whether it contains
    every query word."""
    if not len(row_ids):
        return []
    ids = [int(i) for i in row_ids]
    rows = {r[0]: r[1:] for r in conn.execute(  # rows of videos not (or no longer) indexed are dropped
        f"SELECT t.id, t.video_id, t.kind, t.start, t.end, t.text, c.id FROM {_checked_table(table)} t "
        "CROSS JOIN videos v ON v.id = t.video_id LEFT JOIN clips c ON c.id = t.clip_id AND c.video_id = t.video_id "
        f"WHERE v.status = 'done' AND t.id IN ({','.join('?' * len(ids))})", ids)}
    best = {row_id: r[5] for row_id, r in rows.items() if r[5] is not None}  # stored with the row
    best |= _best_clips(conn, [(row_id, r[0], r[2], r[3]) for row_id, r in rows.items() if r[5] is None])
    hits = []
    for row_id, score, all_words in zip(ids, scores, exact):
        if row_id not in rows:
            continue
        video_id, kind, start, end, text, _ = rows[row_id]
        hits.append(ClipHit(clip_id=best.get(row_id, -1), video_id=video_id, start=start, end=end,
                            score=float(score), reason=kind, snippet=snippet(text, terms),
                            exact=bool(all_words)))
    return hits


def _best_clips(conn: sqlite3.Connection, spans: list[tuple[int, int, float, float]]) -> dict[int, int]:
    """key -> id of the clip overlapping (key, video_id, start, end) the most, the earliest on ties;
    spans that no clip overlaps are absent. A zero-length span (a point in time) still falls in the
    clip around it. One query for all spans."""
    if not spans:
        return {}
    values = ",".join("(?, ?, ?, ?)" for _ in spans)
    best: dict[int, int] = {}
    for key, clip_id in conn.execute(
        f"WITH s(k, video_id, start, end) AS (VALUES {values}) "
        "SELECT s.k, c.id FROM s JOIN clips c ON c.video_id = s.video_id "
        "AND c.start < MAX(s.end, s.start + 0.001) AND c.end > s.start "
        "ORDER BY s.k, (MIN(c.end, s.end) - MAX(c.start, s.start)) DESC, c.start",
        [v for span in spans for v in span],
    ):
        best.setdefault(key, clip_id)  # rows come best first per span
    return best


def best_clip(conn: sqlite3.Connection, video_id: int, start: float, end: float) -> int:
    """Id of the clip overlapping [start, end] the most; -1 when no clip overlaps it."""
    return _best_clips(conn, [(0, video_id, start, end)]).get(0, -1)


def snippet(text: str, terms: list[str], max_words: int = SNIPPET_WORDS) -> str:
    """The segment's words, cut to ``max_words`` around the first exact match when it is long."""
    words = text.split()
    if len(words) <= max_words:
        return text
    stems = [t[:4] for t in terms]
    first = next((i for i, w in enumerate(words) if any(w.lower().startswith(s) for s in stems)), 0)
    lo = max(0, min(first - max_words // 3, len(words) - max_words))
    cut = " ".join(words[lo:lo + max_words])
    return ("… " if lo > 0 else "") + cut + (" …" if lo + max_words < len(words) else "")
