"""MMVModel: one tower per modality plus the FAC heads (see heads.py).

Backbone features (before the heads) are what the index stores; ``encode_*`` run backbone + heads
and return L2-normalised numpy vectors per space.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch

from engine.models.audio import AudioTower
from engine.models.config import ModelConfig
from engine.models.heads import FACHeads
from engine.models.text import TextBackbone
from engine.models.vision import VisionBackbone


class MMVModel:
    """Towers load on first use: a text search needs only the text tower and the heads, so a cold
    ``mmvsearch search --text`` does not pay for the vision and audio networks."""

    def __init__(self, cfg: ModelConfig, towers: dict[str, Callable[[], object]], heads: FACHeads, model_id: str,
                 device: torch.device, device_note: str = ""):
        self.config, self.heads = cfg, heads
        self.model_id, self.device, self.device_note = model_id, device, device_note
        self._factories, self._towers = towers, {}
        self._lock = threading.Lock()
        self.heads.eval()

    def _tower(self, name: str):
        with self._lock:
            if name not in self._towers:
                self._towers[name] = self._factories[name]()
            return self._towers[name]

    @property
    def vision(self) -> VisionBackbone:
        return self._tower("vision")

    @property
    def audio(self) -> AudioTower:
        return self._tower("audio")

    @property
    def text(self) -> TextBackbone:
        return self._tower("text")

    def load_all(self) -> None:
        """Load every tower now (before a long indexing job, or in the GUI's loading phase)."""
        for name in self._factories:
            self._tower(name)

    @property
    def backbone_id(self) -> str:
        return self.config.backbone_id

    # ---- backbone features (stored in the index) ----------------------------------------
    def video_features(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, T, S, S, 3] -> float32 [N, T, 1280]."""
        n, t = frames.shape[:2]
        return self.vision.features(frames.reshape(n * t, *frames.shape[2:])).reshape(n, t, -1)

    def clip_features(self, frames: np.ndarray, wave: np.ndarray | None, windows: list[tuple[float, float]],
                      whisper_frames: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Video [N, T, 1280] and audio [N, 2048] features of a video's clips, with a single CNN pass
        over the frames and the spectrogram images together (bigger batches, one call)."""
        n, t = frames.shape[:2]
        images = frames.reshape(n * t, *frames.shape[2:])
        if wave is not None:
            images = np.concatenate([images, self.audio.spectrogram_images(wave, windows)])
        feats = self.vision.features(images)
        vfeat = feats[: n * t].reshape(n, t, -1)
        if wave is None:
            return vfeat, None
        return vfeat, torch.from_numpy(self.audio.features(wave, windows, feats[n * t:].numpy(), whisper_frames))

    def audio_features(self, wave: np.ndarray, windows: list[tuple[float, float]]) -> torch.Tensor:
        """float32 mono 16 kHz + clip windows (s) -> float32 [N, 2048]."""
        return torch.from_numpy(self.audio.features(wave, windows))

    def text_features(self, texts: list[str]) -> np.ndarray:
        """-> float32 [N, 384] L2-normalised MiniLM features."""
        return self.text.features(texts)

    # ---- heads --------------------------------------------------------------------------
    @torch.inference_mode()
    def project_video(self, vfeat: torch.Tensor) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.heads.project_video(vfeat.float()).items()}

    @torch.inference_mode()
    def project_audio(self, afeat: torch.Tensor) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.heads.project_audio(afeat.float()).items()}

    @torch.inference_mode()
    def project_text(self, tfeat: np.ndarray) -> np.ndarray:
        return self.heads.project_text(torch.from_numpy(np.asarray(tfeat, np.float32))).numpy()

    # ---- end to end ---------------------------------------------------------------------
    def encode_video(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        return self.project_video(self.video_features(frames))

    def encode_image(self, image_rgb: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [S, S, 3] (already prepared) -> a one-frame clip (MMV's deflation)."""
        frames = np.repeat(image_rgb[None, None], self.config.frames_per_clip, axis=1)
        return self.encode_video(frames)

    def encode_audio(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """A whole recording as one clip."""
        dur = max(len(wave) / self.config.sample_rate, 0.2)
        return self.project_audio(self.audio_features(wave, [(0.0, dur)]))

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.project_text(self.text_features(texts))
