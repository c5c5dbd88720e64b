"""The vision CNN through ONNX Runtime (engine/models/vision_onnx.py): the same features as the torch
path on decoded frames, an export written atomically and reused, and a clean fall-back to torch."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.index.decode import decode_video
from engine.models import vision_onnx
from engine.models.vision import VisionBackbone, _PooledFeatures
from engine.models.vision_tail import pretrained_efficientnet, weights_file
from tests.synth import make_video

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """One export for the module: the cache folder holding it."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    assert vision_onnx.load_onnx_features(_pooled(), weights_file(), 1, cache_dir=folder) is not None
    return folder


@pytest.fixture()
def cache(tmp_path, exported, monkeypatch) -> Path:
    """A fresh cache folder for VisionBackbone, whose export copies the module's file (no slow trace)."""
    folder = tmp_path / "onnx"

    def copy_export(pooled, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(next(exported.glob("*.onnx")), path)

    monkeypatch.setattr(vision_onnx, "default_cache_dir", lambda: folder)
    monkeypatch.setattr(vision_onnx, "export", copy_export)
    monkeypatch.delenv(vision_onnx.DISABLE_ENV, raising=False)
    return folder


def _pooled() -> torch.nn.Module:
    return _PooledFeatures(pretrained_efficientnet().to(memory_format=torch.channels_last)).eval()


def _torch_backbone(monkeypatch) -> VisionBackbone:
    monkeypatch.setenv(vision_onnx.DISABLE_ENV, "0")
    backbone = VisionBackbone(CPU, torch.float32)
    monkeypatch.delenv(vision_onnx.DISABLE_ENV)
    assert backbone.runtime == "torch"
    return backbone


def _real_frames(tmp_path: Path, shared_media_dir: Path | None) -> np.ndarray:
    """Frames as indexing samples them: a generated video, and a real one when the shared media exist."""
    video = make_video(tmp_path / "v.mp4", seconds=4.0, color=(200, 60, 30), shape="circle")
    frames = [decode_video(video, 4.0, 2, 224, 16000).frames.reshape(-1, 224, 224, 3)]
    if shared_media_dir is not None:
        real = shared_media_dir / "video" / "vas" / "dog__video_02677.mp4"
        frames.append(decode_video(real, 4.0, 2, 224, 16000).frames.reshape(-1, 224, 224, 3))
    return np.concatenate(frames)


def test_onnx_features_equal_the_torch_path_on_decoded_frames(tmp_path, cache, monkeypatch):
    from tests.conftest import SHARED_MEDIA

    shared = SHARED_MEDIA if (SHARED_MEDIA / "MANIFEST.tsv").exists() else None
    frames = _real_frames(tmp_path, shared)
    onnx = VisionBackbone(CPU, torch.float32)
    assert onnx.runtime == "onnxruntime" and onnx.net is None
    reference = _torch_backbone(monkeypatch).features(frames)
    got = onnx.features(frames)
    assert got.shape == reference.shape == (len(frames), 1280) and got.dtype == torch.float32
    assert float((got - reference).abs().max()) < 1e-4
    assert float(reference.abs().max()) > 0.1  # not two zero tensors
    small = np.ascontiguousarray(frames[:, :192, :192])  # mmv-fast's 192 px frames go through too
    assert float((onnx.features(small) - _torch_backbone(monkeypatch).features(small)).abs().max()) < 1e-4
    assert onnx.features(frames[:0]).shape == (0, 1280)


def test_the_export_is_written_once_by_rename_and_reused(exported, tmp_path):
    files = sorted(p.name for p in exported.iterdir())
    assert len(files) == 1 and files[0].startswith("efficientnet-lite0-features-") and files[0].endswith(".onnx")
    before = next(exported.iterdir()).stat().st_mtime_ns
    again = vision_onnx.load_onnx_features(_pooled(), weights_file(), 1, cache_dir=exported)
    assert again is not None and again.path.stat().st_mtime_ns == before  # loaded, not exported again


def test_a_damaged_cache_file_is_exported_again(cache):
    first = VisionBackbone(CPU, torch.float32).onnx
    first.path.write_bytes(b"not an onnx file")
    again = VisionBackbone(CPU, torch.float32)
    assert again.runtime == "onnxruntime" and again.onnx.path == first.path
    assert again.onnx.path.stat().st_size > 1_000_000


def test_without_the_onnx_package_the_torch_path_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(vision_onnx, "default_cache_dir", lambda: tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    monkeypatch.delenv(vision_onnx.DISABLE_ENV, raising=False)
    backbone = VisionBackbone(CPU, torch.float32)
    assert backbone.runtime == "torch" and backbone.onnx is None
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    assert backbone.features(frames).shape == (3, 1280)
    assert list(tmp_path.rglob("*.onnx*")) == []  # nothing half-written left behind


def test_a_session_that_disagrees_with_torch_is_not_used(cache, monkeypatch):
    monkeypatch.setattr(vision_onnx, "PROBE_TOLERANCE", 0.0)
    assert VisionBackbone(CPU, torch.float32).runtime == "torch"


def test_only_the_cpu_in_float32_uses_onnx_runtime(monkeypatch):
    monkeypatch.delenv(vision_onnx.DISABLE_ENV, raising=False)
    assert vision_onnx.wanted(CPU, torch.float32)
    assert not vision_onnx.wanted(torch.device("cuda"), torch.float32)
    assert not vision_onnx.wanted(torch.device("cuda"), torch.float16)
    assert not vision_onnx.wanted(torch.device("mps"), torch.float32)
    assert not vision_onnx.wanted(CPU, torch.bfloat16)
    monkeypatch.setenv(vision_onnx.DISABLE_ENV, "0")
    assert not vision_onnx.wanted(CPU, torch.float32)
