import pytest
import torch

from engine.device import detect_devices, resolve_device
from engine.errors import DeviceError


def test_auto_picks_an_available_device():
    choice = resolve_device("auto")
    assert choice.device.type in detect_devices()


def test_missing_gpu_falls_back_to_cpu_with_a_note():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    choice = resolve_device("cuda")
    assert choice.device.type == "cpu" and "falling back" in choice.note
    with pytest.raises(DeviceError):
        resolve_device("cuda", strict=True)


def test_unknown_device_and_precision_are_errors():
    with pytest.raises(DeviceError):
        resolve_device("tpu")
    with pytest.raises(DeviceError):
        resolve_device("cpu", precision="fp8")


def test_half_precision_only_on_gpus(monkeypatch):
    """Simulated GPUs (no GPU needed): half precision on CUDA and MPS, full on the CPU, and an
    explicit precision wins everywhere."""
    import engine.device as device_mod

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert detect_devices() == ["cuda", "mps", "cpu"]
    auto = resolve_device("auto")
    assert (auto.device.type, auto.dtype) == ("cuda", torch.float16)
    assert resolve_device("mps").dtype == torch.float16
    assert resolve_device("cpu").dtype == torch.float32
    assert resolve_device("cuda", precision="fp32").dtype == torch.float32
    assert resolve_device("cpu", precision="bf16").dtype == torch.bfloat16
