"""A clip that matched a query, and why: what every search channel returns.

It sits at the bottom of the engine so the channels' sources (the vector indexes, the transcript
store in engine.speech, the on-screen text store in engine.ocr) can produce hits without importing
the search layer that fuses them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClipHit:
    clip_id: int
    video_id: int
    start: float
    end: float
    score: float
    reason: str = "seen"          # seen | heard | said | read
    snippet: str | None = None    # matching transcript or on-screen words, for 'said'/'heard'/'read'
    also: tuple[str, ...] = ()    # other channels that matched this clip nearly as well
    standardised: bool = False    # score already on the common scale (see the search fusion step)
    exact: bool = False           # a transcript hit that contains every content word of the query
    read_text: str | None = None  # on-screen words of this clip's 'read' match (kept when another channel wins)
