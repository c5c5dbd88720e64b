"""Text search through the segments' HNSW index (big libraries) against the exact product over
every segment: the same hits, an index that follows the library and survives restarts."""

from __future__ import annotations

import sqlite3
import zlib

import numpy as np
import pytest

import engine.speech.segment_index as segment_index
import engine.speech.store as store
from engine.index.db import connect, transaction
from engine.speech.store import SegmentVectors, save_segments, transcript_hits
from engine.speech.transcribe import Segment

WORDS = ["budget", "harbour", "dog", "ball", "rain", "market", "drums", "fireworks", "snow", "beach", "night",
         "party", "baby", "car", "music", "river", "train", "bridge", "garden", "kitchen"]


def embed(texts: list[str]) -> np.ndarray:
    """Bag of words of fixed random word vectors: sentences sharing words are close (no model needed)."""
    out = np.zeros((len(texts), 384), np.float32)
    for row, text in enumerate(texts):
        for w in text.lower().split():
            out[row] += np.random.default_rng(zlib.crc32(w.encode())).standard_normal(384)
    return out


def add_video(conn, n: int, status: str = "done") -> int:
    video_id = int(conn.execute("INSERT INTO videos(path, size, mtime, phash, duration, status, has_audio) "
                                "VALUES (?, 1, 0, ?, 20, ?, 1)", (f"/v/{n}.mp4", f"p{n}", status)).lastrowid)
    conn.executemany("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                     [(video_id, i, 4.0 * i, 4.0 * i + 4) for i in range(5)])
    return video_id


def sentences(rng, n: int) -> list[Segment]:
    return [Segment("said", 4.0 * i, 4.0 * i + 3, " ".join(rng.choice(WORDS, 5)), [], -0.3, 0.05)
            for i in range(n)]


@pytest.fixture
def lib(tmp_path):
    db = connect(tmp_path / "library.db")
    rng = np.random.default_rng(0)
    with transaction(db) as conn:
        for n in range(60):
            save_segments(conn, add_video(conn, n), sentences(rng, 4), embed)
    reader = sqlite3.connect(str(tmp_path / "library.db"))
    yield db, reader, tmp_path / "ann"
    reader.close()
    db.conn.close()


@pytest.fixture
def indexed(monkeypatch):
    """Every table searched through its index, the background on every row (as exact)."""
    monkeypatch.setattr(store, "EXACT_MAX", 10)
    monkeypatch.setattr(segment_index, "EXACT_MAX", 10)
    monkeypatch.setattr(segment_index, "SAMPLE", 10**6)


def hits_of(reader, vectors, text: str):
    background: dict = {}
    hits = transcript_hits(reader, text, embed([text])[0], limit=30, background=background, vectors=vectors)
    return [(h.clip_id, round(h.score, 5), h.exact) for h in hits], background


QUERIES = ["budget dog", "rain on the harbour", "fireworks at night", "a baby in the kitchen", "zebra"]


def test_indexed_search_equals_the_exact_product(lib, indexed):
    _, reader, ann = lib
    exact, fast = SegmentVectors(), SegmentVectors(ann_dir=ann)
    for text in QUERIES:
        got, bg = hits_of(reader, fast, text)
        want, bg_exact = hits_of(reader, exact, text)
        assert got == want, text
        assert bg["mean"] == pytest.approx(bg_exact["mean"], abs=1e-6)
        assert bg["std"] == pytest.approx(bg_exact["std"], abs=1e-6)
    assert fast.segments is not None and exact.segments is None
    assert (ann / "_text" / "transcripts_384.json").exists()


def test_small_tables_stay_exact_without_files(lib):
    _, reader, ann = lib
    vectors = SegmentVectors(ann_dir=ann)
    hits_of(reader, vectors, "budget dog")
    assert vectors.segments is None and not (ann / "_text").exists()


def test_the_index_follows_additions_removals_and_unindexed_videos(lib, indexed):
    db, reader, ann = lib
    fast = SegmentVectors(ann_dir=ann)
    hits_of(reader, fast, "budget dog")
    rng = np.random.default_rng(1)
    with transaction(db) as conn:
        new = add_video(conn, 100)
        save_segments(conn, new, [Segment("said", 0, 3, "zebra zebra crossing", [], -0.3, 0.05)], embed)
        conn.execute("DELETE FROM videos WHERE id = 1")
        conn.execute("UPDATE videos SET status = 'missing' WHERE id = 2")
        save_segments(conn, 3, sentences(rng, 2), embed)  # re-transcribed: its rows get new ids
    for text in [*QUERIES, "zebra crossing"]:
        assert hits_of(reader, fast, text)[0] == hits_of(reader, SegmentVectors(), text)[0], text
    zebra = transcript_hits(reader, "zebra crossing", embed(["zebra crossing"])[0], vectors=fast)
    assert zebra[0].video_id == new and zebra[0].exact
    assert not {h.video_id for h in transcript_hits(reader, "budget", embed(["budget"])[0], vectors=fast)} & {1, 2}


def test_a_restart_loads_the_saved_index_and_a_damaged_one_is_rebuilt(lib, indexed, monkeypatch):
    _, reader, ann = lib
    want = hits_of(reader, SegmentVectors(ann_dir=ann), "budget dog")
    builds = []
    original = segment_index.SegmentIndex._build
    monkeypatch.setattr(segment_index.SegmentIndex, "_build",
                        lambda self, conn, ids: builds.append(len(ids)) or original(self, conn, ids))
    assert hits_of(reader, SegmentVectors(ann_dir=ann), "budget dog") == want
    assert builds == []                                   # loaded from its files, not rebuilt
    data = next((ann / "_text").glob("transcripts_384*.hnsw"))
    data.write_bytes(data.read_bytes()[:100])
    assert hits_of(reader, SegmentVectors(ann_dir=ann), "budget dog") == want
    assert builds == [240]


def test_each_row_keeps_its_clip_and_a_stale_one_is_worked_out_again(lib):
    db, reader, _ = lib
    stored = db.conn.execute("SELECT COUNT(*) FROM transcripts WHERE clip_id IS NULL").fetchone()[0]
    assert stored == 0
    row = db.conn.execute("SELECT t.start, c.start, c.end FROM transcripts t JOIN clips c ON c.id = t.clip_id "
                          "WHERE t.id = 7").fetchone()
    assert row[1] <= row[0] < row[2]
    with transaction(db) as conn:  # video 1 indexed again (speech off): new clips, its transcript kept
        conn.execute("DELETE FROM clips WHERE video_id = 1")
        conn.executemany("INSERT INTO clips(video_id, idx, start, end) VALUES (1, ?, ?, ?)",
                         [(i, 2.0 * i, 2.0 * i + 2) for i in range(10)])
    text = db.conn.execute("SELECT text FROM transcripts WHERE video_id = 1 ORDER BY start DESC").fetchone()[0]
    hit = next(h for h in transcript_hits(reader, text, embed([text])[0]) if h.video_id == 1)
    clip = db.conn.execute("SELECT video_id, start, end FROM clips WHERE id = ?", (hit.clip_id,)).fetchone()
    assert clip[0] == 1 and clip[1] <= hit.start < clip[2]


def test_a_job_that_wrote_segments_leaves_the_index_ready_for_the_first_search(lib, indexed, monkeypatch):
    from engine.speech.segment_index import refresh_indexes

    db, reader, ann = lib
    progress = list(refresh_indexes(db.conn, ann, 384))
    assert [p.stage for p in progress] == ["search index"] and "240 transcripts segments" in progress[0].message
    builds = []
    original = segment_index.SegmentIndex._build
    monkeypatch.setattr(segment_index.SegmentIndex, "_build",
                        lambda self, conn, ids: builds.append(len(ids)) or original(self, conn, ids))
    assert hits_of(reader, SegmentVectors(ann_dir=ann), "budget dog") == hits_of(reader, SegmentVectors(), "budget dog")
    assert builds == []  # the search loaded what the job saved
