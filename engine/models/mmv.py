"""MMVModel: one tower per modality plus the FAC heads (see heads.py).

Backbone features (before the heads) are what the index stores; ``encode_*`` run backbone + heads
and return L2-normalised numpy vectors per space.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.models.audio import AudioTower, WhisperAudioBackbone
from engine.models.config import ModelConfig
from engine.models.heads import FACHeads
from engine.models.text import TextBackbone
from engine.models.vision import VisionBackbone


@dataclass
class ClipFeatures:
    video: torch.Tensor                # [N, T, 1280] frozen backbone (stored for every model)
    audio: torch.Tensor | None         # [N, 768], None without sound
    tuned_video: torch.Tensor | None   # [N, T, 1280] from the fine-tuned tail of a deep model

    @staticmethod
    def concat(parts: list[ClipFeatures]) -> ClipFeatures:
        """Join the features of consecutive chunks of one video's clips."""
        def cat(name: str) -> torch.Tensor | None:
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)

        return ClipFeatures(cat("video"), cat("audio"), cat("tuned_video"))


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
        # A deep fine-tuned model also has its own vision tail (see vision_tail.py); its video
        # features are then the tail's, and ``tail_id`` names the model that trained the tail.
        self.tail: torch.nn.Module | None = None
        self.tail_id: str | None = None

    def set_tail(self, tail: torch.nn.Module | None, tail_id: str | None) -> None:
        self.tail = None if tail is None else tail.to(self.device).eval()
        self.tail_id = tail_id if tail is not None else None

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
    def whisper(self) -> WhisperAudioBackbone:
        """The Whisper encoder alone (the audio tower's first half): all an audio query needs."""
        if "whisper" not in self._factories:
            return self.audio.whisper
        return self._tower("whisper")

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
        """uint8 [N, T, S, S, 3] -> float32 [N, T, 1280]: the features this model's heads take
        (the fine-tuned tail's for a deep model)."""
        n, t = frames.shape[:2]
        images = frames.reshape(n * t, *frames.shape[2:])
        if self.tail is not None:
            return self.vision.features_with_tail(images, self.tail, frozen_too=False)[1].reshape(n, t, -1)
        return self.vision.features(images).reshape(n, t, -1)

    def clip_features(self, frames: np.ndarray, wave: np.ndarray | None, windows: list[tuple[float, float]],
                      whisper_frames: np.ndarray | None = None) -> ClipFeatures:
        """Video [N, T, 1280] and audio [N, 768] features of a video's clips, the frames of all
        clips in one CNN call. A deep model adds its tail's video features (sharing the trunk
        pass with the frozen ones)."""
        n, t = frames.shape[:2]
        images = frames.reshape(n * t, *frames.shape[2:])
        tuned = None
        if self.tail is None:
            vfeat = self.vision.features(images)
        else:
            vfeat, tuned = self.vision.features_with_tail(images, self.tail)
            tuned = tuned.reshape(n, t, -1)
        vfeat = vfeat.reshape(n, t, -1)
        if wave is None:
            return ClipFeatures(vfeat, None, tuned)
        afeat = torch.from_numpy(self.audio.features(wave, windows, whisper_frames))
        return ClipFeatures(vfeat, afeat, tuned)

    def audio_features(self, wave: np.ndarray, windows: list[tuple[float, float]]) -> torch.Tensor:
        """float32 mono 16 kHz + clip windows (s) -> float32 [N, 768]."""
        return torch.from_numpy(self.audio.features(wave, windows))

    def text_features(self, texts: list[str]) -> np.ndarray:
        """-> float32 [N, 384] L2-normalised MiniLM features."""
        return self.text.features(texts)

    # ---- heads --------------------------------------------------------------------------
    def class_text_bank(self) -> np.ndarray:
        """[1000, 384] ConSE class-text vectors (the searcher's hubness correction)."""
        return self.heads.class_text.numpy()

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
        """A whole recording as one clip window: the Whisper encoder and the frame pooling of a clip
        (engine.models.audio.query_features)."""
        from engine.models.audio import query_features

        feats = query_features(self.whisper, wave, self.config.sample_rate)
        return self.project_audio(torch.from_numpy(feats))

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.project_text(self.text_features(texts))

    def text_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(the query's own text features [384], the S_vat vector that looks for *pictures* of it).
        The latter averages the query over QUERY_TEMPLATES, the style of the ConSE class texts;
        all templates go through the text tower in one batch."""
        from engine.models.conse import QUERY_TEMPLATES

        feats = self.text_features([t.format(query=text) for t in QUERY_TEMPLATES])  # [0]: as typed
        mean = feats.mean(axis=0, keepdims=True)
        return feats[0], self.project_text(mean / np.linalg.norm(mean))[0]
