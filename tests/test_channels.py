"""The channel registry and the searcher's plumbing, without models: channels are parts."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.hits import ClipHit
from engine.search import searcher as searcher_mod
from engine.search.channels import CHANNELS, Channel
from engine.search.fusion import COMBINE, fuse
from engine.search.query import Query


class _Fixed:
    """A channel that answers every query kind with the hits it was given."""

    def __init__(self, reason: str, hits: list[ClipHit], own_thread: bool = False):
        self.reason, self._hits, self.own_thread = reason, hits, own_thread
        self.threads: list[str] = []

    def hits(self, sources, query: Query) -> list[ClipHit]:
        self.threads.append(threading.current_thread().name)
        return [ClipHit(h.clip_id, h.video_id, h.start, h.end, h.score, self.reason) for h in self._hits]


def _searcher() -> searcher_mod.Searcher:
    s = object.__new__(searcher_mod.Searcher)
    s.sources = s.text_sources = None
    s._beside = ThreadPoolExecutor(max_workers=1)
    return s


def test_text_table_channels_run_beside_the_others_and_keep_the_registry_order(monkeypatch):
    said = _Fixed("said", [ClipHit(3, 1, 0.0, 2.0, 0.9, "")], own_thread=True)
    seen = _Fixed("seen", [ClipHit(4, 1, 2.0, 4.0, 0.8, "")])
    monkeypatch.setattr(searcher_mod, "CHANNELS", [said, seen])
    assert [h.reason for h in _searcher().hits(Query("text", {}, text="x"))] == ["said", "seen"]
    assert seen.threads == [threading.current_thread().name] and said.threads != seen.threads
    assert [c.own_thread for c in CHANNELS] == [False, False, True, True]  # the text tables' channels


def test_registry_holds_the_channels_in_fusion_order():
    assert [c.reason for c in CHANNELS] == ["seen", "heard", "said", "read"]
    assert all(isinstance(c.reason, str) and callable(c.hits) for c in CHANNELS)


def test_a_new_channel_is_one_registry_line(monkeypatch):
    read: Channel = _Fixed("read", [ClipHit(7, 1, 0.0, 2.0, 0.9, "")])
    monkeypatch.setattr(searcher_mod, "CHANNELS", [read])
    hits = _searcher().hits(Query("text", {}, text="exit"))
    assert [(h.clip_id, h.reason) for h in hits] == [(7, "read")]


def test_spoken_words_are_searched_too_and_like_drops_its_own_clip(monkeypatch):
    a = _Fixed("seen", [ClipHit(1, 1, 0.0, 2.0, 0.5, ""), ClipHit(2, 1, 2.0, 4.0, 0.4, "")])
    monkeypatch.setattr(searcher_mod, "CHANNELS", [a])
    spoken = Query("text", {}, text="hello")
    assert len(_searcher().hits(Query("audio", {}, spoken=spoken))) == 4
    assert [h.clip_id for h in _searcher().hits(Query("like", {}, exclude_clip=1))] == [2]


def test_every_query_kind_has_a_fusion_rule():
    hits = [ClipHit(1, 1, 0.0, 2.0, 0.5, "seen"), ClipHit(1, 1, 0.0, 2.0, 0.3, "heard"),
            ClipHit(2, 1, 2.0, 4.0, 0.1, "seen")]
    for kind in ("text", "audio", "image", "like"):
        fused = fuse([ClipHit(**vars(h)) for h in hits], kind)
        assert sorted(h.clip_id for h in fused) == [1, 2], kind
    assert COMBINE["image"] == COMBINE["like"] == "mean"   # two views of one picture / clip
    mean = fuse([ClipHit(**vars(h)) for h in hits], "like")
    assert np.isclose(next(h.score for h in mean if h.clip_id == 1), (0.5 + 0.3) / 2)


def test_clip_rows_of_hits_are_read_by_id_not_by_scanning_the_library(tmp_path):
    """The rows of a query's candidate clips come from primary-key lookups: a plan that walks
    every indexed video's clips cost a scan of the library per query (12 ms at 50k clips)."""
    from engine.index import db as dbmod
    from engine.search.sources import clip_rows_sql

    db = dbmod.connect(tmp_path / "library.db")
    with dbmod.transaction(db) as conn:
        conn.executemany("INSERT INTO videos(id, path, size, mtime, phash, status) VALUES (?, ?, 1, 1, 'h', ?)",
                         [(v, f"/v{v}", "done" if v % 3 else "error") for v in range(1, 200)])
        conn.executemany("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                         [(v, i, 4.0 * i, 4.0 * i + 4) for v in range(1, 200) for i in range(20)])
        conn.execute("ANALYZE")
    plan = [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + clip_rows_sql(3), (5, 70, 3000))]
    assert plan[0].startswith("SEARCH c USING INTEGER PRIMARY KEY"), plan
    rows = db.conn.execute(clip_rows_sql(3), (5, 70, 3000)).fetchall()
    assert sorted(r[0] for r in rows) == [5, 70]  # clip 5: video 1 (done); 70: video 4; 3000: video 150 (error)
