"""Library-adaptive centring (and optional PCA whitening) of S_va audio vectors for sound queries.

Why: the model's audio vectors are centred on a fixed centre estimated on one media set. A
user's library has its own mean (microphones, rooms, codecs: what every clip of *this* library
shares) and its own dominant directions, which make clips look alike whatever they sound like.
Subtracting the library's mean and flattening its principal directions (Jegou & Chum, ECCV 2012:
"negative evidences and co-occurrences", whitening learnt on the database itself) is label-free
and needs only the library's own vectors, so it follows each library instead of the media it was
tuned on. Shrinkage keeps a small library's noisy small-variance directions from being blown up:
each principal direction is scaled by (SHRINK * lambda + (1 - SHRINK) * mean lambda)^-1/2.

Chosen on the tune side of the split (bench/tune_audio_library.py, docs/evaluation.md); SHRINK
was fixed before any figure and was also the value a bootstrap of the tune queries picked most
often out of a grid; MIN_CLIPS comes from the tune side's smaller libraries.

The statistics are the library's (fit on up to SAMPLE of its S_va audio vectors), stored next to
its vector index with the index generation they were fit on, and refit when it moves.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.index.ann import write_atomic

SHRINK = 0.5        # weight of the sample eigenvalue against the mean eigenvalue (0: centring only)
# Below this many clips (or with one video) the model's vectors are used as they are: on the tune
# side, in random smaller libraries (bench/tune_audio_library.py --library-sizes), whitening gave
# no R@5 gain under ~85 clips (lower at 51-67) and a lower R@1 at every size.
MIN_CLIPS = 80
MIN_VIDEOS = 2
SAMPLE = 5_000      # at most this many clips (evenly spread over the ids) are read to fit: plenty for
                    # a covariance of rank <= 384, and a fit stays about a second on a busy laptop
FORMAT = 2         # 2: centring only stores an empty matrix


@dataclass(frozen=True)
class Whitening:
    """x -> unit((x - mean) @ matrix); ``matrix`` is symmetric, None for centring only."""

    mean: np.ndarray
    matrix: np.ndarray | None

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, np.float32) - self.mean
        if self.matrix is not None:
            y = y @ self.matrix
        return y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)


def fit(vectors: np.ndarray, rank: int, shrink: float = SHRINK) -> Whitening:
    """Whitening of ``vectors`` [n, d] (rows of a library), shrunk toward the mean eigenvalue.

    ``rank`` is the width of the feature the vectors were projected from (the audio head's input,
    384 for the Whisper mean): the mean eigenvalue is the trace over it, so the same library gives
    the same whitening whether its vectors live in 384 or in a 1024-d isometric embedding of it.
    """
    x = np.asarray(vectors, np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("need at least two vectors to fit a whitening")
    mean = x.mean(axis=0, dtype=np.float64)
    if shrink == 0.0:  # every direction scaled alike: centring, and cosine ignores the scale
        return Whitening(mean.astype(np.float32), None)
    centred = x - mean.astype(np.float32)
    lam, vec = _principal(centred)
    floor = max(float(lam.sum()) / max(1, min(rank, x.shape[1])), 1e-12)
    scale = 1.0 / np.sqrt(np.maximum(shrink * lam + (1 - shrink) * floor, 1e-12))
    if vec.shape[1] == x.shape[1]:
        matrix = (vec * scale) @ vec.T
    else:  # directions the sample lacks (lambda = 0) get the scale of a zero eigenvalue
        base = 1.0 / np.sqrt(max((1 - shrink) * floor, 1e-12))
        matrix = base * np.eye(x.shape[1]) + (vec * (scale - base)) @ vec.T
    return Whitening(mean.astype(np.float32), matrix.astype(np.float32))


def _principal(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues [r] and eigenvectors [d, r] of the covariance of ``centred`` rows, r <= min(n, d):
    by SVD of the rows when there are fewer rows than dimensions (a small library: cheaper than an
    eigendecomposition of the d x d covariance), else by that eigendecomposition."""
    n, d = centred.shape
    if n < d:
        _, sing, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        return sing ** 2 / n, vt.T
    cov = (centred.T @ centred).astype(np.float64) / n   # the product in float32: 2x faster
    lam, vec = np.linalg.eigh(cov)
    return np.maximum(lam, 0.0), vec


def sample_ids(ids: np.ndarray, limit: int = SAMPLE) -> np.ndarray:
    """Up to ``limit`` of ``ids``, evenly spread over their sorted order (deterministic)."""
    ids = np.sort(np.asarray(ids, np.int64))
    if len(ids) <= limit:
        return ids
    return ids[np.linspace(0, len(ids) - 1, limit).round().astype(np.int64)]


def save(path: Path, w: Whitening, gen: int, shrink: float = SHRINK) -> None:
    """Write the statistics with the generation and shrinkage they were fit with, as the index
    files are written (private, fsynced, temp file then rename)."""
    buf = io.BytesIO()
    matrix = np.zeros((0, 0), np.float32) if w.matrix is None else w.matrix
    np.savez(buf, mean=w.mean, matrix=matrix, gen=np.int64(gen), format=np.int64(FORMAT), shrink=np.float64(shrink))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())


def load(path: Path, gen: int, dim: int, shrink: float = SHRINK) -> Whitening | None:
    """The stored statistics if they were fit on generation ``gen`` with width ``dim`` and this
    ``shrink``, else None (a new release with another shrinkage refits)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if (int(z["format"]) != FORMAT or int(z["gen"]) != gen or z["mean"].shape != (dim,)
                    or float(z["shrink"]) != shrink):
                return None
            matrix = z["matrix"].astype(np.float32) if z["matrix"].size else None
            return Whitening(z["mean"].astype(np.float32), matrix)
    except (OSError, ValueError, KeyError):
        return None  # missing, torn or from another format: refit
