"""Choose the compute device once, at the edge, with a clear fallback."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from engine.errors import DeviceError

log = logging.getLogger(__name__)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype
    note: str  # human-readable: what was asked, what was found, what is used


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def detect_devices() -> list[str]:
    """Devices usable on this machine, best first (for the settings dialog)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(requested: str = "auto", precision: str = "auto", strict: bool = False) -> DeviceChoice:
    """Map ``auto|cpu|cuda|mps`` to a torch device; half precision on GPUs unless asked otherwise.

    A device that is asked for but missing falls back to the CPU with a note, or raises
    :class:`DeviceError` when ``strict``.
    """
    requested = (requested or "auto").lower()
    if requested not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    available = detect_devices()
    if requested == "auto":
        name, note = available[0], f"auto: using {available[0]}"
    elif requested in available:
        name, note = requested, f"using {requested}"
    elif strict:
        raise DeviceError(f"device {requested!r} is not available here (found: {', '.join(available)})")
    else:
        name = "cpu"
        note = f"{requested} is not available here (found: {', '.join(available)}); falling back to cpu"
        log.warning(note)
    if precision == "auto":
        dtype = torch.float16 if name in ("cuda", "mps") else torch.float32
    else:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        if dtype is None:
            raise DeviceError(f"unknown precision {precision!r}; choose auto, fp32, fp16 or bf16")
    return DeviceChoice(torch.device(name), dtype, note)
