"""Sample-rate conversion of float32 mono audio through libswresample (PyAV, already a dependency)."""

from __future__ import annotations

import av
import numpy as np

_CHUNK = 1 << 16  # samples per frame handed to the resampler


def resample(wave: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling (no aliasing, unlike linear interpolation); returns float32 mono."""
    wave = np.ascontiguousarray(wave, dtype=np.float32).reshape(-1)
    if src_rate == dst_rate or wave.size == 0:
        return wave.copy()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=dst_rate)
    parts: list[np.ndarray] = []
    for i in range(0, wave.size, _CHUNK):
        frame = av.AudioFrame.from_ndarray(wave[None, i:i + _CHUNK], format="flt", layout="mono")
        frame.sample_rate = src_rate
        frame.pts = i
        parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))  # flush the tail
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
