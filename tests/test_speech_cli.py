"""The speech commands of ``mmvsearch``: record (fake microphone), devices, transcribe."""

from __future__ import annotations

import wave

import numpy as np

from engine.cli import main
from tests.speech_fixtures import SAMPLE_RATE, fake_microphone


def chirp(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * (150 * t + 200 * t * t))).astype(np.float32)


def read_wav(path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def test_record_writes_a_wav_of_what_the_microphone_heard(tmp_path):
    fed = chirp(3.0)
    out = tmp_path / "sub" / "query.wav"
    with fake_microphone(tmp_path, fed) as mic:
        code = main(["record", "--seconds", "1.5", "--out", str(out), "--device", mic])
    assert code == 0
    rate, got = read_wav(out)
    assert rate == SAMPLE_RATE and len(got) == int(1.5 * SAMPLE_RATE)
    assert np.corrcoef(got, fed[: len(got)])[0, 1] > 0.999


def test_record_from_a_missing_device_fails_with_a_message(tmp_path, capsys):
    with fake_microphone(tmp_path, chirp(1.0)):
        code = main(["record", "--seconds", "1", "--out", str(tmp_path / "x.wav"), "--device", "nope"])
    assert code != 0
    assert "no input device 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_devices_lists_the_microphone(tmp_path, capsys):
    with fake_microphone(tmp_path, chirp(1.0)) as mic:
        code = main(["devices"])
    assert code == 0
    assert mic in capsys.readouterr().out


def test_transcribe_on_an_empty_library_succeeds(tmp_path):
    assert main(["--library", str(tmp_path / "lib"), "transcribe"]) == 0
