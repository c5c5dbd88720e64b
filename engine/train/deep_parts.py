"""Deep mode's trainable part for the run loop: the vision tail and the cached trunk
activations it reads (see deep.py for how the cache is built)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.jobs import CancelToken, Progress
from engine.models.vision_tail import pretrained_tail
from engine.train.data import TrainingData
from engine.train.deep import TrunkCache, build_trunk_cache


@dataclass
class DeepParts:
    """Deep mode: the trainable vision tail, and the cached trunk activations (memory-mapped on
    the CPU, or on the GPU) with ``rows``: the cache row of each TrainingData row."""

    tail: torch.nn.Module
    trunk: torch.Tensor  # [M, T, C, h, w] float16
    rows: torch.Tensor   # [N] int64

    def features(self, rows: np.ndarray) -> torch.Tensor:
        """[B, T, 1280] of these data rows, with gradients into the tail."""
        index = self.rows[torch.from_numpy(np.asarray(rows, np.int64))]
        x = self.trunk[index.to(self.trunk.device)]
        b, t = x.shape[:2]
        param = next(self.tail.parameters())
        return self.tail(x.reshape(b * t, *x.shape[2:]).to(param.device, torch.float32)).reshape(b, t, -1)

    def subset(self, rows: np.ndarray) -> DeepParts:
        """The same tail over a subset of the data rows (the held-out videos, or the rest)."""
        return DeepParts(self.tail, self.trunk, self.rows[torch.from_numpy(np.asarray(rows, np.int64))])

    @torch.no_grad()
    def all_features(self, chunk: int = 128) -> torch.Tensor:
        """[N, T, 1280] float32 on the CPU, without gradients (for metrics and publishing)."""
        parts = [self.features(np.arange(i, min(i + chunk, len(self.rows)))).float().cpu()
                 for i in range(0, len(self.rows), chunk)]
        return torch.cat(parts)


def prepare_deep(lib, base, data: TrainingData, token: CancelToken, device: torch.device):
    """Decode the clips again and cache the frozen trunk (deep mode); a generator of Progress
    returning (DeepParts, the data restricted to the clips that could be decoded)."""
    cache = None
    for item in build_trunk_cache(lib.db, base, data.clip_ids, token, Path(lib.paths.models_dir)):
        if isinstance(item, TrunkCache):
            cache = item
        else:
            yield item
    keep = np.flatnonzero(np.isin(data.clip_ids, cache.clip_ids))
    data = data.subset(keep)
    if cache.skipped:
        note = "; ".join(cache.skipped[:3])
        yield Progress(stage="prepare", message=f"left out {len(cache.skipped)} videos: {note}")
    tail = copy.deepcopy(base.tail) if base.tail is not None else pretrained_tail(base.config.deep_from_block)
    rows = torch.from_numpy(cache.rows_for(data.clip_ids))
    trunk = cache.trunk
    if device.type == "cuda":  # float16, ~19 KB per frame: the library's rows go to the GPU once
        trunk, rows = trunk[rows].to(device), torch.arange(len(rows))
    return DeepParts(tail.to(device).float().requires_grad_(True), trunk, rows), data
