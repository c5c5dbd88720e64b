"""Decode one video into what the models need: clip windows, sampled frames, 16 kHz audio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import MediaError
from engine.jobs import CancelToken
from engine.media.audio import load_audio
from engine.media.clips import clip_windows, frame_times
from engine.media.deadline import DeadlineToken, decode_budget
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
                 sample_rate: int = 16000, token: CancelToken | None = None) -> DecodedVideo:
    info = probe(path)
    duration = info.duration if info.duration > 0 else measure_duration(path)
    if duration <= 0:
        raise MediaError(f"{path.name} has no frames")
    token = DeadlineToken(token, decode_budget(duration), path.name)  # a damaged file cannot stall the job
    windows = clip_windows(duration, clip_seconds)
    times = [t for w in windows for t in frame_times(w, frames_per_clip)]
    frames = sample_frames(path, times, image_size, token)
    frames = frames.reshape(len(windows), frames_per_clip, image_size, image_size, 3)
    audio = load_audio(path, sample_rate, token=token) if info.has_audio else None
    if audio is not None and (audio.size < sample_rate // 10 or not np.any(audio)):
        audio = None  # an empty or all-zero track carries nothing to learn or match
    facts = {"duration": duration, "width": info.width, "height": info.height, "fps": info.fps,
             "rotation": info.rotation, "has_audio": audio is not None}
    return DecodedVideo(path, facts, windows, frames, audio)
