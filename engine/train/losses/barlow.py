"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation matrix of the two views'
embeddings the identity. No negatives: redundancy reduction instead of contrast.

Shapes (B clips, D embedding width):
    a [B, D]  first view (here: a clip's video embedding)
    b [B, D]  second view (its audio embedding), row i pairs with row i of ``a``

Each dimension is standardised over the batch (mean 0, std 1; biased std as in the paper's
reference code), then C = a_n^T b_n / B  [D, D] and
    loss = sum_i (1 - C_ii)^2  +  off_diagonal_weight * sum_{i != j} C_ij^2
The paper uses off_diagonal_weight 5e-3 for D = 8192; it scales roughly as 1/D, so the default
here is 1/D.
"""

from __future__ import annotations

import torch

EPS = 1e-5  # guards dimensions that are constant over the batch


def _standardise(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(dim=0)) / (x.std(dim=0, unbiased=False) + EPS)


def barlow_twins(a: torch.Tensor, b: torch.Tensor, off_diagonal_weight: float | None = None) -> torch.Tensor:
    """Barlow Twins loss (scalar); see the module docstring. Needs at least two rows."""
    if a.shape != b.shape:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} must have the same shape")
    if len(a) < 2:
        raise ValueError("Barlow Twins needs at least two clips to standardise over the batch")
    n, d = a.shape
    weight = 1.0 / d if off_diagonal_weight is None else off_diagonal_weight
    c = _standardise(a.float()).T @ _standardise(b.float()) / n  # [D, D]
    on = torch.diagonal(c)
    on_term = (1.0 - on).pow(2).sum()
    off_term = c.pow(2).sum() - on.pow(2).sum()
    return on_term + weight * off_term
