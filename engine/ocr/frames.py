"""Frames for OCR: at readable resolution with the aspect ratio kept (the CNN's 224 px centre
crops lose the sides of a 16:9 frame, where titles and scoreboards sit, and letters are too small).

One pass through the file with PyAV. Non-reference frames (B-frames) are never decoded: for
reading text the nearest *reference* frame is as good as the nearest frame (text stays on screen
for many frames), and it halves decoding of typical H.264. Frames are scaled down by the decoder's
scaler straight to the OCR size (no full-size RGB copy).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from engine.errors import MediaError
from engine.jobs import CancelToken, checked

SKIPPABLE = frozenset({"h264", "hevc", "libdav1d", "mpeg4", "mpeg2video"})
_UPRIGHT = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def ocr_frames(path: Path, times: list[float], max_side: int,
               token: CancelToken | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(time asked for, BGR frame with longest side <= ``max_side``) for each of the sorted
    ``times``; the decoded frame nearest each time (times past the end get the last frame)."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot open {path.name}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{path.name} has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_type, ctx.thread_count = "SLICE", 1  # the models use the other core
        if ctx.name in SKIPPABLE:
            ctx.skip_frame = "NONREF"
        try:
            yield from _nearest(checked(_timed(container.decode(stream), stream), token), times, max_side)
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot decode {path.name}: {exc}") from exc


def _timed(frames: Iterator[av.VideoFrame], stream) -> Iterator[tuple[float, av.VideoFrame]]:
    start, base = stream.start_time or 0, float(stream.time_base)
    step, last = 1.0 / float(stream.average_rate or 25), -1e9
    for frame in frames:
        t = last + step if frame.pts is None else (frame.pts - start) * base
        last = t = max(t, last + 1e-6)
        yield t, frame


def _nearest(frames: Iterator[tuple[float, av.VideoFrame]], times: list[float],
             max_side: int) -> Iterator[tuple[float, np.ndarray]]:
    i, prev = 0, None
    for t, frame in frames:
        while i < len(times) and t >= times[i]:
            pick = prev if prev is not None and times[i] - prev[0] < t - times[i] else (t, frame)
            yield times[i], _convert(pick[1], max_side)
            i += 1
        if i == len(times):
            return
        prev = (t, frame)
    if prev is not None:
        last = _convert(prev[1], max_side)
        for k in range(i, len(times)):
            yield times[k], last


def _convert(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    scale = min(1.0, max_side / max(frame.width, frame.height))
    w, h = max(2, round(frame.width * scale / 2) * 2), max(2, round(frame.height * scale / 2) * 2)
    bgr = frame.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()
    turn = _UPRIGHT.get(round(frame.rotation) % 360)
    return bgr if turn is None else cv2.rotate(bgr, turn)
