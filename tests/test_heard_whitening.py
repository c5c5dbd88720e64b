"""The heard channel re-scores a recording's candidates in the library's whitened space, with the
statistics stored beside the library's index (engine.search.channels.heard)."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import numpy as np
import pytest

from engine.hits import ClipHit
from engine.index.ann import AnnIndex
from engine.search import whitening
from engine.search.channels.heard import Heard
from engine.search.hubness import corrected
from engine.search.query import Query


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class FakeSources:
    """What the heard channel reads: one S_va audio index, clip rows, a place for kept state."""

    def __init__(self, tmp_path, vecs: np.ndarray, videos: np.ndarray, gen: int = 3):
        ids = np.arange(1, len(vecs) + 1, dtype=np.int64)
        self.audio = AnnIndex.build(ids, vecs.astype(np.float32), vecs.shape[1])
        self.audio.gen = gen
        self.video_of = dict(zip(ids.tolist(), videos.tolist()))
        self.ann_dir = tmp_path / "ann"
        self.model = SimpleNamespace(model_id="m", config=SimpleNamespace(audio_head_dim=vecs.shape[1]))
        self.conn = sqlite3.connect(":memory:")
        self.conn.executescript("CREATE TABLE videos (id INTEGER, status TEXT);"
                                "CREATE TABLE clips (id INTEGER, video_id INTEGER);")
        self.conn.executemany("INSERT INTO videos VALUES (?, 'done')", [(int(v),) for v in set(videos.tolist())])
        self.conn.executemany("INSERT INTO clips VALUES (?, ?)", list(self.video_of.items()))
        self._kept: dict = {}
        self.fits = 0

    def index(self, space, modality):
        return self.audio

    def kept(self, name, make):
        return self._kept.setdefault(name, make())

    def knn(self, space, modality, vec, reason, k=300, weight=1.0):
        ids, sims = self.audio.query(vec, k)
        return [ClipHit(int(i), self.video_of[int(i)], 0.0, 4.0, float(s) * weight, reason) for i, s in zip(ids, sims)]


def _library(n_videos: int = 40, per_video: int = 3, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    hum = _unit(rng.normal(size=dim))
    vecs = _unit(rng.normal(size=(n_videos * per_video, dim)) + rng.uniform(0, 2, (n_videos * per_video, 1)) * hum)
    return vecs, np.repeat(np.arange(n_videos), per_video)


def test_audio_query_scores_are_csls_in_the_libraries_whitened_space(tmp_path):
    vecs, videos = _library()
    sources = FakeSources(tmp_path, vecs, videos)
    q = _unit(np.random.default_rng(9).normal(size=16)).astype(np.float32)
    hits = Heard().hits(sources, Query(kind="audio", vectors={"va": q}))
    w = whitening.fit(vecs, rank=16)
    ids = np.array([h.clip_id for h in hits])
    white = w.apply(vecs[ids - 1])
    expected = corrected(white @ w.apply(q), white, videos[ids - 1])
    assert np.allclose([h.score for h in hits], expected, atol=1e-4)
    stored = whitening.load(tmp_path / "ann" / "m" / "va_audio_whitening.npz", 3, 16)
    assert stored is not None and np.allclose(stored.apply(vecs), w.apply(vecs), atol=1e-5)  # kept with the library


def test_stored_statistics_are_reused_until_the_index_moves(tmp_path, monkeypatch):
    vecs, videos = _library()
    sources = FakeSources(tmp_path, vecs, videos)
    q = {"va": vecs[0].astype(np.float32)}
    Heard().hits(sources, Query(kind="audio", vectors=q))
    calls = []
    real_fit = whitening.fit
    monkeypatch.setattr(whitening, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    fresh = FakeSources(tmp_path, vecs, videos)          # a new session: read from disk, no refit
    Heard().hits(fresh, Query(kind="audio", vectors=q))
    assert calls == []
    fresh.audio.gen = 4                                  # clips were added or removed: refit
    Heard().hits(fresh, Query(kind="audio", vectors=q))
    assert calls == [1]


@pytest.mark.parametrize("n_videos,per_video", [(1, 150), (whitening.MIN_CLIPS - 1, 1)])
def test_a_library_too_small_for_statistics_uses_the_models_vectors(tmp_path, n_videos, per_video):
    vecs, videos = _library(n_videos=n_videos, per_video=per_video)
    sources = FakeSources(tmp_path, vecs, videos)
    q = vecs[2].astype(np.float32)
    hits = Heard().hits(sources, Query(kind="audio", vectors={"va": q}))
    ids = np.array([h.clip_id for h in hits])
    expected = corrected(vecs[ids - 1] @ q, vecs[ids - 1], videos[ids - 1])
    assert np.allclose([h.score for h in hits], expected, atol=1e-4)
    assert not (tmp_path / "ann" / "m" / "va_audio_whitening.npz").exists()
