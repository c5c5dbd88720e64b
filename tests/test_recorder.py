"""The microphone recorder, run for real through PortAudio with a fake ALSA input device."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.errors import RecorderError
from engine.speech import recorder as recmod
from engine.speech.recorder import Recorder, list_input_devices, record
from tests.speech_fixtures import SAMPLE_RATE, fake_microphone


def test_signal(seconds: float = 3.0, seed: int = 1) -> np.ndarray:
    """A loud, non-periodic signal (chirp + noise), so a shifted or gappy copy correlates badly."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = np.sin(2 * np.pi * (200 * t + 300 * t * t))
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.45 * chirp + 0.1 * noise).astype(np.float32)


test_signal.__test__ = False  # a helper, not a test


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def test_records_exactly_what_the_microphone_hears(tmp_path):
    fed = test_signal(3.0)
    with fake_microphone(tmp_path, fed) as mic:
        got = record(2.0, device=mic)
    assert got.dtype == np.float32 and got.ndim == 1
    assert len(got) == 2 * SAMPLE_RATE
    assert correlation(got, fed) > 0.999
    assert np.max(np.abs(got - fed[: len(got)])) < 2 / 32768  # 16-bit round trip, nothing else


def test_level_elapsed_and_recording_while_recording(tmp_path):
    fed = test_signal(3.0)
    with fake_microphone(tmp_path, fed) as mic:
        rec = Recorder(device=mic, max_seconds=2.5)
        levels: list[float] = []
        polling = threading.Event()

        def poll() -> None:  # the GUI thread polls while PortAudio's thread writes
            while not polling.is_set():
                levels.append(rec.level)
                time.sleep(0.001)

        poller = threading.Thread(target=poll)
        poller.start()
        rec.start()
        assert rec.wait(10.0), "the fake microphone delivered no audio"
        assert not rec.recording  # reached max_seconds
        assert rec.elapsed == pytest.approx(2.5, abs=0.01)
        level_at_end = rec.level
        polling.set()
        poller.join()
        wave = rec.stop()
    assert level_at_end > 0.3  # the input peaks near 0.6
    assert all(0.0 <= v <= 1.0 for v in levels)
    assert len(wave) == int(2.5 * SAMPLE_RATE)
    assert correlation(wave, fed) > 0.999
    assert rec.level == 0.0 and not rec.recording


def test_stop_early_returns_what_arrived(tmp_path):
    fed = test_signal(3.0)
    with fake_microphone(tmp_path, fed) as mic:
        rec = Recorder(device=mic, max_seconds=30.0)
        rec.start()
        deadline = time.monotonic() + 10
        while rec.elapsed < 0.5 and time.monotonic() < deadline:
            time.sleep(0.005)
        wave = rec.stop()
    assert len(wave) >= SAMPLE_RATE // 2
    assert correlation(wave[: 3 * SAMPLE_RATE], fed) > 0.99


def resampled(wave: np.ndarray, src: int, dst: int) -> np.ndarray:
    from engine.media.audio import resample

    return resample(wave, src, dst)


def test_device_rate_is_resampled_to_the_rate_asked_for(tmp_path):
    """A 48 kHz microphone: opened at 48 kHz, delivered at 16 kHz."""
    fed_48k = resampled(test_signal(3.0), SAMPLE_RATE, 48000)
    with fake_microphone(tmp_path, fed_48k, rate=48000) as mic:
        rec = Recorder(device=mic, max_seconds=1.5)
        rec.start()
        assert rec.wait(10.0)
        assert rec._stream_rate == 48000
        got = rec.stop()
    assert abs(len(got) - int(1.5 * SAMPLE_RATE)) <= 2
    expected = resampled(fed_48k[: int(1.5 * 48000)], 48000, SAMPLE_RATE)
    assert correlation(got[100:-100], expected[100:-100]) > 0.99


def test_any_output_rate(tmp_path):
    fed = test_signal(3.0)
    with fake_microphone(tmp_path, fed) as mic:
        got = record(1.0, device=mic, sample_rate=22050)
    assert abs(len(got) - 22050) <= 2
    expected = resampled(fed[:SAMPLE_RATE], SAMPLE_RATE, 22050)
    assert correlation(got[100:-100], expected[100:-100]) > 0.99


def test_falls_back_to_the_wanted_rate_when_the_device_rate_is_refused(tmp_path, monkeypatch):
    fed = test_signal(3.0)
    with fake_microphone(tmp_path, fed) as mic:
        sd = recmod._sounddevice()
        real_stream = sd.InputStream
        rates_tried: list[int] = []

        def picky_stream(*args, **kwargs):
            rates_tried.append(kwargs["samplerate"])
            if kwargs["samplerate"] == SAMPLE_RATE:
                raise sd.PortAudioError("Invalid sample rate [PaErrorCode -9997]")
            return real_stream(*args, **kwargs)

        monkeypatch.setattr(sd, "InputStream", picky_stream)
        rec = Recorder(device=mic, sample_rate=8000, max_seconds=1.0)
        rec.start()
        assert rec.wait(10.0)
        got = rec.stop()
    assert rates_tried == [SAMPLE_RATE, 8000]
    assert len(got) == 8000  # opened at 8 kHz directly, no resampling needed


def test_lists_the_fake_device_as_an_input(tmp_path):
    with fake_microphone(tmp_path, test_signal(1.0)) as mic:
        devices = list_input_devices()
    fake = next(d for d in devices if d["name"] == mic)
    assert fake["channels"] >= 1 and isinstance(fake["index"], int)
    assert sum(d["default"] for d in devices) <= 1


def test_unknown_device_is_a_clear_error(tmp_path):
    with fake_microphone(tmp_path, test_signal(1.0)):
        with pytest.raises(RecorderError, match=r"no input device 'no such mic'; available: .*mmv_fake"):
            record(1.0, device="no such mic")
        with pytest.raises(RecorderError, match="no input device 9999"):
            Recorder(device=9999).start()


def test_no_device_at_all_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(recmod, "list_input_devices", lambda refresh=False: [])
    with pytest.raises(RecorderError, match="no microphone found"):
        Recorder().start()


@pytest.mark.parametrize(("message", "expected"), [
    ("Device unavailable [PaErrorCode -9985]", "busy"),
    ("Error opening InputStream: Permission denied", "permission"),
    ("Invalid device [PaErrorCode -9996]", "not available"),
])
def test_portaudio_errors_become_readable_messages(message, expected):
    err = recmod._explain(RuntimeError(message), "USB mic")
    assert isinstance(err, RecorderError)
    assert expected in str(err) and "USB mic" in str(err)


def test_missing_portaudio_library_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(RecorderError, match="libportaudio2"):
        list_input_devices()


def test_invalid_arguments_are_rejected():
    with pytest.raises(RecorderError):
        Recorder(max_seconds=0)
    with pytest.raises(RecorderError):
        Recorder(sample_rate=-1)
