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


def test_half_precision_only_on_gpus():
    assert resolve_device("cpu").dtype == torch.float32
