"""k-means on unit vectors (cosine), and the choice of k by the silhouette criterion.

numpy only (no scikit-learn at run time). Rows are L2-normalised embeddings, so the squared
euclidean distance is 2 - 2 cos and spherical k-means (centroids renormalised) fits them.

Choosing k: the mean silhouette (Rousseeuw 1987) with cosine distance, the highest over a range of
k, computed on a seeded sample of at most ``sample`` rows (silhouette is O(n^2)); the final k-means
then runs on every row, starting from the sample's centroids. Ties go to the smaller k (fewer,
broader topics are easier to browse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Clustering:
    labels: np.ndarray      # [N] int, 0..k-1
    centroids: np.ndarray   # [k, D] unit vectors
    k: int
    criterion: str          # how k was chosen, in words
    silhouettes: dict[int, float]  # k -> mean silhouette on the sample (empty when k was given)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) on cosine distance."""
    centres = [x[rng.integers(len(x))]]
    dist = np.maximum(0.0, 1.0 - x @ centres[0]).astype(np.float64)
    for _ in range(1, k):
        total = dist.sum()
        pick = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=dist / total)
        centres.append(x[pick])
        dist = np.minimum(dist, np.maximum(0.0, 1.0 - x @ x[pick]))
    return np.stack(centres)


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iterations: int = 50,
           init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means: (labels [N], unit centroids [k, D]). An emptied cluster is re-seeded with
    the row farthest from its centroid, so exactly k clusters come back when N >= k. ``init``:
    starting centroids (e.g. from a sample), else k-means++."""
    x = _normalise(np.asarray(x, np.float32))
    k = max(1, min(k, len(x))) if init is None else len(init)
    rng = np.random.default_rng(seed)
    centroids = _plus_plus(x, k, rng) if init is None else _normalise(np.array(init, np.float32))
    labels = np.full(len(x), -1)
    for _ in range(iterations):
        sims = x @ centroids.T
        new = sims.argmax(axis=1)
        for c in np.setdiff1d(np.arange(k), new):
            far = int(np.argmin(sims[np.arange(len(x)), new]))
            new[far] = c
            sims[far] = np.inf  # never picked twice
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            centroids[c] = x[labels == c].sum(axis=0)
        centroids = _normalise(centroids)
    return labels, centroids


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with cosine distance; a singleton cluster's rows count 0 (Rousseeuw)."""
    x = _normalise(np.asarray(x, np.float32))
    dist = np.maximum(0.0, 1.0 - x @ x.T)
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    mean_to = np.stack([dist[:, labels == c].mean(axis=1) for c in clusters], axis=1)  # [N, C]
    sizes = np.array([(labels == c).sum() for c in clusters])
    own = np.searchsorted(clusters, labels)
    rows = np.arange(len(x))
    a = mean_to[rows, own] * sizes[own] / np.maximum(sizes[own] - 1, 1)  # exclude the row itself
    other = mean_to.copy()
    other[rows, own] = np.inf
    b = other.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[sizes[own] == 1] = 0.0
    return float(s.mean())


def k_range(n: int) -> range:
    """Candidate k: 2 .. min(40, 2 sqrt(n)), never more than n - 1."""
    return range(2, max(3, min(40, int(2 * np.sqrt(n)), n - 1) + 1))


def cluster(x: np.ndarray, k: int | None = None, *, seed: int = 0, sample: int = 2000) -> Clustering:
    """Cluster rows of ``x``; with ``k`` None, choose it by the best mean silhouette on a sample."""
    x = _normalise(np.asarray(x, np.float32))
    if len(x) < 3:
        return Clustering(np.zeros(len(x), int), x[:1].copy(), min(1, len(x)), "fewer than 3 clips: one topic", {})
    if k is not None:
        labels, centroids = kmeans(x, k, seed=seed)
        return Clustering(labels, centroids, len(centroids), f"k = {k} as asked", {})
    rng = np.random.default_rng(seed)
    part = x if len(x) <= sample else x[rng.choice(len(x), sample, replace=False)]
    fits = {c: kmeans(part, c, seed=seed) for c in k_range(len(part))}
    scores = {c: silhouette(part, fit[0]) for c, fit in fits.items()}
    best = max(scores, key=lambda c: (round(scores[c], 4), -c))
    # The sample's centroids start the full run, which then needs only a few passes over every row.
    labels, centroids = (fits[best] if part is x else kmeans(x, best, seed=seed, init=fits[best][1]))
    criterion = f"k = {best}: best mean cosine silhouette ({scores[best]:.3f}) over k = 2..{max(scores)}"
    return Clustering(labels, centroids, best, criterion, scores)
