"""Decode a file's first audio stream to mono float32 at 16 kHz with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from engine.errors import MediaError, error_reason

SAMPLE_RATE = 16000


def load_audio(path: Path, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray | None:
    """Mono float32 in [-1, 1] at ``sr``; None when the file has no audio stream.

    A stream that breaks mid-way keeps what decoded before the error (real-world files often
    have a damaged tail); a stream that yields nothing raises MediaError.
    """
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot open {Path(path).name}: {error_reason(exc)}") from exc
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        # Resample keeping the channels, then average them: FFmpeg's mono downmix sums channels
        # (+3 dB on stereo, peaks above full scale), which would distort levels and transcription.
        resampler = av.AudioResampler(format="fltp", rate=sr)
        chunks: list[np.ndarray] = []
        total, limit = 0, None if max_seconds is None else int(max_seconds * sr)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().mean(axis=0)
                    chunks.append(arr)
                    total += arr.size
                if limit is not None and total >= limit:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
        except (av.error.FFmpegError, ValueError) as exc:
            if not chunks:
                raise MediaError(f"cannot decode audio of {Path(path).name}: {error_reason(exc)}") from exc
    if not chunks:
        return np.zeros(0, np.float32)
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    return wave[:limit] if limit is not None else wave
