"""Generate small test videos with known content (PyAV; no system ffmpeg needed).

``make_video`` draws a coloured shape on a plain background and muxes a sound: a pure tone,
noise bursts, or silence / no audio track at all.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16000


def _frame(size: tuple[int, int], color: tuple[int, int, int], shape: str, t: float,
           background: tuple[int, int, int]) -> np.ndarray:
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = background
    cx = int(w * (0.35 + 0.3 * (0.5 + 0.5 * np.sin(t))))  # the shape drifts, so frames differ
    cy, r = h // 2, min(w, h) // 4
    yy, xx = np.mgrid[0:h, 0:w]
    if shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    elif shape == "square":
        mask = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
    elif shape == "stripes":
        mask = ((xx // 8) % 2) == 0
    else:
        raise ValueError(f"unknown shape {shape}")
    img[mask] = color
    return img


def make_audio(seconds: float, tone_hz: float | None = 440.0, noise: bool = False, seed: int = 0) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if noise:
        rng = np.random.default_rng(seed)
        gate = (np.floor(t * 4) % 2 == 0).astype(np.float32)  # 125 ms bursts, 4 per second
        return (0.3 * rng.standard_normal(n) * gate).astype(np.float32)
    if tone_hz is None:
        return np.zeros(n, np.float32)
    return (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)


def make_video(path: str | Path, color: tuple[int, int, int] = (255, 0, 0), shape: str = "square",
               tone_hz: float | None = 440.0, noise: bool = False, seconds: float = 8.0,
               size: tuple[int, int] = (160, 120), fps: int = 10, audio: bool = True,
               background: tuple[int, int, int] = (255, 255, 255), codec: str = "libx264",
               rotate: int | None = None, audio_wave: np.ndarray | None = None,
               frames: list[np.ndarray] | None = None) -> Path:
    """Write a test video. ``frames`` (RGB arrays) overrides the drawn shape; ``audio_wave``
    (float32 mono at 16 kHz) overrides the tone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        vs = container.add_stream(codec, rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        if rotate is not None:
            # A display matrix, as phones write it (FFmpeg 7 no longer turns a 'rotate' tag into
            # one). ``rotate`` is clockwise like the legacy tag; the matrix angle counter-clockwise.
            vs.set_display_rotation(-rotate)
        as_ = None
        if audio:
            acodec = "libopus" if path.suffix == ".webm" else ("mp3" if path.suffix == ".avi" else "aac")
            as_ = container.add_stream(acodec, rate=48000 if acodec == "libopus" else SAMPLE_RATE)
            as_.layout = "mono"
        n_frames = int(seconds * fps) if frames is None else len(frames)
        for i in range(n_frames):
            img = frames[i] if frames is not None else _frame(size, color, shape, i / fps, background)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        if as_ is not None:
            wave = audio_wave if audio_wave is not None else make_audio(seconds, tone_hz, noise)
            _write_audio(container, as_, wave)
    return path


def _write_audio(container, stream, wave: np.ndarray) -> None:
    rate = stream.codec_context.sample_rate
    if rate != SAMPLE_RATE:
        idx = np.arange(int(len(wave) * rate / SAMPLE_RATE)) * SAMPLE_RATE / rate
        wave = np.interp(idx, np.arange(len(wave)), wave).astype(np.float32)
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
    chunk = 1024
    pts = 0
    for start in range(0, len(wave), chunk):
        block = wave[start:start + chunk].reshape(1, -1).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        pts += block.shape[1]
        for rf in resampler.resample(frame):
            for packet in stream.encode(rf):
                container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_wav(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """16-bit PCM WAV of ``wave``: float [N] (mono) or [N, channels] in -1..1."""
    import wave as wavmod

    path = Path(path)
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    with wavmod.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path
