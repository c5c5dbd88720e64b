"""Decode one video into what the models need: clip windows, sampled frames, 16 kHz audio."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import MediaError
from engine.jobs import CancelToken
from engine.media.audio import load_audio
from engine.media.clips import clip_windows, frame_times
from engine.media.deadline import DeadlineToken, DecodeTimeout, decode_budget
from engine.media.frames import measure_duration, sample_frames
from engine.media.probe import probe


@dataclass
class DecodedVideo:
    path: Path
    info: dict
    windows: list[tuple[float, float]]
    frames: np.ndarray            # uint8 [N, T, S, S, 3]
    audio: np.ndarray | None      # float32 mono 16 kHz, None without an audio stream


def decode_video(path: Path, clip_seconds: float, frames_per_clip: int, image_size: int,
                 sample_rate: int = 16000, token: CancelToken | None = None,
                 on_audio: Callable[[np.ndarray | None], None] | None = None) -> DecodedVideo:
    """``on_audio`` gets the audio (None without any) as soon as it is decoded, before the frames:
    the indexer starts transcribing while the frames decode. A broken audio track is still
    reported after the frames, so a file broken in both streams is reported by its picture."""
    info = probe(path)
    duration = info.duration if info.duration > 0 else measure_duration(path)
    if duration <= 0:
        raise MediaError(f"{path.name} has no frames")
    token = DeadlineToken(token, decode_budget(duration), path.name)  # a damaged file cannot stall the job
    windows = clip_windows(duration, clip_seconds)
    audio, audio_error = _audio_track(path, info.has_audio, sample_rate, token)
    if on_audio is not None and audio_error is None:
        on_audio(audio)
    times = [t for w in windows for t in frame_times(w, frames_per_clip)]
    frames = sample_frames(path, times, image_size, token)
    frames = frames.reshape(len(windows), frames_per_clip, image_size, image_size, 3)
    if audio_error is not None:
        raise audio_error
    facts = {"duration": duration, "width": info.width, "height": info.height, "fps": info.fps,
             "rotation": info.rotation, "has_audio": audio is not None}
    return DecodedVideo(path, facts, windows, frames, audio)


def _audio_track(path: Path, has_audio: bool, sample_rate: int,
                 token: CancelToken) -> tuple[np.ndarray | None, MediaError | None]:
    """(audio or None, the MediaError that broke it): an empty or all-zero track is None, since it
    carries nothing to learn or match. Running out of time or being cancelled raise at once."""
    if not has_audio:
        return None, None
    try:
        audio = load_audio(path, sample_rate, token=token)
    except DecodeTimeout:
        raise
    except MediaError as exc:
        return None, exc
    if audio is not None and (audio.size < sample_rate // 10 or not np.any(audio)):
        audio = None
    return audio, None
