"""Library whitening of S_va audio vectors (engine.search.whitening), against naive references."""

from __future__ import annotations

import numpy as np
import pytest

from engine.search import whitening


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _naive(x: np.ndarray, rows: np.ndarray, rank: int, shrink: float) -> np.ndarray:
    """Whitening written out: covariance by sum of outer products, eigenvalues shrunk one by one."""
    mean = sum(rows) / len(rows)
    cov = sum(np.outer(r - mean, r - mean) for r in rows) / len(rows)
    lam, vec = np.linalg.eigh(cov)
    target = sum(max(v, 0.0) for v in lam) / rank
    out = np.zeros_like(x - mean)
    for j in range(len(lam)):
        out += np.outer((x - mean) @ vec[:, j], vec[:, j]) / np.sqrt(shrink * max(lam[j], 0.0) + (1 - shrink) * target)
    return _unit(out)


@pytest.mark.parametrize("n_rows", [40, 8])   # more rows than dimensions (eigh), fewer (SVD)
def test_fit_matches_the_naive_whitening(n_rows):
    rng = np.random.default_rng(0)
    rows = _unit(rng.normal(size=(n_rows, 12)) * np.linspace(3, 0.2, 12))
    w = whitening.fit(rows, rank=12, shrink=0.5)
    queries = _unit(rng.normal(size=(5, 12)))
    assert np.allclose(w.apply(queries), _naive(queries, rows, 12, 0.5), atol=1e-4)
    assert np.allclose(np.linalg.norm(w.apply(rows), axis=1), 1.0, atol=1e-5)


def test_full_whitening_makes_the_library_covariance_isotropic():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    w = whitening.fit(rows, rank=6, shrink=1.0)
    y = (rows - w.mean) @ w.matrix
    assert np.allclose(np.cov(y.T, bias=True), np.eye(6), atol=1e-3)


def test_no_shrink_is_plain_centring():
    rng = np.random.default_rng(2)
    rows = _unit(rng.normal(size=(30, 8)) + 2.0)
    w = whitening.fit(rows, rank=8, shrink=0.0)
    x = _unit(rng.normal(size=(4, 8)))
    assert np.allclose(w.apply(x), _unit(x - rows.mean(axis=0)), atol=1e-5)


def test_an_isometric_embedding_gives_the_same_cosines():
    """The product fits on 1024-d vectors that embed the 384-d head input isometrically: the
    cosines must be those of fitting in the input space (the mean eigenvalue is over ``rank``)."""
    rng = np.random.default_rng(3)
    rows, queries = _unit(rng.normal(size=(25, 8)) * np.arange(1, 9)), _unit(rng.normal(size=(3, 8)))
    basis, _ = np.linalg.qr(rng.normal(size=(20, 8)))         # 20 x 8, orthonormal columns
    small = whitening.fit(rows, rank=8, shrink=0.5)
    big = whitening.fit(rows @ basis.T, rank=8, shrink=0.5)
    s_small = small.apply(queries) @ small.apply(rows).T
    s_big = big.apply(queries @ basis.T) @ big.apply(rows @ basis.T).T
    assert np.allclose(s_small, s_big, atol=1e-4)


def test_a_direction_every_clip_shares_stops_deciding_the_ranking():
    rng = np.random.default_rng(4)
    shared = _unit(rng.normal(size=64))
    specific = _unit(rng.normal(size=(200, 64)))
    loud = rng.uniform(0.0, 2.0, size=200)                         # how much of the shared hum each clip has
    loud[7] = 0.2                                                   # clip 7 itself was recorded quietly
    clips = _unit(specific + loud[:, None] * shared)
    query = _unit(specific[7] + 2.0 * shared)                      # clip 7's sound, recorded with hum
    assert np.argmax(clips @ query) != 7                            # raw cosine: a humming clip wins
    w = whitening.fit(clips, rank=64, shrink=0.5)
    assert np.argmax(w.apply(clips) @ w.apply(query)) == 7


def test_sample_ids_is_deterministic_and_spread():
    ids = np.arange(1000)[::-1]
    got = whitening.sample_ids(ids, 10)
    assert got[0] == 0 and got[-1] == 999 and len(set(got.tolist())) == 10
    assert np.array_equal(whitening.sample_ids(ids[:5], 10), np.arange(995, 1000))


def test_centring_only_stores_no_matrix():
    rng = np.random.default_rng(6)
    rows = rng.normal(size=(30, 5)) + 1.0
    w = whitening.fit(rows, rank=5, shrink=0.0)
    assert w.matrix is None and np.allclose(w.apply(rows[:2]), _unit(rows[:2] - rows.mean(axis=0)), atol=1e-5)


@pytest.mark.parametrize("shrink", [0.0, 0.5])
def test_store_round_trip_and_stale_generations(tmp_path, shrink):
    rng = np.random.default_rng(5)
    w = whitening.fit(rng.normal(size=(10, 4)), rank=4, shrink=shrink)
    path = tmp_path / "m" / "va_audio_whitening.npz"
    whitening.save(path, w, gen=7, shrink=shrink)
    got = whitening.load(path, 7, 4, shrink=shrink)
    x = rng.normal(size=(3, 4))
    assert got is not None and np.array_equal(got.mean, w.mean) and np.allclose(got.apply(x), w.apply(x))
    assert (got.matrix is None) == (shrink == 0.0)
    assert whitening.load(path, 8, 4, shrink=shrink) is None       # fit on another generation: refit
    assert whitening.load(path, 7, 5, shrink=shrink) is None
    assert whitening.load(path, 7, 4, shrink=0.25) is None         # fit with another shrinkage: refit
    path.write_bytes(b"torn")
    assert whitening.load(path, 7, 4, shrink=shrink) is None
    assert list(path.parent.iterdir()) == [path]                    # no temporary file left behind


def test_fit_needs_two_rows():
    with pytest.raises(ValueError):
        whitening.fit(np.ones((1, 3)), rank=3)
