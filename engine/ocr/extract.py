"""A video -> the text on its screen, as de-duplicated spans per clip.

Frames are read at ``frames_per_clip`` evenly spaced times per clip (the CNN's frame times with
the default 2). A frame nearly identical to the last frame read is not read again (gate.py). A
frame's text is its lines in reading order; consecutive frames whose text is the same (or nearly:
OCR of one title varies by a letter from frame to frame) form one span, cut at clip boundaries so
each stored row belongs to one clip. A run's time range reaches from the sample before it to the
sample after it (where the text was not shown): it covers the whole time the text was on screen.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.jobs import CancelToken
from engine.media.clips import frame_times
from engine.ocr.frames import ocr_frames
from engine.ocr.gate import FrameMemory, thumbnail
from engine.ocr.reader import MAX_SIDE, TextLine, TextReader

FRAMES_PER_CLIP = 2
SAME_TEXT = 0.8            # difflib ratio above which two frames' texts are one text
LINE_SEPARATOR = " | "


@dataclass
class ScreenText:
    """Text on screen over [start, end] within one clip."""

    start: float
    end: float
    text: str
    confidence: float
    frames: int = 1                       # frames read that showed it
    vec: np.ndarray | None = field(default=None, repr=False)   # text-tower vector, set before storing


@dataclass
class ReadStats:
    frames: int = 0        # sampled
    read: int = 0          # sent to the OCR engine
    same: int = 0          # skipped: nearly identical to the last frame read


def sample_times(windows: list[tuple[float, float]], frames_per_clip: int) -> list[float]:
    """Sorted, distinct times (a video's last clip is stretched back over the one before it)."""
    return sorted({round(t, 3) for w in windows for t in frame_times(w, frames_per_clip)})


def read_video(path: Path, windows: list[tuple[float, float]], reader: TextReader,
               frames_per_clip: int = FRAMES_PER_CLIP, token: CancelToken | None = None,
               stats: ReadStats | None = None) -> list[ScreenText]:
    """The de-duplicated text on screen, clip by clip. Raises MediaError when the file cannot be read."""
    times = sample_times(windows, frames_per_clip)
    observed = _observe(path, times, reader, token, stats if stats is not None else ReadStats())
    return spans_from_observations(observed, windows)


def _observe(path: Path, times: list[float], reader: TextReader, token: CancelToken | None,
             stats: ReadStats) -> list[tuple[float, list[TextLine]]]:
    memory, lines, out = FrameMemory(), [], []
    for t, frame in ocr_frames(path, times, MAX_SIDE, token):
        stats.frames += 1
        thumb = thumbnail(frame)
        if memory.same_as_last(thumb):
            stats.same += 1
        else:
            lines = reader.read(frame)
            stats.read += 1
            memory.remember(thumb)
        out.append((t, lines))
    return out


def spans_from_observations(observed: list[tuple[float, list[TextLine]]],
                            windows: list[tuple[float, float]]) -> list[ScreenText]:
    """Join runs of frames showing the same text, cut at clip boundaries (module docstring)."""
    texts = [LINE_SEPARATOR.join(ln.text for ln in lines) for _, lines in observed]
    confs = [float(np.mean([ln.confidence for ln in lines])) if lines else 0.0 for _, lines in observed]
    spans: list[ScreenText] = []
    i = 0
    while i < len(observed):
        if not texts[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(observed) and texts[j + 1] and same_text(texts[i], texts[j + 1]):
            j += 1
        spans += _run_spans(observed, texts, confs, i, j, windows)
        i = j + 1
    return spans


def _run_spans(observed: list, texts: list[str], confs: list[float], first: int, last: int,
               windows: list[tuple[float, float]]) -> list[ScreenText]:
    """One span per clip for the run of frames first..last. The run reaches back to the sample
    before it and on to the sample after it (the text appeared and went somewhere between)."""
    start = observed[first - 1][0] if first > 0 else windows[0][0]
    end = observed[last + 1][0] if last + 1 < len(observed) else windows[-1][1]
    by_clip: dict[int, list[int]] = {}
    for k in range(first, last + 1):
        by_clip.setdefault(_clip_of(observed[k][0], windows), []).append(k)
    clips = sorted(by_clip)
    spans = []
    for n, clip in enumerate(clips):
        members = by_clip[clip]
        lo = start if n == 0 else windows[clip][0]
        hi = end if n == len(clips) - 1 else windows[clip][1]
        best = max(members, key=lambda k: confs[k])  # the clearest reading of the text
        spans.append(ScreenText(lo, hi, texts[best], float(np.mean([confs[k] for k in members])), len(members)))
    return spans


def same_text(a: str, b: str) -> bool:
    return a == b or difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= SAME_TEXT


def _clip_of(t: float, windows: list[tuple[float, float]]) -> int:
    """Index of the window holding ``t`` (the first, for the overlap of a stretched last clip)."""
    for k, (s, e) in enumerate(windows):
        if s <= t < e:
            return k
    return len(windows) - 1
