"""engine.evaluation.metrics against naive reference implementations."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from engine.evaluation.metrics import (
    RankedQuery,
    estimate,
    first_relevant_ranks,
    interval,
    paired_difference,
    random_hit,
    random_rank,
    ranks_from_rankings,
    summarise,
)


def naive_first_rank(scores: list[float], relevant: list[bool]) -> int:
    """Sort by score descending, irrelevant items first among ties (pessimistic)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], relevant[i]))
    return next(pos for pos, i in enumerate(order, 1) if relevant[i])


def naive_random(n: int, m: int, k: int) -> tuple[float, float]:
    """(P(hit in top k), expected first-relevant rank) by enumerating every placement of m relevant items."""
    hits, ranks, total = 0, 0, 0
    for placed in itertools.combinations(range(n), m):
        total += 1
        first = min(placed) + 1
        hits += first <= k
        ranks += first
    return hits / total, ranks / total


@pytest.mark.parametrize("n,m,k", [(5, 1, 1), (6, 2, 3), (7, 3, 5), (8, 1, 10), (9, 4, 2)])
def test_random_baseline_is_exact(n, m, k):
    hit, rank = naive_random(n, m, k)
    assert random_hit(n, m, k) == pytest.approx(hit)
    assert random_rank(n, m) == pytest.approx(rank)


def test_first_relevant_ranks_match_sorting():
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(2, 12)
        scores = [rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(n)]  # with ties
        relevant = [rng.random() < 0.3 for _ in range(n)]
        if not any(relevant):
            relevant[rng.randrange(n)] = True
        (q,) = first_relevant_ranks(np.array([scores]), np.array([relevant]))
        assert q.rank == naive_first_rank(scores, relevant)
        assert (q.gallery, q.relevant) == (n, sum(relevant))


def test_constant_scores_are_not_better_than_chance():
    (q,) = first_relevant_ranks(np.zeros((1, 10)), np.eye(10, dtype=bool)[[3]])
    assert q.rank == 10  # every irrelevant item ties and counts ahead


def test_ranks_from_rankings_filters_gallery_and_repeats():
    gallery = {"a", "b", "c", "d"}
    (q1, q2) = ranks_from_rankings([["x", "a", "a", "c", "b"], ["a", "b"]], [{"c", "z"}, {"d"}], gallery)
    assert (q1.rank, q1.retrieved, q1.gallery, q1.relevant) == (2, 3, 4, 1)
    assert (q2.rank, q2.retrieved) == (None, 2)
    # d is one of the 2 unseen items: expected rank 2 + 1.5, P(hit@3) = 1/2
    assert q2.expected_rank() == pytest.approx(3.5)
    assert q2.hit(3) == pytest.approx(0.5)
    assert q2.hit(2) == 0.0 and q2.hit(4) == 1.0


def test_summarise_against_naive_recall_and_rank():
    rng = random.Random(7)
    queries = [RankedQuery(rng.randint(1, 20), 20, 20, rng.randint(1, 3)) for _ in range(30)]
    s = summarise(queries, ks=(1, 5))
    for k in (1, 5):
        naive = sum(q.rank <= k for q in queries) / len(queries)
        assert s[f"R@{k}"].value == pytest.approx(naive)
        assert s[f"R@{k}"].random == pytest.approx(np.mean([naive_random(20, q.relevant, k)[0] for q in queries]))
        assert s[f"R@{k}"].low <= s[f"R@{k}"].value <= s[f"R@{k}"].high
    assert s["mean_rank"].value == pytest.approx(sum(q.rank for q in queries) / 30)
    assert s["median_rank"].value == pytest.approx(float(np.median([q.rank for q in queries])))
    assert s["R@1"].n_queries == 30


def test_bootstrap_interval_matches_a_naive_loop_and_is_reproducible():
    values = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1], float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(values), size=(2000, len(values)))
    means = sorted(float(np.mean([values[j] for j in row])) for row in idx)
    low, high = interval(values, idx=idx)
    assert low == pytest.approx(np.percentile(means, 2.5))
    assert high == pytest.approx(np.percentile(means, 97.5))
    assert interval(values) == interval(values)  # fixed seed
    e = estimate(values)
    assert e.low < e.value < e.high


def test_interval_shrinks_with_more_queries():
    few = estimate([1, 0] * 5)
    many = estimate([1, 0] * 200)
    assert (many.high - many.low) < (few.high - few.low) / 3


def test_paired_difference_of_identical_systems_is_zero():
    a = [1, 0, 1, 1, 0]
    d = paired_difference(a, a)
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0)
    d = paired_difference([1] * 20, [0] * 20)
    assert d.low == d.high == 1.0


def test_invalid_queries_are_rejected():
    with pytest.raises(ValueError):
        RankedQuery(1, 5, 5, 0)
    with pytest.raises(ValueError):
        first_relevant_ranks(np.zeros((1, 3)), np.zeros((1, 3), bool))
    with pytest.raises(ValueError):
        summarise([])


def test_evaluation_package_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, engine.evaluation, engine.evaluation.splits, engine.evaluation.labels; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
