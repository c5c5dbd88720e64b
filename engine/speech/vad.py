"""Voice-activity detection: Silero VAD as bundled (ONNX) with faster-whisper, so nothing is fetched."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000


def speech_spans(audio: np.ndarray, min_silence_ms: int = 500,
                 pad_ms: int = 200) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in float32 mono 16 kHz ``audio``."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio.size == 0:
        return []
    options = VadOptions(min_silence_duration_ms=min_silence_ms, speech_pad_ms=pad_ms)
    spans = get_speech_timestamps(np.ascontiguousarray(audio, dtype=np.float32), options)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]


def speech_seconds(audio: np.ndarray) -> float:
    return sum(end - start for start, end in speech_spans(audio))
