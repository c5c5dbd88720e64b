"""CSLS hubness correction of audio-query candidates (engine.search.hubness), against a naive reference."""

from __future__ import annotations

import numpy as np

from engine.search.hubness import HUB_WEIGHT, clip_hubness, corrected


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _naive(vecs: np.ndarray, videos: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine to the k nearest clips of other videos, one clip at a time."""
    out = []
    for i in range(len(vecs)):
        sims = [float(vecs[i] @ vecs[j]) for j in range(len(vecs)) if videos[j] != videos[i]]
        out.append(np.mean(sorted(sims, reverse=True)[:k]))
    return np.array(out)


def test_hubness_matches_brute_force_and_skips_the_clips_own_video():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(60, 16))
    vecs[5:10] = vecs[5] + 0.01 * rng.normal(size=(5, 16))   # one video of near-identical clips
    vecs = _unit(vecs)
    videos = np.repeat(np.arange(12), 5)
    got = clip_hubness(vecs, videos, k=4)
    assert np.allclose(got, _naive(vecs, videos, 4), atol=1e-5)
    assert got[5] < 0.9   # its own near copies (cosine ~1) would have dominated had they counted


def test_a_hub_clip_is_demoted_below_the_specific_match():
    rng = np.random.default_rng(1)
    common = _unit(rng.normal(size=(1, 32)))[0]
    clips = _unit(common + rng.normal(size=(20, 32)) / np.sqrt(32))  # 20 clips in a cone
    vecs = np.vstack([clips, common])                      # clip 20, the cone's axis, is near all: a hub
    videos = np.arange(21)
    query = _unit((clips[3] + 1.5 * common)[None])[0]     # clip 3's sound, leaning towards the hub
    sims = vecs @ query
    assert np.argmax(sims) == 20                          # raw cosine: the hub wins
    hubness = clip_hubness(vecs, videos)
    scores = corrected(sims, vecs, videos)
    assert np.argmax(hubness) == 20
    assert np.argmax(scores) == 3                         # corrected: the specific match wins
    assert np.allclose(scores, sims - HUB_WEIGHT * hubness)


def test_a_one_video_library_still_gets_a_correction():
    rng = np.random.default_rng(2)
    vecs = _unit(rng.normal(size=(6, 8)))
    got = clip_hubness(vecs, np.zeros(6, np.int64), k=3)
    assert np.allclose(got, _naive(vecs, np.arange(6), 3), atol=1e-5)
    assert len(clip_hubness(vecs[:1], np.zeros(1, np.int64))) == 1


def test_clips_with_few_other_videos_use_what_they_have():
    rng = np.random.default_rng(3)
    vecs = _unit(rng.normal(size=(14, 8)))
    videos = np.array([0] * 10 + [1, 2, 3, 4])   # video 0's clips see only 4 clips of other videos
    got = clip_hubness(vecs, videos, k=6)
    assert np.allclose(got, _naive(vecs, videos, 6), atol=1e-5)
