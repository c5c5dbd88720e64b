"""Learning-rate schedule: linear warm-up then cosine decay, as a function of run progress in [0, 1].

Progress is a fraction rather than a step so that a time-limited run (``--minutes``) follows the
same curve as an epoch-limited one.
"""

from __future__ import annotations

import math


def lr_factor(progress: float, warmup: float = 0.1, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``progress`` (0 = start, 1 = end of the run)."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 1e-3)
    span = max(1e-9, 1.0 - warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / span))
    return floor + (1.0 - floor) * cosine
