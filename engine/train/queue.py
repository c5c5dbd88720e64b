"""MoCo-style memory of negatives and the momentum (EMA) copy of the heads that fills it.

A CPU-sized batch of 64 clips sees only 63 negatives; He et al. (MoCo, 2020) keep the embeddings
of recent batches in a FIFO queue, computed by a slowly moving copy of the encoder so that old
entries stay consistent with new ones. Each entry carries a key ``(video_id, position)`` so that
the trainer can mask out stale copies of the clip itself (a small library cycles through its
clips every few steps, and a clip must never be its own negative).
"""

from __future__ import annotations

import torch
from torch import nn


class KeyedQueue:
    """FIFO ring buffer of ``size`` vectors [size, dim] with int64 keys [size, 2]."""

    def __init__(self, size: int, dim: int, device: torch.device | str = "cpu"):
        self.size = max(0, int(size))
        self.vectors = torch.zeros(self.size, dim, device=device)
        self.keys = torch.full((self.size, 2), -1, dtype=torch.long, device=device)
        self.filled = 0
        self.pointer = 0

    def __len__(self) -> int:
        return self.filled

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(vectors [n, dim], keys [n, 2]) currently held, in no particular order."""
        return self.vectors[: self.filled], self.keys[: self.filled]

    @torch.no_grad()
    def push(self, vectors: torch.Tensor, keys: torch.Tensor) -> None:
        """Append [n, dim] vectors with [n, 2] keys, overwriting the oldest entries when full."""
        if self.size == 0 or len(vectors) == 0:
            return
        vectors, keys = vectors[-self.size :], keys[-self.size :]
        n = len(vectors)
        slots = (self.pointer + torch.arange(n, device=self.vectors.device)) % self.size
        self.vectors[slots] = vectors.detach().float().to(self.vectors.device)
        self.keys[slots] = keys.to(self.keys.device)
        self.pointer = int((self.pointer + n) % self.size)
        self.filled = min(self.size, self.filled + n)

    def state_dict(self) -> dict:
        return {
            "vectors": self.vectors.cpu(),
            "keys": self.keys.cpu(),
            "filled": self.filled,
            "pointer": self.pointer,
        }

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["vectors"].shape) != tuple(self.vectors.shape):
            return  # a different queue size: start empty rather than mix layouts
        self.vectors.copy_(state["vectors"])
        self.keys.copy_(state["keys"])
        self.filled, self.pointer = int(state["filled"]), int(state["pointer"])


def related_mask(query_keys: torch.Tensor, queue_keys: torch.Tensor, shift: int = 0) -> torch.Tensor:
    """[B, 2] x [K, 2] keys -> [B, K] bool: same video and positions at most ``shift`` apart."""
    same_video = query_keys[:, None, 0] == queue_keys[None, :, 0]
    close = (query_keys[:, None, 1] - queue_keys[None, :, 1]).abs() <= shift
    return same_video & close


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy that :func:`ema_update` moves towards the trained module."""
    import copy

    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


@torch.no_grad()
def ema_update(twin: nn.Module, online: nn.Module, momentum: float) -> None:
    """twin <- momentum * twin + (1 - momentum) * online, for parameters; buffers are copied."""
    for t, o in zip(twin.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(twin.buffers(), online.buffers()):
        t.copy_(o)
