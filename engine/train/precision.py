"""Mixed precision for the training step: which autocast dtype a device gets, and whether the
loss needs scaling. Full precision on the CPU (its autocast is slower than float32 there)."""

from __future__ import annotations

import contextlib

import torch


def mixed_precision(device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """bf16 autocast where the GPU supports it, else fp16 with loss scaling; full precision on CPU."""
    if device.type != "cuda":
        return None, torch.amp.GradScaler("cpu", enabled=False)
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False)
    return torch.float16, torch.amp.GradScaler("cuda", enabled=True)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A context that runs the forward pass in ``dtype`` (None: unchanged)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
