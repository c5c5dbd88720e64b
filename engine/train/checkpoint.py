"""Checkpoints: plain dicts of tensors saved with ``torch.save`` and read with ``weights_only=True``
(no pickled code runs when a checkpoint is loaded), written atomically (temporary file + rename),
and stamped with the model id so that embeddings of different models never mix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ModelError

FORMAT = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Save ``obj`` so that ``path`` is either the old file or the complete new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def save_heads(
    path: Path, heads: nn.Module, model_id: str, config_name: str, extra: dict | None = None
) -> None:
    """Write the heads of model ``model_id`` (config ``config_name``) plus JSON-like ``extra`` facts."""
    payload = {"format": FORMAT, "model_id": model_id, "config_name": config_name, "heads": _cpu_state(heads)}
    payload.update(extra or {})
    atomic_torch_save(payload, path)


def load_checkpoint(path: Path) -> dict:
    """Any checkpoint written here (heads or a resumable training state), safely, onto the CPU."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"checkpoint {path} does not exist") from None
    except Exception as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{path} is not an mmvsearch checkpoint (format {FORMAT})")
    return state


def load_heads_state(path: Path) -> dict:
    """The checkpoint dict; ``["heads"]`` is the FACHeads state dict, ``["model_id"]`` its model."""
    state = load_checkpoint(path)
    if "heads" not in state or "model_id" not in state:
        raise ModelError(f"{path} holds no heads")
    return state
