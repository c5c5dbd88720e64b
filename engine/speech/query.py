"""Spoken queries: what the user said into the microphone (or in an audio file), if anything."""

from __future__ import annotations

import numpy as np

from engine.speech.transcribe import SAMPLE_RATE, as_model_input, get_transcriber
from engine.speech.vad import speech_seconds

MIN_SPEECH_S = 0.3  # shorter voiced bits are clicks and breaths, not a query
QUERY_BEAM = 5  # a query is a few seconds: a wider beam costs little and fixes short phrases
_PAD_S = 0.5  # recordings often start mid-word; silence around them steadies the first words


def spoken_text(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, device: str = "cpu") -> str | None:
    """The transcript of ``wave`` when it contains speech; None for claps, humming, barking, silence."""
    audio = as_model_input(wave, sample_rate)
    if speech_seconds(audio) < MIN_SPEECH_S:
        return None
    pad = np.zeros(int(_PAD_S * SAMPLE_RATE), np.float32)
    padded = np.concatenate([pad, audio, pad])
    segments = get_transcriber(device).utterance(padded, beam_size=QUERY_BEAM)
    text = " ".join(s.text for s in segments).strip()
    return text or None


def speech_fraction(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Share of a recording that is voice (0..1).

    For fusing a spoken query: the sound-alike channel of a recording that is mostly speech says
    only "this sounds like a voice", so it deserves little weight next to the transcript's hits.
    """
    audio = as_model_input(wave, sample_rate)
    return 0.0 if audio.size == 0 else min(1.0, speech_seconds(audio) * SAMPLE_RATE / audio.size)
