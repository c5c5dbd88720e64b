"""SwAV prototypes of a fine-tuned model, stored beside its checkpoint.

A model trained with the ``swav`` objective keeps its learned prototypes [K, va_dim] (unit rows) in
``models/<model id>.prototypes.npy``; the Topics view then groups clips by their prototype instead
of running k-means. Other models have no such file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def prototypes_path(models_dir: Path, model_id: str) -> Path:
    return Path(models_dir) / f"{model_id}.prototypes.npy"


def save_prototypes(models_dir: Path, model_id: str, prototypes: np.ndarray) -> Path:
    """Write unit-length prototypes atomically (temp file, then rename)."""
    p = np.asarray(prototypes, np.float32)
    p = p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-12)
    out = prototypes_path(models_dir, model_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npy")
    np.save(tmp, p)
    os.replace(tmp, out)
    return out


def load_prototypes(models_dir: Path, model_id: str) -> np.ndarray | None:
    path = prototypes_path(models_dir, model_id)
    return np.load(path) if path.exists() else None
