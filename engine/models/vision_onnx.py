"""The vision tower's pooled features through ONNX Runtime on the CPU.

On the 2-core Xeon this project is measured on, ONNX Runtime runs EfficientNet-Lite0 at 224 px in
~7 CPU-ms per image on one thread, against ~29 for the frozen TorchScript graph (docs/speed.md), and
the CNN was the largest stage of indexing beyond decoding.

The ONNX file is exported here, from the packaged weights (no network), once per machine: into the
user's cache folder, written to a temporary file and renamed, named by a key of the weights file,
torch's version and the export settings, so a new torch or new weights export again. The uint8 frame
batch [N, S, S, 3] goes in as it is: the scaling to [-1, 1] is part of the graph, as in
VisionBackbone._batches. On load the session's output is checked against the torch module on a
fixed probe batch. Whatever fails (the ``onnx`` package that the exporter needs is missing, the export
or ONNX Runtime raise, a damaged cache file, a mismatch) leaves the caller on its torch path with one
log line: this is a speed-up, never a requirement. GPUs (cuda, mps) keep torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from engine.models.onnx_files import OPSET, open_session, write_graph
from engine.models.onnx_files import cache_dir as default_cache_dir

log = logging.getLogger(__name__)
EXPORT_VERSION = 1      # bump when the exported graph changes (inputs, preprocessing)
PROBE_TOLERANCE = 1e-3  # max abs difference to the torch module on the probe batch (features are ~0-10)
DISABLE_ENV = "MMVSEARCH_VISION_ONNX"  # "0": keep torch (A/B benchmarks, debugging)


class OnnxFeatures:
    """uint8 [N, S, S, 3] RGB -> float32 [N, 1280] through one ONNX Runtime session."""

    def __init__(self, session, path: Path):
        self.session, self.path = session, path
        self._input = session.get_inputs()[0].name

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: np.ascontiguousarray(frames, dtype=np.uint8)})[0]


def wanted(device: torch.device, dtype: torch.dtype) -> bool:
    """ONNX Runtime only stands in for torch on the CPU in float32, and when not switched off."""
    return device.type == "cpu" and dtype == torch.float32 and os.environ.get(DISABLE_ENV, "1") != "0"


def load_onnx_features(pooled: torch.nn.Module, weights: Path, threads: int,
                       cache_dir: Path | None = None) -> OnnxFeatures | None:
    """The exported ``pooled`` module (images normalised to [-1, 1] -> [N, 1280]) as a checked ONNX
    Runtime session, exported first when the cache has none; None when that is not possible."""
    path = Path(cache_dir or default_cache_dir()) / f"efficientnet-lite0-features-{_key(weights)}.onnx"
    for attempt in range(2):
        try:
            if not path.exists():
                export(pooled, path)
            features = OnnxFeatures(_session(path, threads), path)
            _check(features, pooled)
            return features
        except ImportError as exc:  # no onnx package: the exporter cannot write the file
            log.info("vision CNN stays on torch: %s", exc)
            return None
        except Exception as exc:
            if attempt == 0 and path.exists():  # a damaged or stale file: export once more
                log.warning("the exported vision CNN %s failed (%s); exporting it again", path, exc)
                path.unlink(missing_ok=True)
                continue
            log.warning("vision CNN stays on torch: ONNX Runtime failed (%s)", exc)
            return None
    return None


def export(pooled: torch.nn.Module, path: Path) -> None:
    """Write the ONNX file of uint8 frames -> pooled features."""
    import onnx  # noqa: F401  (torch's exporter needs it; fail here, before the slow trace)

    write_graph(_FromUint8(pooled).eval(), (torch.zeros(2, 224, 224, 3, dtype=torch.uint8),), path,
                ["frames"], ["features"], {"frames": {0: "n", 1: "h", 2: "w"}, "features": {0: "n"}})


def _session(path: Path, threads: int):
    # no busy-waiting between kernels: the other indexing threads (decoding, Whisper) want the cores
    return open_session(path, threads, spinning=False)


def _check(features: OnnxFeatures, pooled: torch.nn.Module) -> None:
    """The session must give the torch module's features on a fixed probe batch."""
    frames = np.random.default_rng(20201122).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = pooled(_normalise(torch.from_numpy(frames))).float().numpy()
    diff = float(np.abs(features(frames) - expected).max())
    if not diff < PROBE_TOLERANCE:
        raise RuntimeError(f"its features differ from torch's by {diff:.2g}")


def _key(weights: Path) -> str:
    digest = hashlib.sha1()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"|torch {torch.__version__}|opset {OPSET}|v{EXPORT_VERSION}".encode())
    return digest.hexdigest()[:16]


def _normalise(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> float32 [N, 3, S, S] in [-1, 1], the operations of VisionBackbone._batches."""
    return frames.permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.5)


class _FromUint8(torch.nn.Module):
    """The exported graph: scaling and layout change, then the pooled backbone."""

    def __init__(self, pooled: torch.nn.Module):
        super().__init__()
        self.pooled = pooled

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.pooled(_normalise(frames))
