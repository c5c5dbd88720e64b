"""CSLS hubness correction of audio-query candidates (engine.search.hubness), against a naive reference."""

from __future__ import annotations

import sqlite3

import numpy as np

from engine.index.ann import AnnIndex
from engine.search.hubness import HUB_WEIGHT, clip_hubness, corrected


def _library(video_of_clip: list[int], vecs: np.ndarray) -> tuple[AnnIndex, sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE clips (id INTEGER PRIMARY KEY, video_id INTEGER)")
    conn.executemany("INSERT INTO clips VALUES (?, ?)", list(enumerate(video_of_clip)))
    ids = np.arange(len(video_of_clip), dtype=np.int64)  # the index holds unit vectors, as the product's
    return AnnIndex.build(ids, _unit(vecs).astype(np.float32), vecs.shape[1]), conn


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _naive(vecs: np.ndarray, videos: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine to the k nearest clips of other videos, by brute force."""
    sims = _unit(vecs) @ _unit(vecs).T
    out = []
    for i in range(len(vecs)):
        other = np.sort(sims[i][videos != videos[i]])[::-1]
        out.append(other[:k].mean())
    return np.array(out)


def test_hubness_matches_brute_force_and_skips_the_clips_own_video():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(60, 16))
    videos = np.repeat(np.arange(12), 5)
    vecs[5:10] = vecs[5] + 0.01 * rng.normal(size=(5, 16))   # one video of near-identical clips
    index, conn = _library(videos.tolist(), vecs)
    ids = np.arange(60)
    got = clip_hubness(index, conn, ids, k=4)
    assert np.allclose(got, _naive(vecs, videos, 4), atol=1e-4)
    # Its own near copies (cosine ~1) would have dominated had they counted.
    assert got[5] < 0.9


def test_a_hub_clip_is_demoted_below_the_specific_match():
    rng = np.random.default_rng(1)
    dim = 32
    centres = _unit(rng.normal(size=(20, dim)))
    hub = _unit(centres.mean(axis=0, keepdims=True))[0]    # close to every clip: a hub
    query = centres[3]
    vecs = np.vstack([centres, hub])
    index, conn = _library(list(range(21)), vecs)
    ids, sims = index.query(query, 21)
    raw_rank_of_hub = int(np.flatnonzero(ids == 20)[0])
    scores = corrected(index, conn, ids, sims)
    order = ids[np.argsort(-scores)]
    assert order[0] == 3
    assert int(np.flatnonzero(order == 20)[0]) >= raw_rank_of_hub
    hubness = clip_hubness(index, conn, ids, k=10)
    assert hubness[ids == 20][0] == hubness.max()
    assert np.allclose(scores, sims - HUB_WEIGHT * hubness)


def test_a_one_video_library_still_gets_a_correction():
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(6, 8))
    index, conn = _library([0] * 6, vecs)
    got = clip_hubness(index, conn, np.arange(6), k=3)
    sims = _unit(vecs) @ _unit(vecs).T
    np.fill_diagonal(sims, -np.inf)
    assert np.allclose(got, np.sort(sims, axis=1)[:, ::-1][:, :3].mean(axis=1), atol=1e-4)
    assert len(clip_hubness(index, conn, np.zeros(0, np.int64))) == 0
