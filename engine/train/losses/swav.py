"""SwAV (Caron et al. 2020): swapped prediction of online cluster assignments, with a clip's
video and audio as the two views.

Shapes (B clips, D embedding width, K prototypes):
    video, audio  [B, D]  L2-normalised embeddings, row i of each is the same clip
    prototypes    [K, D]  learnable prototype vectors (L2-normalised before use, as in the paper)

Codes q are computed without gradients by Sinkhorn-Knopp on the batch's scores z C^T (equal
partition: every prototype gets B/K of the batch, so the codes cannot collapse to one cluster);
the loss predicts each view's code from the *other* view's softmax over prototypes:
    loss = -1/2 mean_i [ sum_k q_a[i,k] log p_v[i,k] + sum_k q_v[i,k] log p_a[i,k] ]
    p_x = softmax(x C^T / temperature)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Sinkhorn-Knopp codes [B, K] from scores [B, K] (SwAV's Algorithm 1): rows sum to 1, and
    each prototype's column sums to B/K, i.e. the batch is split evenly across prototypes."""
    q = torch.exp((scores.float() - scores.float().max()) / epsilon).T  # [K, B]; max shift for overflow
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).T


class Prototypes(nn.Module):
    """K learnable prototype vectors; ``scores(z)`` = z C^T with C's rows kept unit length."""

    def __init__(self, count: int, dim: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(F.normalize(torch.randn(count, dim, generator=g), dim=-1))

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        return z.float() @ F.normalize(self.weight.float(), dim=-1).T

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Hard cluster of each row of ``z`` [N, D] -> [N] (used by the Topics view)."""
        return self.scores(z).argmax(dim=1)


def swav_loss(video: torch.Tensor, audio: torch.Tensor, prototypes: Prototypes,
              temperature: float = 0.1, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Swapped-prediction loss (scalar); see the module docstring."""
    if video.shape != audio.shape:
        raise ValueError(f"video {tuple(video.shape)} and audio {tuple(audio.shape)} must have the same shape")
    sv, sa = prototypes.scores(video), prototypes.scores(audio)  # [B, K]
    qv, qa = sinkhorn(sv, epsilon, iterations), sinkhorn(sa, epsilon, iterations)
    log_pv = F.log_softmax(sv / temperature, dim=1)
    log_pa = F.log_softmax(sa / temperature, dim=1)
    return -0.5 * ((qa * log_pv).sum(dim=1).mean() + (qv * log_pa).sum(dim=1).mean())
