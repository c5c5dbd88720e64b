"""Read a video's facts (duration, size, frame rate, rotation, audio) without decoding it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from engine.errors import MediaError, NoVideoStreamError, error_reason


@dataclass(frozen=True)
class VideoInfo:
    duration: float
    width: int
    height: int
    fps: float
    rotation: int
    has_audio: bool
    video_codec: str
    audio_codec: str | None


def probe(path: Path) -> VideoInfo:
    """Facts from the container headers (PyAV). Raises MediaError for unreadable files."""
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise NoVideoStreamError(f"no video stream in {path.name}")
            vs = container.streams.video[0]
            if vs.codec_context is None:
                raise MediaError(f"{path.name}: its video codec is unknown or damaged")
            duration = _duration(container, vs)
            fps = float(vs.average_rate or vs.guessed_rate or 0) or 25.0
            audio = container.streams.audio[0] if container.streams.audio else None
            if audio is not None and audio.codec_context is None:
                audio = None  # an audio track no decoder reads: indexed as silent
            rotation = _rotation(container, vs)
            w, h = vs.codec_context.width, vs.codec_context.height
            if rotation in (90, 270):
                w, h = h, w
            _check_sane(path, container.format.name, w, h)
            return VideoInfo(_plausible_duration(path, duration), w, h, fps if 0 < fps <= MAX_FPS else 25.0,
                             rotation, audio is not None, vs.codec_context.name,
                             audio.codec_context.name if audio is not None else None)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(f"cannot read {path.name}: {error_reason(exc)}") from exc


MAX_PIXELS = 8192 * 8192      # beyond 8K x 8K a header is lying (or the file is not for us)
MAX_FPS = 1000.0
MIN_BYTES_PER_SECOND = 64     # no real video stores a second in fewer bytes than this


def _check_sane(path: Path, format_name: str, width: int, height: int) -> None:
    """Refuse what FFmpeg reads but is not a video to index: a still image named like a video,
    or a header whose picture size would need absurd memory."""
    if format_name.endswith("_pipe") or format_name in ("image2", "gif", "webp"):
        raise MediaError(f"{path.name} is an image ({format_name}), not a video")
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise MediaError(f"{path.name} declares an absurd picture size ({width}x{height})")


def _plausible_duration(path: Path, duration: float) -> float:
    """A header duration the file cannot hold (hours of video in a few bytes) is not believed:
    0 means unknown, and the frame reader then measures the real length while decoding."""
    try:
        size = path.stat().st_size
    except OSError:
        return duration
    if duration != duration or duration < 0 or size < duration * MIN_BYTES_PER_SECOND:
        return 0.0
    return duration


def _duration(container, vs) -> float:
    if vs.duration is not None and vs.time_base is not None:
        d = float(vs.duration * vs.time_base)
        if d > 0:
            return d
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    if vs.frames and vs.average_rate:
        return vs.frames / float(vs.average_rate)
    return 0.0  # unknown: the frame reader measures it while decoding


def _rotation(container, vs) -> int:
    """Clockwise display rotation of phone videos, in {0, 90, 180, 270}: the legacy 'rotate' tag,
    else the display matrix, which FFmpeg 7 reports only on decoded frames (PyAV's counter-clockwise
    ``frame.rotation``), so the first frame is decoded for it (a few milliseconds)."""
    try:
        tagged = vs.metadata.get("rotate")
        if tagged is not None:
            return int(float(tagged)) % 360
    except (TypeError, ValueError):
        pass
    try:
        frame = next(container.decode(vs), None)
    except (av.error.FFmpegError, ValueError):
        return 0  # the frame reader will report the damage
    return 0 if frame is None else round(-float(frame.rotation or 0)) % 360
