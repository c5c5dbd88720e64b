"""Decide whether a decoded window is real speech or a hallucination over music or noise.

Whisper's own rule (skip a window only when no-speech probability is high AND log-probability is
low) lets fluent nonsense through on music. We drop a segment when any of these holds:

* the model is unsure of its words: ``avg_logprob < min_logprob``;
* it thinks there is no speech: ``no_speech_prob > no_speech``, or moderately so while also
  unsure (``no_speech_prob > soft_no_speech and avg_logprob < soft_logprob``);
* the text repeats itself (``compression_ratio > max_compression``);
* its words are guesses on average (mean word probability < ``min_word_prob``);
* it is one of tiny.en's stock hallucinations ("thank you for watching", "subscribe", ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GateThresholds:
    min_logprob: float = -1.0
    no_speech: float = 0.6
    soft_no_speech: float = 0.45
    soft_logprob: float = -0.6
    max_compression: float = 2.2
    min_word_prob: float = 0.4


# Phrases tiny.en writes over silence and music (seen on the shared media and widely reported).
_HALLUCINATIONS = [
    r"thanks? (you )?(so much |very much )?for watching",
    r"see you (in the|next) (next )?(video|time)",
    r"(please )?(like and )?subscribe",
    r"subtitles? by",
    r"transcribed by",
    r"amara\.org",
    r"^(thank you|thanks|you|bye|okay|ok)[.!]?$",
]
_HALLUCINATION_RE = re.compile("|".join(f"(?:{p})" for p in _HALLUCINATIONS), re.IGNORECASE)


def is_stock_hallucination(text: str) -> bool:
    return bool(_HALLUCINATION_RE.search(text.strip()))


def keep_speech(text: str, avg_logprob: float, no_speech_prob: float, compression_ratio: float,
                word_probs: list[float], t: GateThresholds) -> bool:
    """True when a decoded segment is believable speech (see the module docstring for the rule)."""
    if not re.search(r"[A-Za-z0-9]", text):
        return False
    if avg_logprob < t.min_logprob or compression_ratio > t.max_compression:
        return False
    if no_speech_prob > t.no_speech:
        return False
    if no_speech_prob > t.soft_no_speech and avg_logprob < t.soft_logprob:
        return False
    if word_probs and sum(word_probs) / len(word_probs) < t.min_word_prob:
        return False
    return not is_stock_hallucination(text)
