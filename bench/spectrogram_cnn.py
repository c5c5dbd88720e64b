"""The spectrogram CNN feature the library no longer stores, for the tuning benchmarks that compare it.

Backbone v2 stored, after each clip's Whisper mean + std (768), the ImageNet EfficientNet-Lite0 of
the vision tower on the clip's log-mel spectrogram drawn as an image (1280). No head read it
(bench/tune_audio.py chose the Whisper mean on the tune split), so indexing stopped computing it;
these functions compute it exactly as v2 indexing did, so those comparisons stay reproducible on
any library: ``v2_audio_features`` gives v2's 2048-d layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.models.audio import MIN_SAMPLES, SAMPLE_RATE

SPEC_SIZE = 224


def spectrogram_image(log_mel: np.ndarray, size: int = SPEC_SIZE) -> np.ndarray:
    """Whisper log-mel [80, T] (about -1..1) -> uint8 RGB [size, size, 3], low frequencies at the bottom."""
    import cv2

    img = cv2.resize(log_mel.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)[::-1]
    img = (np.clip((img + 1.0) / 2.0, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2)


def spectrogram_features(model, wave: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    """float32 [N, 1280]: each window's log-mel spectrogram image through the vision CNN."""
    extractor = model.whisper.extractor
    images = []
    for s, e in windows:
        a = int(s * SAMPLE_RATE)
        seg = wave[a:max(a + MIN_SAMPLES, int(e * SAMPLE_RATE))]
        images.append(spectrogram_image(extractor(seg, padding=0)))
    return model.vision.features(np.stack(images)).numpy()


def v2_audio_features(model, wave: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    """float32 [N, 2048]: Whisper mean + std, then the spectrogram CNN (backbone v2's stored layout)."""
    whisper = model.audio_features(wave, windows).numpy()
    return np.concatenate([whisper, spectrogram_features(model, wave, windows)], axis=1).astype(np.float32)


def with_spectrogram_half(model, paths: list[str], windows: list[tuple[float, float]],
                          stored: np.ndarray) -> np.ndarray:
    """Stored clip features [N, 768] (backbone v3) -> [N, 2048] with the spectrogram CNN of each
    clip's window appended (decoding each file's audio once); stored v2 features pass through."""
    if stored.shape[1] >= 2048:
        return stored
    from engine.media.audio import load_audio

    half = np.zeros((len(paths), 1280), np.float32)
    by_path: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        by_path.setdefault(p, []).append(i)
    for path, rows in by_path.items():
        wave = load_audio(Path(path), SAMPLE_RATE)
        half[rows] = spectrogram_features(model, wave, [windows[i] for i in rows])
    return np.concatenate([stored, half], axis=1)
