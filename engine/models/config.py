"""Model configurations: one registry of named configs (open_clip style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str
    # Backbones (pretrained, frozen by default).
    vision_backbone: str = "efficientnet-lite0"
    audio_backbone: str = "whisper-tiny.en-encoder"
    text_backbone: str = "all-MiniLM-L6-v2"
    vision_dim: int = 1280
    audio_dim: int = 2048         # Whisper encoder mean+std (768) + spectrogram CNN (1280)
    audio_split: int = 768        # where the two audio views meet (each is normalised on its own)
    text_dim: int = 384
    # Joint spaces (FAC): fine video-audio space and coarse video-audio-text space.
    va_dim: int = 1024           # MMV used 512; our audio input is 2048-d, and a 512-d random projection
                                  # lost sound-alike recall (ESC-50 -> video R@5 0.85 vs 0.96 at 1024)
    vat_dim: int = 384            # = text_dim: the text tower's geometry is kept out of the box
    # Preprocessing; changing any of these changes backbone_id (stored features are then stale).
    image_size: int = 224
    frames_per_clip: int = 2
    sample_rate: int = 16000
    conse_topk: int = 10
    temperature: float = 0.07
    # Deep fine-tuning unfreezes the vision blocks from this index on (EfficientNet-Lite0 has 16;
    # 14 leaves the last two 7x7 blocks and the 1x1 head conv trainable, 1.5 M parameters).
    deep_from_block: int = 14
    seed: int = 20201122          # fixed seed: the untrained heads are identical on every machine

    @property
    def backbone_id(self) -> str:
        return (f"{self.vision_backbone}@{self.image_size}x{self.frames_per_clip}"
                f"+{self.audio_backbone}+specnet@{self.sample_rate}+v2")

    @property
    def base_model_id(self) -> str:
        """Id of the packaged (untrained) model of this config; fine-tuned ids are ``ft-...``."""
        return f"{self.name}-v1"

    def to_dict(self) -> dict:
        return asdict(self)


MODEL_CONFIGS: dict[str, ModelConfig] = {
    "mmv-base": ModelConfig(name="mmv-base"),
    # Cheaper variant for slow laptops: one frame per clip at 192 px.
    "mmv-fast": ModelConfig(name="mmv-fast", image_size=192, frames_per_clip=1),
}
DEFAULT_MODEL = "mmv-base"


def get_config(name: str) -> ModelConfig:
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        from engine.errors import ModelError

        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODEL_CONFIGS)}") from None
