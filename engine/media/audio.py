"""Decode a file's first audio stream to mono float32 at 16 kHz with PyAV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from engine.errors import MediaError, error_reason
from engine.jobs import CancelToken, checked

SAMPLE_RATE = 16000
# Decoded frames are gathered into blocks this long before resampling: one resampler call per
# block instead of one per ~1024-sample codec frame, whose Python overhead was most of the cost.
BLOCK_SECONDS = 10.0


def load_audio(path: Path, sr: int = SAMPLE_RATE, max_seconds: float | None = None,
               token: CancelToken | None = None) -> np.ndarray | None:
    """Mono float32 in [-1, 1] at ``sr``; None when the file has no audio stream.

    A stream that breaks mid-way keeps what decoded before the error (real-world files often
    have a damaged tail); a stream that yields nothing raises MediaError. ``token``: raise
    Cancelled mid-file when it is set.
    """
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot open {Path(path).name}: {error_reason(exc)}") from exc
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        limit = None if max_seconds is None else int(max_seconds * sr)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        chunks: list[np.ndarray] = []
        try:
            for block, rate in _mono_blocks(container, stream, sr, limit, token):
                chunks.extend(_resample(resampler, block, rate))
        except (av.error.FFmpegError, ValueError) as exc:
            if not chunks:
                raise MediaError(f"cannot decode audio of {Path(path).name}: {error_reason(exc)}") from exc
        if chunks:
            chunks.extend(_resample(resampler, None, 0))  # the resampler's buffered tail
    if not chunks:
        return np.zeros(0, np.float32)
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    return wave[:limit] if limit is not None else wave


def _mono_blocks(container, stream, sr: int, limit: int | None,
                 token: CancelToken | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """(mono float32 block at the source rate, that rate), about BLOCK_SECONDS each.

    Channels are averaged before resampling: the same result as resampling each channel and then
    averaging (both are linear), at a fraction of the work. FFmpeg's own mono downmix would sum
    channels instead (+3 dB on stereo, peaks above full scale), distorting levels and transcription.
    A change of rate or channel count mid-stream ends the audio there, as a resampler set up for
    the first frames would.
    """
    pending: list[np.ndarray] = []
    shape, rate, count, total = None, 0, 0, 0
    try:
        for frame in checked(container.decode(stream), token):
            if shape is None:
                shape, rate = (frame.sample_rate, len(frame.layout.channels)), frame.sample_rate
            elif (frame.sample_rate, len(frame.layout.channels)) != shape:
                break
            pending.append(_channels(frame))
            count += frame.samples
            total += frame.samples
            if count >= BLOCK_SECONDS * rate:
                yield _downmix(pending), rate
                pending, count = [], 0
            if limit is not None and total * sr >= (limit + 1) * rate:
                break
    except (av.error.FFmpegError, ValueError):
        if pending:
            yield _downmix(pending), rate  # keep what decoded before the damage
        raise
    if pending:
        yield _downmix(pending), rate


def _channels(frame: av.AudioFrame) -> np.ndarray:
    """float32 [channels, samples] in [-1, 1], whatever the decoder's sample format."""
    a = frame.to_ndarray()
    if frame.format.is_packed:
        a = a.reshape(-1, len(frame.layout.channels)).T
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    if a.dtype.kind == "u":  # unsigned 8-bit: silence is 128
        return (a.astype(np.float32) - 128.0) / 128.0
    return a.astype(np.float32) / np.float32(2 ** (8 * a.itemsize - 1))


def _downmix(blocks: list[np.ndarray]) -> np.ndarray:
    joined = np.concatenate(blocks, axis=1)
    return joined[0] if len(joined) == 1 else joined.mean(axis=0, dtype=np.float32)


def _resample(resampler: av.AudioResampler, block: np.ndarray | None, rate: int) -> list[np.ndarray]:
    """Resampled mono chunks for one block; ``None`` flushes the resampler."""
    frame = None
    if block is not None:
        frame = av.AudioFrame.from_ndarray(block[None], format="flt", layout="mono")
        frame.sample_rate = rate
    return [out.to_ndarray()[0] for out in resampler.resample(frame)]


RESAMPLE_CHUNK = 1 << 16  # samples handed to the resampler per call


def resample(wave: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited sample-rate conversion of mono float32 (libswresample, the same path
    ``load_audio`` takes); no aliasing, unlike linear interpolation. The one resampler of the engine:
    decoded files, microphone recordings and query arrays all go through it."""
    wave = np.ascontiguousarray(wave, dtype=np.float32).reshape(-1)
    if src_rate == dst_rate or wave.size == 0:
        return wave.copy()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=dst_rate)
    chunks: list[np.ndarray] = []
    for i in range(0, wave.size, RESAMPLE_CHUNK):
        chunks.extend(_resample(resampler, wave[i:i + RESAMPLE_CHUNK], src_rate))
    chunks.extend(_resample(resampler, None, 0))  # the resampler's buffered tail
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
