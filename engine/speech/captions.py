"""Sound captions: the bracketed descriptions Whisper writes when non-speech tokens are allowed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.speech.transcribe import Segment

# "(dog barking)", "[APPLAUSE]", "*laughs*"; music notes stand for music.
_BRACKETED = re.compile(r"\(([^()]{2,60})\)|\[([^\[\]]{2,60})\]|\*([^*]{2,40})\*")
_MUSIC_NOTES = re.compile(r"[♪♫♬]")

# Captions that describe nothing (the model's way of saying "no speech here") or that it writes
# whatever it hears; searching for them would only match noise.
_MEANINGLESS = {
    "blank_audio", "blank audio", "blank", "silence", "silent", "no audio", "no sound", "sound", "sounds",
    "inaudible", "indistinct", "unintelligible", "no speech", "pause", "sighs softly", "end", "static",
    "background noise", "noise",
}
_MAX_WORDS = 6  # longer "captions" are stage directions or garbled speech, not a sound


def normalise_caption(raw: str) -> str | None:
    text = re.sub(r"[_\s]+", " ", raw).strip(" .,!-").lower()
    if not text or text in _MEANINGLESS or len(text.split()) > _MAX_WORDS:
        return None
    if not re.search(r"[a-z]", text):
        return None
    return text


def extract_captions(text: str) -> list[str]:
    """Captions in ``text``, brackets stripped and lower-cased, meaningless ones dropped."""
    found = []
    for match in _BRACKETED.finditer(text):
        caption = normalise_caption(next(g for g in match.groups() if g))
        if caption and caption not in found:
            found.append(caption)
    if _MUSIC_NOTES.search(text) and "music" not in " ".join(found):
        found.append("music")
    return found


def merge_repeated(segments: list[Segment], max_gap: float = 1.0) -> list[Segment]:
    """Join runs of the same caption ("(coughing)" every 2 s) into one longer segment."""
    merged: list[Segment] = []
    for seg in sorted(segments, key=lambda s: s.start):
        prev = next((m for m in reversed(merged) if m.text == seg.text), None)
        if prev is not None and seg.start <= prev.end + max_gap:
            prev.end = max(prev.end, seg.end)
            prev.avg_logprob = max(prev.avg_logprob, seg.avg_logprob)
            prev.no_speech_prob = min(prev.no_speech_prob, seg.no_speech_prob)
        else:
            merged.append(seg)
    return merged
