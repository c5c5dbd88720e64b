"""On-screen text ("read"): span building, the frame gates, the store, and end to end on generated
videos with rendered text (the slow tests run the real OCR engine)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.index.db import connect, transaction
from engine.ocr.extract import ScreenText, same_text, sample_times, spans_from_observations
from engine.ocr.gate import FrameMemory, thumbnail
from engine.ocr.reader import TextLine, plausible
from engine.ocr.store import save_screen_text, screen_text_hits, unread_videos
from engine.ocr.words import split_token
from tests.text_frames import TextEvent, TextStyle, background, draw_text, make_text_video

WINDOWS = [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)]


def line(text: str, conf: float = 0.9) -> list[TextLine]:
    return [TextLine(text, conf, (0, 0, 10, 10))]


# ---- spans -------------------------------------------------------------------------------------
def test_a_run_of_frames_becomes_one_span_per_clip_covering_the_gaps_around_it():
    times = sample_times(WINDOWS, 2)
    assert times == [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    # text seen at 3, 5 and 7 (on screen somewhere in (1, 9)): one row in clip 0, one in clip 1
    observed = [(1.0, []), (3.0, line("SALE TODAY")), (5.0, line("SALE TODAY", 0.95)), (7.0, line("SALF TODAY", 0.7)),
                (9.0, []), (11.0, [])]
    spans = spans_from_observations(observed, WINDOWS)
    assert [(s.start, s.end, s.text, s.frames) for s in spans] == [(1.0, 4.0, "SALE TODAY", 1),
                                                                   (4.0, 9.0, "SALE TODAY", 2)]
    assert spans[1].confidence == pytest.approx((0.95 + 0.7) / 2)


def test_different_texts_make_different_spans_and_edges_reach_the_video_ends():
    observed = [(1.0, line("first title")), (3.0, line("first title")), (5.0, line("something else")),
                (7.0, []), (9.0, line("the end")), (11.0, line("the end"))]
    spans = spans_from_observations(observed, WINDOWS)
    assert [(s.start, s.end, s.text) for s in spans] == [
        (0.0, 5.0, "first title"), (3.0, 7.0, "something else"), (7.0, 12.0, "the end")]


def test_nearly_equal_readings_are_one_text():
    assert same_text("HARBOUR FESTIVAL", "HARBOUR FESTIVA")
    assert not same_text("ROVERS 2 UNITED 1", "budget summary")


def test_implausible_lines_are_dropped():
    assert plausible("Exit 12", 0.9)
    assert not plausible("O", 0.99)       # a round shape read as a letter
    assert not plausible("·", 0.9)
    assert not plausible("Exit", 0.3)     # unsure


def test_run_together_words_are_split_into_known_words():
    words = frozenset({"harbour", "festival", "final", "score", "lemon"})
    assert split_token("HARBOURFESTIVAL", words) == ["harbour", "festival"]
    assert split_token("finalscore", words) == ["final", "score"]
    assert split_token("lemonade", words) is None        # "ade" is no word: left alone
    assert split_token("festival", words) is None        # a word already


# ---- gates -------------------------------------------------------------------------------------
def test_a_word_appearing_on_a_still_picture_is_a_change_but_noise_is_not():
    still = cv2.cvtColor(background((640, 360), 1.0, seed=3), cv2.COLOR_RGB2BGR)
    memory = FrameMemory()
    memory.remember(thumbnail(still))
    noisy = np.clip(still.astype(np.int16) + np.random.default_rng(0).integers(-4, 5, still.shape), 0, 255)
    assert memory.same_as_last(thumbnail(noisy.astype(np.uint8)))
    titled = draw_text(still.copy(), "museum", TextStyle(scale=1.0, thickness=2, position=(0.4, 0.5)))
    assert not memory.same_as_last(thumbnail(titled))


# ---- store -------------------------------------------------------------------------------------
@pytest.fixture()
def db(tmp_path):
    database = connect(tmp_path / "library.db")
    conn = database.conn
    conn.execute("INSERT INTO videos(id, path, size, mtime, phash, status, duration, indexed_at) "
                 "VALUES (1, '/v/a.mp4', 1, 1, 'h', 'done', 12, 1), (2, '/v/b.mp4', 1, 1, 'g', 'done', 12, 1)")
    conn.executemany("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                     [(v, i, s, e) for v in (1, 2) for i, (s, e) in enumerate(WINDOWS)])
    return database


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_stored_text_is_found_by_exact_word_and_the_video_is_marked_read(db):
    conn: sqlite3.Connection = db.conn
    assert [r[0] for r in unread_videos(conn)] == [1, 2]
    spans = [ScreenText(4.0, 9.0, "HARBOURFESTIVAL | tickets", 0.9, 2, unit([1, 0, 0])),
             ScreenText(0.0, 4.0, "Quarterly budget", 0.8, 1, unit([0, 1, 0]))]
    with transaction(db) as c:
        save_screen_text(c, 1, spans)
        save_screen_text(c, 2, [])
    assert unread_videos(conn) == []
    hits = screen_text_hits(conn, "harbour festival", unit([0, 0, 1]))
    assert hits[0].reason == "read" and hits[0].exact and hits[0].video_id == 1
    assert (hits[0].start, hits[0].end) == (4.0, 9.0)
    assert hits[0].clip_id == conn.execute("SELECT id FROM clips WHERE video_id = 1 AND idx = 1").fetchone()[0]
    assert "HARBOURFESTIVAL" in hits[0].snippet
    budget = screen_text_hits(conn, "budget", unit([0, 0, 1]))
    assert [h.start for h in budget] == [0.0]


def test_meaning_finds_text_without_shared_words(db):
    with transaction(db) as c:
        save_screen_text(c, 1, [ScreenText(0.0, 4.0, "Exit 12", 0.9, 1, unit([1, 0.1, 0])),
                                ScreenText(4.0, 8.0, "Menu", 0.9, 1, unit([0, 1, 0]))])
    hits = screen_text_hits(db.conn, "motorway junction", unit([1, 0, 0]))
    assert hits[0].snippet == "Exit 12" and not hits[0].exact


def test_reindexed_videos_are_read_again(db):
    with transaction(db) as c:
        save_screen_text(c, 1, [])
    assert [r[0] for r in unread_videos(db.conn)] == [2]
    db.conn.execute("UPDATE videos SET indexed_at = 1e12 WHERE id = 1")  # the file changed since
    assert [r[0] for r in unread_videos(db.conn)] == [1, 2]


# ---- end to end (real OCR engine, real models) -------------------------------------------------
EVENTS = [
    TextEvent(4.0, 10.0, "HARBOUR FESTIVAL", TextStyle(font=cv2.FONT_HERSHEY_DUPLEX, scale=1.6, colour=(255, 230, 0),
                                                       position=(0.1, 0.3), box=True)),
    TextEvent(13.0, 17.0, "quarterly budget", TextStyle(font=cv2.FONT_HERSHEY_SIMPLEX, scale=1.0,
                                                        colour=(255, 255, 255), position=(0.3, 0.8))),
    TextEvent(21.0, 24.0, "Museum Garden", TextStyle(font=cv2.FONT_HERSHEY_TRIPLEX, scale=1.3, colour=(20, 20, 20),
                                                      position=(0.5, 0.55))),
]


@pytest.fixture(scope="module")
def text_library(tmp_path_factory):
    from engine.api import Library

    root = tmp_path_factory.mktemp("ocr-videos")
    make_text_video(root / "titles.mp4", EVENTS, 26.0, seed=1)
    make_text_video(root / "plain.mp4", [], 12.0, seed=2)
    lib = Library(tmp_path_factory.mktemp("ocr-lib"), device="cpu")
    stages = [p.stage for p in lib.index([root], transcribe=False, read_text=False)]
    assert "read" not in stages and stages[-1] == "done"
    yield lib, root
    lib.close()


@pytest.mark.slow
def test_index_catches_up_on_text_without_re_embedding(text_library):
    lib, root = text_library
    before = lib.db.conn.execute("SELECT clip_id, model_id, space, modality, vec FROM embeddings "
                                 "ORDER BY 1, 2, 3, 4").fetchall()
    assert len(unread_videos(lib.db.conn)) == 2
    progress = list(lib.index([root], transcribe=False, read_text=True))
    reads = [p for p in progress if p.stage == "read"]
    assert reads and reads[-1].done == pytest.approx(reads[-1].total) and progress[-1].stage == "done"
    assert unread_videos(lib.db.conn) == []
    after = lib.db.conn.execute("SELECT clip_id, model_id, space, modality, vec FROM embeddings "
                                "ORDER BY 1, 2, 3, 4").fetchall()
    assert after == before   # nothing re-embedded
    plain = lib.db.conn.execute("SELECT COUNT(*) FROM screen_text s JOIN videos v ON v.id = s.video_id "
                                "WHERE v.path LIKE '%plain.mp4'").fetchone()[0]
    assert plain == 0        # no text read where there is none


@pytest.mark.slow
@pytest.mark.parametrize("query, event", [("harbour festival", 0), ("quarterly budget", 1), ("museum garden", 2)])
def test_words_on_screen_find_the_moment_with_reason_read(text_library, query, event):
    lib, _ = text_library
    if unread_videos(lib.db.conn):
        list(lib.index([text_library[1]], transcribe=False, read_text=True))
    top = lib.search_text(query, top_k=5).moments[0]
    ev = EVENTS[event]
    assert Path(top.path).name == "titles.mp4"
    assert "read" in top.reasons and top.read_text
    assert top.start <= ev.start and top.end >= ev.end   # covers the whole time the text is on screen
    assert top.end - top.start <= (ev.end - ev.start) + 8.0   # ... and is a moment, not the whole video
    assert top.to_json()["read_text"] == top.read_text


# ---- the catch-up stage, with a stand-in reader (no models) ------------------------------------
class StubReader:
    """Reads 'HELLO WORLD' on every frame; counts the frames it was given (the generated
    background moves, so no frame is skipped as a duplicate)."""

    def __init__(self) -> None:
        self.frames = 0

    def read(self, frame_bgr: np.ndarray) -> list[TextLine]:
        self.frames += 1
        assert frame_bgr.ndim == 3 and max(frame_bgr.shape[:2]) <= 640
        return [TextLine("HELLO WORLD", 0.9, (0, 0, 10, 10))]


def test_catch_up_reads_every_unread_video_once_and_resumes_after_cancel(db, tmp_path):
    from types import SimpleNamespace

    from engine.errors import Cancelled
    from engine.jobs import CancelToken
    from engine.library import Settings
    from engine.ocr.catchup import read_library

    for vid, name in ((1, "a.mp4"), (2, "b.mp4")):
        path = make_text_video(tmp_path / name, [], 12.0, size=(320, 180), fps=5, seed=vid)
        db.conn.execute("UPDATE videos SET path = ? WHERE id = ?", (str(path), vid))
    lib = SimpleNamespace(db=db, settings=Settings())
    embed = lambda texts: np.ones((len(texts), 3), np.float32)
    token, reader = CancelToken(), StubReader()
    progress = []
    with pytest.raises(Cancelled):
        for p in read_library(lib, token, reader=reader, embed=embed):
            progress.append(p)
            if p.done > 0:
                token.cancel()   # after the first video: it is kept, the second stays unread
    assert [r[0] for r in unread_videos(db.conn)] == [2]
    progress = list(read_library(lib, CancelToken(), reader=reader, embed=embed))
    assert progress[-1].stage == "read" and progress[-1].done == pytest.approx(12.0)
    assert unread_videos(db.conn) == [] and list(read_library(lib, CancelToken(), reader=reader, embed=embed)) == []
    rows = db.conn.execute("SELECT video_id, start, end, text FROM screen_text ORDER BY video_id, start").fetchall()
    # the same text all along: one row per clip, together covering each whole video
    assert rows == [(v, s, e, "HELLO WORLD") for v in (1, 2) for s, e in WINDOWS]
    assert reader.frames == 2 * 2 * len(WINDOWS)   # 2 frames per clip, each video read once


@pytest.mark.slow
def test_cli_json_says_read_and_gives_the_words(text_library, capsys):
    import json

    from engine.cli import main

    lib, root = text_library
    assert main(["--library", str(lib.paths.root), "--device", "cpu", "index", str(root), "--no-transcribe",
                 "--read-text"]) == 0
    capsys.readouterr()
    assert main(["--library", str(lib.paths.root), "--device", "cpu", "search", "--text", "museum garden",
                 "--json", "--top", "1"]) == 0
    top = json.loads(capsys.readouterr().out.splitlines()[0])
    assert top["path"].endswith("titles.mp4") and "read" in top["reasons"]
    assert "museum" in top["read_text"].lower()
