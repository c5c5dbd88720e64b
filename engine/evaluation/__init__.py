"""Evaluation shared by bench/, ``mmvsearch eval`` and training reports: retrieval metrics with
bootstrap intervals and exact random baselines, fixed tune/report splits, label mappings.

Headless and light: numpy and the standard library only (no torch), so reports and benchmarks
can import it without loading models.
"""

from engine.evaluation.metrics import (
    Estimate,
    RankedQuery,
    as_dict,
    estimate,
    first_relevant_ranks,
    paired_difference,
    random_hit,
    random_rank,
    ranks_from_rankings,
    summarise,
)
from engine.evaluation.splits import SPLITS, SplitRow, load_split, members

__all__ = [
    "SPLITS",
    "Estimate",
    "RankedQuery",
    "SplitRow",
    "as_dict",
    "estimate",
    "first_relevant_ranks",
    "load_split",
    "members",
    "paired_difference",
    "random_hit",
    "random_rank",
    "ranks_from_rankings",
    "summarise",
]
