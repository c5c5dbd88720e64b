"""Transcript rows in SQLite and search over them (semantic MiniLM match + exact FTS5 words)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.index.db import connect, transaction
from engine.speech.store import EXACT_BOOST, best_clip, content_words, save_segments, snippet, transcript_hits
from engine.speech.transcribe import Segment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embed():
    import torch

    from engine.models.text import TextBackbone

    backbone = TextBackbone(torch.device("cpu"))
    return backbone.features


def add_video(conn, path: str, duration: float, status: str = "done", clip_s: float = 4.0) -> int:
    cur = conn.execute("INSERT INTO videos(path, size, mtime, phash, duration, status, has_audio) "
                       "VALUES (?, 1, 0, ?, ?, ?, 1)", (path, path, duration, status))
    video_id = int(cur.lastrowid)
    starts = np.arange(0.0, duration, clip_s)
    rows = [(video_id, i, float(s), float(min(duration, s + clip_s))) for i, s in enumerate(starts)]
    conn.executemany("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)", rows)
    return video_id


BUDGET_SENTENCE = "Next year the budget will grow by ten percent."


def video_values(db, column: str, video_id: int):
    return db.conn.execute(f"SELECT {column} FROM videos WHERE id = ?", (video_id,)).fetchone()[0]


def transcript_texts(db, video_id: int) -> list[str]:
    rows = db.conn.execute("SELECT text FROM transcripts WHERE video_id = ? ORDER BY start", (video_id,))
    return [r[0] for r in rows]


def said(start: float, end: float, text: str) -> Segment:
    words = [(w, start, end, 0.9) for w in text.split()]
    return Segment("said", start, end, text, words, -0.3, 0.05)


@pytest.fixture
def db(tmp_path):
    lib_db = connect(tmp_path / "library.db")
    yield lib_db
    lib_db.conn.close()


@pytest.fixture
def library(db, embed):
    """Three videos with transcripts, one not finished indexing."""
    conn = db.conn
    with transaction(db):
        budget = add_video(conn, "/v/meeting.mp4", 20.0)
        dog = add_video(conn, "/v/park.mp4", 12.0)
        pending = add_video(conn, "/v/pending.mp4", 8.0, status="pending")
        save_segments(conn, budget, [said(1.0, 3.5, "Good morning everyone."),
                                     said(9.0, 14.0, BUDGET_SENTENCE)], embed)
        save_segments(conn, dog, [said(0.5, 4.0, "My dog loves chasing the red ball in the park."),
                                  Segment("heard", 4.0, 12.0, "dog barking")], embed)
        save_segments(conn, pending, [said(0.0, 3.0, "The budget is secret.")], embed)
    return {"budget": budget, "dog": dog, "pending": pending}


def query(db, embed, text: str, limit: int = 200):
    return transcript_hits(db.conn, text, embed([text])[0], limit)


def test_rows_are_stored_with_normalised_vectors_and_words(db, library):
    rows = db.conn.execute("SELECT kind, text, words, vec FROM transcripts WHERE video_id = ? ORDER BY start",
                           (library["budget"],)).fetchall()
    assert [r[0] for r in rows] == ["said", "said"]
    vec = np.frombuffer(rows[1][3], dtype=np.float32)
    assert vec.shape == (384,) and abs(np.linalg.norm(vec) - 1) < 1e-5
    words = json.loads(rows[1][2])
    assert words[0][0] == "Next" and len(words[0]) == 4
    assert video_values(db, "transcribed", library["budget"]) == 1


def test_saving_again_replaces_the_transcript(db, embed, library):
    with transaction(db) as conn:
        save_segments(conn, library["dog"], [said(0.0, 2.0, "A cat sleeps on the sofa.")], embed)
    assert transcript_texts(db, library["dog"]) == ["A cat sleeps on the sofa."]
    fts = db.conn.execute("SELECT rowid FROM transcripts_fts WHERE transcripts_fts MATCH 'ball'").fetchall()
    assert fts == []  # the FTS index followed the delete
    with transaction(db) as conn:
        save_segments(conn, library["dog"], [], embed)
    assert transcript_texts(db, library["dog"]) == []


def test_paraphrase_finds_what_was_said(db, embed, library):
    hits = query(db, embed, "talking about money plans for the coming year")
    assert hits[0].video_id == library["budget"] and hits[0].reason == "said"
    assert "budget" in hits[0].snippet
    assert (hits[0].start, hits[0].end) == (9.0, 14.0)


def test_exact_word_boosts_the_score(db, embed, library):
    hits = query(db, embed, "budget")
    best = hits[0]
    assert best.video_id == library["budget"] and "budget" in best.snippet
    cosine = float(embed([BUDGET_SENTENCE])[0] @ embed(["budget"])[0])
    assert best.score == pytest.approx(min(1.0, cosine + EXACT_BOOST), abs=1e-4)


def test_stemmed_words_match_sound_captions(db, embed, library):
    hits = query(db, embed, "barks")
    assert hits[0].video_id == library["dog"] and hits[0].reason == "heard"
    assert hits[0].snippet == "dog barking"


def test_hits_point_at_the_clip_overlapping_most(db, embed, library):
    hit = next(h for h in query(db, embed, "budget grow ten percent") if h.video_id == library["budget"])
    clip = db.conn.execute("SELECT start, end FROM clips WHERE id = ?", (hit.clip_id,)).fetchone()
    assert clip == (8.0, 12.0)  # segment 9-14 s: 3 s inside clip 8-12, 2 s inside clip 12-16


def test_only_finished_videos_are_searched(db, embed, library):
    hits = query(db, embed, "the budget is secret")
    assert library["pending"] not in {h.video_id for h in hits}


def test_unrelated_query_scores_low(db, embed, library):
    hits = query(db, embed, "volcano eruption lava")
    assert all(h.score < 0.3 for h in hits)


def test_scores_are_on_the_cosine_scale_and_sorted(db, embed, library):
    hits = query(db, embed, "dog")
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert len(query(db, embed, "dog", limit=1)) == 1


def test_best_clip_without_overlap_is_minus_one(db, library):
    assert best_clip(db.conn, library["dog"], 30.0, 31.0) == -1
    assert best_clip(db.conn, library["dog"], 5.0, 5.0) >= 0  # a point in time still has a clip


def test_content_words_drop_filler():
    assert content_words("Find the part where she says BUDGET, budget!") == ["budget"]
    assert content_words("a dog's bark") == ["dog's", "bark"]


def test_snippet_cuts_long_text_around_the_match():
    text = " ".join(f"w{i}" for i in range(60)) + " budget " + " ".join(f"x{i}" for i in range(60))
    cut = snippet(text, ["budget"])
    assert "budget" in cut and cut.startswith("…") and cut.endswith("…")
    assert len(cut.split()) <= 26
    assert snippet("short text", ["budget"]) == "short text"


def test_embed_may_return_a_torch_tensor(db, embed):
    import torch

    with transaction(db) as conn:
        video = add_video(conn, "/v/t.mp4", 4.0)
        save_segments(conn, video, [said(0.0, 2.0, "hello world")], lambda t: torch.from_numpy(embed(t)) * 3)
    vec = np.frombuffer(db.conn.execute("SELECT vec FROM transcripts").fetchone()[0], dtype=np.float32)
    assert abs(np.linalg.norm(vec) - 1) < 1e-5


def test_cached_segment_vectors_follow_the_library(db, embed):
    import sqlite3

    from engine.speech.store import SegmentVectors

    conn = db.conn  # the writer; searches read through a connection of their own, as the searcher does
    reader = sqlite3.connect(db.conn.execute("PRAGMA database_list").fetchone()[2])
    first = add_video(conn, "/v/a.mp4", 8.0)
    save_segments(conn, first, [said(0.0, 3.0, BUDGET_SENTENCE)], embed)
    cache = SegmentVectors()
    query = embed(["the budget grows"])[0]
    hits = transcript_hits(reader, "the budget grows", query, vectors=cache)
    assert [h.video_id for h in hits] == [first]
    assert transcript_hits(reader, "the budget grows", query, vectors=cache)[0].score == pytest.approx(hits[0].score)
    second = add_video(conn, "/v/b.mp4", 8.0)  # new transcripts: the cache reloads
    save_segments(conn, second, [said(0.0, 3.0, "The budget grows by ten percent next year.")], embed)
    assert {h.video_id for h in transcript_hits(reader, "the budget grows", query, vectors=cache)} == {first, second}
    conn.execute("UPDATE videos SET status = 'missing' WHERE id = ?", (first,))  # a file that went away
    assert [h.video_id for h in transcript_hits(reader, "the budget grows", query, vectors=cache)] == [second]
    reader.close()


@pytest.mark.parametrize("seed", range(4))
def test_top_stable_equals_a_full_stable_sort(seed):
    import numpy as np

    from engine.speech.store import top_stable

    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=5000), 1).astype(np.float32)  # many ties
    for limit in (1, 10, 300, 4999, 5000, 6000):
        assert np.array_equal(top_stable(scores, limit), np.argsort(-scores, kind="stable")[:limit])
    assert len(top_stable(scores[:0], 5)) == 0


def test_exact_coverage_counts_each_rows_matched_words(db, embed, library):
    from engine.speech.store import _exact_coverage

    conn = db.conn
    terms = ["dog", "budget", "morning", "zebra"]
    rows, fractions = _exact_coverage(conn, terms)
    want: dict[int, int] = {}
    for term in terms:  # the reference: one FTS row at a time
        for (row,) in conn.execute("SELECT rowid FROM transcripts_fts WHERE transcripts_fts MATCH ?", (term,)):
            want[row] = want.get(row, 0) + 1
    assert want and dict(zip(rows.tolist(), fractions.tolist())) == {r: n / 4 for r, n in want.items()}
    assert len(_exact_coverage(conn, ["zebra"])[0]) == 0 and len(_exact_coverage(conn, [])[0]) == 0


def test_segment_vectors_are_read_in_id_order_without_a_sort(db, library):
    from engine.speech.store import segment_vectors_sql

    plan = [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + segment_vectors_sql("transcripts"), (4 * 384,))]
    assert plan[0].startswith("SCAN t") and not any("TEMP B-TREE" in p for p in plan), plan
