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
    audio_dim: int = 768          # stored: the Whisper encoder's frame mean + std per clip (features
                                  # of backbone ids ending "+specnet@<rate>+v2" also had the spectrogram
                                  # CNN's 1280 after them, which no head read; migration 5 drops them)
    # What the audio heads read of it: the first ``audio_head_dim`` values, the Whisper encoder's
    # frame mean, centred on a fixed centre shipped with the model (resources/models/). Chosen on
    # the tune split only (docs/evaluation.md): it transfers, the spectrogram CNN half did not.
    audio_head_dim: int = 384
    audio_centre: str = "whisper_mean_centre_v2.npy"
    text_dim: int = 384
    # Joint spaces (FAC): fine video-audio space and coarse video-audio-text space.
    va_dim: int = 1024           # MMV used 512; a 512-d random projection of the 1280-d video features
                                  # loses look-alike geometry (the 384-d audio input fits exactly)
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
    # Version of the packaged heads: a new version gets a new base model id, so libraries indexed
    # with older heads re-project their stored features (no decoding) instead of mixing vectors.
    # v1: both audio halves, each normalised; v2: centred Whisper frame mean.
    heads_version: int = 2

    @property
    def backbone_id(self) -> str:
        """What the stored features are of (a change means re-decoding). v3: the audio feature is
        the Whisper half alone; v2 ids had "+specnet" and 2048-d audio features, of which v3's
        768 are the first values, so engine.index.migrations upgrades them without decoding."""
        return (f"{self.vision_backbone}@{self.image_size}x{self.frames_per_clip}"
                f"+{self.audio_backbone}@{self.sample_rate}+v3")

    @property
    def base_model_id(self) -> str:
        """Id of the packaged (untrained) model of this config; fine-tuned ids are ``ft-...``."""
        return f"{self.name}-v{self.heads_version}"

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
