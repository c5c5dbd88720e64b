"""Noisy copies of the training clips' sound: what a heads-only run needs to learn that a sound
recorded through a microphone (with a room's noise floor) is still the same sound.

Why: the library's clips are mostly clean sound tracks, while a query is a fresh recording with a
noise floor. A noise floor fills the quiet parts of the log-mel spectrogram, and the Whisper frame
mean that the heads read moves a long way (in the tones scenario of issue 9, a tone at 30 dB over
white noise had a cosine of 0.5 to clean copies of *every* tone, its own one no longer the
nearest). Stored features cannot show the model that shift, so before training the sound of (a
capped sample of) the training videos is decoded again, a noise floor of a random colour and level
is added, and it goes through the same Whisper encoder and pooling as at indexing time. During
training each clip's sound is then, with probability ``probability``, one of its noisy copies
instead of the stored feature (an augmentation, as in audio-visual self-supervision): the picture
learns to sit near its sound with and without a noise floor. Held-out videos are never touched.

Cost: decoding and Whisper only (no CNN), ``copies`` passes over at most ``max_seconds`` of sound.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.errors import MediaError
from engine.jobs import CancelToken, Progress
from engine.train.data import Batch, TrainingData

NOISE_COLOURS = ("white", "pink", "brown")
SNR_RANGE_DB = (10.0, 40.0)   # a loud room to a quiet one, relative to the sound track's level
MIN_LEVEL = 1e-3              # the level noise is relative to when a track is (nearly) silent


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS noise with a 1/f^0 (white), 1/f (pink) or 1/f^2 (brown) power spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    power = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (power / 2.0), n)
    noise -= noise.mean()
    return (noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)).astype(np.float32)


def with_noise_floor(wave: np.ndarray, snr_db: float, colour: str, rng: np.random.Generator) -> np.ndarray:
    """``wave`` plus ``colour`` noise ``snr_db`` below its RMS level (at least MIN_LEVEL)."""
    level = max(float(np.sqrt(np.mean(wave.astype(np.float64) ** 2))) if wave.size else 0.0, MIN_LEVEL)
    noisy = wave + coloured_noise(wave.size, colour, rng) * level * 10.0 ** (-snr_db / 20.0)
    return np.clip(noisy, -1.0, 1.0).astype(np.float32)


@dataclass
class NoisyAudio:
    """Noisy audio features of the training rows, and how often a batch uses them."""

    variants: torch.Tensor  # [N, V, audio_dim] float16: V noisy copies of each training row's feature
    ready: torch.Tensor     # [N] bool: the row has copies (its video was in the sample)
    probability: float
    seed: int = 0

    def apply(self, batch: Batch, rows: np.ndarray, step: int) -> Batch:
        """``batch`` with some clips' sound replaced by a noisy copy; reproducible from (seed, step)."""
        if len(batch.audio_rows) == 0:
            return batch
        rng = np.random.default_rng([self.seed, 104729, step])
        train_rows = np.asarray(rows)[batch.audio_rows.cpu().numpy()]
        use = self.ready[torch.from_numpy(train_rows)].numpy() & (rng.random(len(train_rows)) < self.probability)
        if not use.any():
            return batch
        which = rng.integers(self.variants.shape[1], size=len(train_rows))
        audio = batch.audio.clone()
        picked = torch.from_numpy(np.flatnonzero(use))
        copies = self.variants[torch.from_numpy(train_rows[use]), torch.from_numpy(which[use])]
        audio[picked] = copies.to(audio.device, audio.dtype)
        batch.audio = audio
        return batch

    def summary(self) -> dict:
        return {"rows": int(self.ready.sum()), "copies": int(self.variants.shape[1]), "probability": self.probability}


def _video_sample(video_ids: list[int], durations: dict[int, float], max_seconds: float) -> list[int]:
    """Videos in a fixed pseudo-random order, as many as fit in ``max_seconds`` of sound (at least one)."""
    order = sorted(video_ids, key=lambda v: hashlib.sha1(f"noisy:{v}".encode()).hexdigest())
    chosen, total = [], 0.0
    for v in order:
        if chosen and total + durations.get(v, 0.0) > max_seconds:
            continue
        chosen.append(v)
        total += durations.get(v, 0.0)
    return chosen


def _pooled_copies(whisper, wave: np.ndarray, windows: list[tuple[float, float]], copies: int,
                   rng: np.random.Generator, token: CancelToken) -> list[np.ndarray]:
    """``copies`` noisy versions of one video's sound, each pooled over ``windows`` as indexing
    pools a clip (Whisper frames of the whole file, then the frames inside each window)."""
    out = []
    for _ in range(copies):
        colour = NOISE_COLOURS[int(rng.integers(len(NOISE_COLOURS)))]
        noisy = with_noise_floor(wave, float(rng.uniform(*SNR_RANGE_DB)), colour, rng)
        out.append(whisper.pool(whisper.frame_features(noisy, token), windows))
    return out


def noisy_copies(conn, whisper_of: Callable[[], object], data: TrainingData, *, copies: int, max_seconds: float,
                 probability: float, seed: int, token: CancelToken) -> Iterator[Progress]:
    """Generator of Progress (stage "prepare") that returns the :class:`NoisyAudio` of ``data``'s rows
    (the training rows only: the caller passes the training part of the split). ``whisper_of()``
    gives the Whisper encoder (``frame_features``, ``pool``); it is only asked for once a video's
    sound has decoded, so a library whose files are all gone never loads it."""
    from engine.media.audio import load_audio

    keys = data.keys.numpy()
    with_sound = sorted({int(v) for v in keys[data.has_audio.numpy(), 0]})
    wanted = set(with_sound)  # (no IN list: a big library has more videos than SQL variables)
    info = {int(r[0]): (r[1], float(r[2] or 0.0)) for r in conn.execute("SELECT id, path, duration FROM videos")
            if int(r[0]) in wanted}
    sample = _video_sample([v for v in with_sound if v in info], {v: d for v, (_p, d) in info.items()}, max_seconds)
    variants = torch.zeros((len(data), copies, data.audio.shape[1]), dtype=torch.float16)
    ready = torch.zeros(len(data), dtype=torch.bool)
    t0, whisper, n_done = time.perf_counter(), None, 0
    for done, video_id in enumerate(sample):
        token.raise_if_cancelled()
        yield Progress(stage="prepare", done=done, total=len(sample), unit="videos",
                       message="making noisy copies of the training videos' sound")
        rows = np.flatnonzero((keys[:, 0] == video_id) & data.has_audio.numpy())
        windows = {int(r[0]): (float(r[1]), float(r[2])) for r in conn.execute(
            "SELECT idx, start, end FROM clips WHERE video_id=?", (video_id,))}
        idx = keys[rows, 1]
        try:
            wave = load_audio(Path(info[video_id][0]), token=token)
        except (MediaError, OSError):  # a file gone or broken since indexing: it just gets no copies
            continue
        if wave is None or wave.size == 0 or not all(int(i) in windows for i in idx):
            continue
        whisper = whisper or whisper_of()
        pooled = _pooled_copies(whisper, wave, [windows[int(i)] for i in idx], copies,
                                np.random.default_rng([seed, 7561, video_id]), token)
        for c, copy in enumerate(pooled):
            feature = data.audio[rows].float().clone()   # keep any stored part the pooling does not give
            feature[:, : copy.shape[1]] = torch.from_numpy(copy)
            variants[rows, c] = feature.half()
        ready[rows] = True
        n_done += 1
    yield Progress(stage="prepare", done=len(sample), total=len(sample), unit="videos",
                   message=f"noisy copies of {n_done} videos' sound in {time.perf_counter() - t0:.1f} s")
    return NoisyAudio(variants, ready, probability, seed) if n_done else None
