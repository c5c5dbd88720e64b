"""Retrieval metrics with honest uncertainty: recall@k, mean and median rank, each with a 95%
bootstrap interval over queries and the exact random baseline.

Why: the shared media gives a few dozen queries, where one query moves R@5 by several points.
A figure without its interval invites reading noise as progress, and a figure without the
random baseline hides how easy the gallery is (a gallery of 15 videos with 3 relevant ones
gives R@5 = 0.74 to a random ranking).

A query is a :class:`RankedQuery`: the 1-based rank of its first relevant item, or ``None`` when
no relevant item was in the (possibly partial) ranking, plus the sizes needed for exact
expectations. Missing items are treated as if the rest of the gallery followed in random order,
so a partial ranking is neither rewarded nor punished beyond what it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from math import comb

import numpy as np

N_RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
DEFAULT_KS = (1, 5, 10)


@dataclass(frozen=True)
class Estimate:
    """One figure: its value on all queries, the bootstrap interval, the random baseline."""

    value: float
    low: float
    high: float
    random: float | None
    n_queries: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        rand = "" if self.random is None else f", random {self.random:.2f}"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}] (n={self.n_queries}{rand})"


@dataclass(frozen=True)
class RankedQuery:
    """Where one query's first relevant item landed.

    rank: 1-based rank of the first relevant item, or None if none was in the ranking;
    retrieved: length of the ranking (for None: how many items were shown without a hit);
    gallery: number of items that could be ranked; relevant: how many of them are relevant.
    """

    rank: int | None
    retrieved: int
    gallery: int
    relevant: int

    def __post_init__(self) -> None:
        if not 1 <= self.relevant <= self.gallery:
            raise ValueError(f"a query needs 1..{self.gallery} relevant items, got {self.relevant}")
        if self.rank is not None and not 1 <= self.rank <= self.gallery:
            raise ValueError(f"rank {self.rank} outside 1..{self.gallery}")

    def hit(self, k: int) -> float:
        """P(a relevant item in the top k): 0/1 when seen, exact expectation for the unseen rest."""
        if self.rank is not None:
            return float(self.rank <= k)
        shown = self.retrieved
        if k <= shown:
            return 0.0
        return random_hit(self.gallery - shown, self.relevant, k - shown)

    def expected_rank(self) -> float:
        if self.rank is not None:
            return float(self.rank)
        return self.retrieved + random_rank(self.gallery - self.retrieved, self.relevant)


def random_hit(n: int, m: int, k: int) -> float:
    """Exact P(at least one of m relevant items among the first k of n, random order)."""
    k = min(k, n)
    return 1.0 - comb(n - m, k) / comb(n, k)


def random_rank(n: int, m: int) -> float:
    """Expected position of the first of m relevant items among n in random order."""
    return (n + 1) / (m + 1)


def first_relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> list[RankedQuery]:
    """Score matrix [Q, N] (higher is better) and boolean relevance [Q, N] -> one RankedQuery per row.

    Ties are counted against the query (an irrelevant item with the same score ranks first):
    a constant scorer must not look better than chance.
    """
    scores, relevant = np.asarray(scores, float), np.asarray(relevant, bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and relevance {relevant.shape} must be the same [Q, N]")
    out = []
    n = scores.shape[1]
    for row, rel in zip(scores, relevant):
        if not rel.any():
            raise ValueError("every query needs at least one relevant item")
        best = row[rel].max()
        ahead = int(((row >= best) & ~rel).sum())
        out.append(RankedQuery(ahead + 1, n, n, int(rel.sum())))
    return out


def ranks_from_rankings(rankings: Iterable[Sequence[Hashable]], relevant: Iterable[set],
                        gallery: set) -> list[RankedQuery]:
    """Ranked item lists (best first; items outside ``gallery`` and repeats are skipped) and each
    query's relevant set -> RankedQuery per query. Relevant items outside the gallery do not count."""
    out = []
    for ranking, rel in zip(rankings, relevant):
        rel = set(rel) & gallery
        seen: list = []
        for item in ranking:
            if item in gallery and item not in seen:
                seen.append(item)
        rank = next((i for i, item in enumerate(seen, 1) if item in rel), None)
        out.append(RankedQuery(rank, len(seen), len(gallery), len(rel)))
    return out


def bootstrap_indices(n_queries: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[n_resamples, n_queries] query indices drawn with replacement (fixed seed: reruns agree)."""
    return np.random.default_rng(seed).integers(0, n_queries, size=(n_resamples, n_queries))


def interval(values: np.ndarray, stat: Callable = np.mean, idx: np.ndarray | None = None,
             level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over per-query ``values`` (resampling queries)."""
    values = np.asarray(values, float)
    if idx is None:
        idx = bootstrap_indices(len(values))
    stats = stat(values[idx], axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def estimate(values: Sequence[float], random: float | None = None, stat: Callable = np.mean,
             idx: np.ndarray | None = None) -> Estimate:
    values = np.asarray(values, float)
    if values.size == 0:
        raise ValueError("no queries to estimate from")
    low, high = interval(values, stat, idx)
    return Estimate(float(stat(values)), low, high, random, int(values.size))


def summarise(queries: Sequence[RankedQuery], ks: Sequence[int] = DEFAULT_KS) -> dict[str, Estimate]:
    """R@k for each k, mean and median rank; all intervals from the same query resamples.

    The random baseline of R@k is the exact expectation under a random ranking of each query's
    gallery; of the mean rank its expectation; of the median rank the median of the per-query
    expected random ranks.
    """
    if not queries:
        raise ValueError("no queries to summarise")
    idx = bootstrap_indices(len(queries))
    out = {}
    for k in ks:
        rand = float(np.mean([random_hit(q.gallery, q.relevant, k) for q in queries]))
        out[f"R@{k}"] = estimate([q.hit(k) for q in queries], rand, idx=idx)
    ranks = [q.expected_rank() for q in queries]
    rand_ranks = [random_rank(q.gallery, q.relevant) for q in queries]
    out["mean_rank"] = estimate(ranks, float(np.mean(rand_ranks)), idx=idx)
    out["median_rank"] = estimate(ranks, float(np.median(rand_ranks)), stat=np.median, idx=idx)
    return out


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """Mean of a - b over the same queries with a paired bootstrap interval: how to compare two
    variants. An interval that contains 0 means the data cannot tell them apart."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("paired values need the same queries")
    return estimate(a - b)


def as_dict(summary: dict[str, Estimate]) -> dict[str, dict]:
    return {name: e.to_dict() for name, e in summary.items()}
