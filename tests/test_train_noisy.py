"""Noisy copies of the training sounds (engine/train/noisy.py): the noise has the colour and level
asked for, batches swap in copies at the asked rate and only for rows that have them, the copies
come from the real Whisper pooling of the clip windows of training videos only, and a library
whose files are gone trains without them."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch

from engine.jobs import CancelToken
from engine.train.data import TrainingData, make_batch
from engine.train.noisy import NoisyAudio, _video_sample, coloured_noise, noisy_copies, with_noise_floor
from tests.synth import make_video


def _band_power(x: np.ndarray, lo: float, hi: float) -> float:
    """Naive reference: mean |FFT|^2 over a band of normalised frequencies (0..0.5)."""
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x))
    return float(power[(f >= lo) & (f < hi)].mean())


@pytest.mark.parametrize("colour,slope", [("white", 0.0), ("pink", 1.0), ("brown", 2.0)])
def test_coloured_noise_has_unit_level_and_its_spectral_slope(colour, slope):
    x = coloured_noise(1 << 16, colour, np.random.default_rng(0))
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    low, high = _band_power(x, 0.01, 0.02), _band_power(x, 0.2, 0.4)
    # power ~ 1/f^slope: from band centre 0.015 to 0.3 (a factor 20) the power falls by 20^slope
    measured = np.log(low / high) / np.log(0.3 / 0.015)
    assert measured == pytest.approx(slope, abs=0.25)


def test_noise_floor_is_the_asked_number_of_decibels_under_the_sound():
    t = np.arange(32000) / 16000
    wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noisy = with_noise_floor(wave, 20.0, "pink", np.random.default_rng(1))
    noise = noisy.astype(np.float64) - wave
    snr = 20 * np.log10(np.sqrt(np.mean(wave.astype(np.float64) ** 2)) / np.sqrt(np.mean(noise ** 2)))
    assert snr == pytest.approx(20.0, abs=0.1)
    silent = with_noise_floor(np.zeros(16000, np.float32), 20.0, "white", np.random.default_rng(2))
    assert 0 < np.sqrt(np.mean(silent ** 2)) < 1e-3  # a silent track gets a floor under a minimum level


def _data(n_videos: int = 3, clips: int = 2, dim: int = 8) -> TrainingData:
    keys = torch.tensor([(v + 1, i) for v in range(n_videos) for i in range(clips)])
    n = len(keys)
    return TrainingData(np.arange(n) + 100, keys, torch.zeros(n, 2, 4, dtype=torch.float16),
                        torch.arange(n * dim, dtype=torch.float16).reshape(n, dim), torch.ones(n, dtype=torch.bool),
                        torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), [np.zeros(0, np.int64)] * n)


def test_a_batch_uses_noisy_copies_at_the_asked_rate_only_where_there_are_copies():
    data = _data(n_videos=50, clips=4)
    n, dim = len(data), data.audio.shape[1]
    variants = torch.full((n, 2, dim), -1.0, dtype=torch.float16)
    variants[:, 1] = -2.0
    ready = torch.arange(n) % 2 == 0
    rows = np.arange(n)
    noisy = NoisyAudio(variants, ready, probability=0.5, seed=3)
    batch = noisy.apply(make_batch(data, rows, torch.device("cpu")), rows, step=7)
    replaced = (batch.audio < 0).all(dim=1)
    assert not replaced[~ready].any()                      # rows without copies keep their sound
    assert 0.35 < replaced[ready].float().mean() < 0.65    # about half of the others
    assert set(batch.audio[replaced, 0].tolist()) == {-1.0, -2.0}  # both copies are used
    assert torch.equal(batch.audio[~replaced], data.audio[~replaced])
    again = noisy.apply(make_batch(data, rows, torch.device("cpu")), rows, step=7)
    assert torch.equal(again.audio, batch.audio)           # reproducible from (seed, step): resumable
    never = NoisyAudio(variants, ready, probability=0.0).apply(make_batch(data, rows, torch.device("cpu")), rows, 7)
    assert torch.equal(never.audio, data.audio)


def test_the_sample_of_videos_fits_the_cap_and_is_deterministic():
    durations = {v: 10.0 for v in range(20)}
    a = _video_sample(list(range(20)), durations, 55.0)
    assert len(a) == 5 and a == _video_sample(list(reversed(range(20))), durations, 55.0)
    assert len(_video_sample([1], {1: 100.0}, 5.0)) == 1  # at least one video


class _EnergyWhisper:
    """A stand-in encoder: one 'frame' per 20 ms holding the frame's RMS level (noise raises it)."""

    calls = 0

    def frame_features(self, wave, token=None):
        _EnergyWhisper.calls += 1
        frames = wave[: len(wave) // 320 * 320].reshape(-1, 320)
        return np.repeat(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1, keepdims=True)), 4, axis=1)

    @staticmethod
    def pool(frames, windows):
        from engine.models.audio import WhisperAudioBackbone

        return WhisperAudioBackbone.pool(frames, windows)


def _library_db(tmp_path):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE videos(id INTEGER PRIMARY KEY, path TEXT, duration REAL)")
    conn.execute("CREATE TABLE clips(id INTEGER PRIMARY KEY, video_id INT, idx INT, start REAL, end REAL)")
    for v in (1, 2, 3):
        path = make_video(tmp_path / f"v{v}.mp4", tone_hz=300.0 * v, seconds=4.0) if v != 3 else tmp_path / "gone.mp4"
        conn.execute("INSERT INTO videos VALUES (?, ?, 4.0)", (v, str(path)))
        for i in range(2):
            conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                         (v, i, 2.0 * i, 2.0 * i + 2))
    return conn


def test_copies_are_the_pooled_noisy_sound_of_each_clip_window(tmp_path):
    conn = _library_db(tmp_path)
    # 4 means + 4 stds + 4 stored values; video 3's file is gone: no copies for it, no failure
    data = _data(n_videos=3, clips=2, dim=12)
    gen = noisy_copies(conn, _EnergyWhisper, data, copies=2, max_seconds=100.0, probability=0.5, seed=0,
                       token=CancelToken())
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        noisy = stop.value
    assert noisy.ready.tolist() == [True, True, True, True, False, False]
    assert noisy.summary() == {"rows": 4, "copies": 2, "probability": 0.5}
    # the stand-in's mean frame level of a 0.3 tone is 0.3/sqrt(2) and noise adds to it; the parts
    # after the pooled mean and std (the spectrogram half, not read by the heads) keep the stored values
    level = noisy.variants[:4, :, 0].float()
    assert (level > 0.3 / np.sqrt(2) - 0.01).all() and (level < 0.3).all()
    assert not torch.equal(noisy.variants[:4, 0, :4], noisy.variants[:4, 1, :4])  # two different floors
    assert torch.equal(noisy.variants[:4, :, 8:], data.audio[:4, None, 8:].expand(4, 2, 4))
    assert (noisy.variants[4:] == 0).all()


def test_a_library_whose_files_are_gone_trains_without_copies_and_never_loads_whisper(tmp_path):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE videos(id INTEGER PRIMARY KEY, path TEXT, duration REAL)")
    conn.execute("CREATE TABLE clips(id INTEGER PRIMARY KEY, video_id INT, idx INT, start REAL, end REAL)")
    conn.executemany("INSERT INTO videos VALUES (?, ?, 4.0)", [(v, str(tmp_path / f"{v}.mp4")) for v in (1, 2, 3)])

    def no_whisper():
        raise AssertionError("Whisper loaded for nothing")

    gen = noisy_copies(conn, no_whisper, _data(), copies=1, max_seconds=100.0, probability=0.5, seed=0,
                       token=CancelToken())
    with pytest.raises(StopIteration) as stop:
        while True:
            next(gen)
    assert stop.value.value is None


def test_the_trainer_makes_copies_of_training_videos_only(tmp_path, monkeypatch):
    from engine.api import Library
    from engine.train import trainer
    from engine.train.data import load_training_data
    from engine.train.holdout import split_holdout
    from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library

    lib = Library(tmp_path / "lib")
    model = fake_base_model()
    lib.load_models = lambda: model
    write_synthetic_library(lib.db, SyntheticSpec(videos_per_pair=5, clips_per_video=3), model.config)
    asked: list[TrainingData] = []
    original = trainer.noisy_copies

    def spy(conn, whisper_of, data, **kw):
        asked.append(data)
        return (yield from original(conn, whisper_of, data, **kw))

    monkeypatch.setattr(trainer, "noisy_copies", spy)
    try:
        events = list(lib.train(CancelToken(), epochs=1, batch_size=8, device="cpu"))
        assert events[-1].stage == "done"  # the synthetic files do not exist: trained without copies
        held = split_holdout(load_training_data(lib.db)).held
        assert len(asked) == 1 and set(asked[0].clip_ids.tolist()).isdisjoint(held.clip_ids.tolist())
        list(lib.train(CancelToken(), epochs=1, batch_size=8, device="cpu", noise_copies=0))
        assert len(asked) == 1  # switched off: not even tried
    finally:
        lib.close()


def test_bad_noise_settings_are_refused():
    from engine.errors import TrainingError
    from engine.train.config import TrainConfig

    with pytest.raises(TrainingError):
        TrainConfig(noise_copies=-1)
    with pytest.raises(TrainingError):
        TrainConfig(noise_probability=1.5)


def test_the_cli_passes_the_number_of_noisy_copies():
    import argparse

    from engine.train.cli import add_commands, run_command

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    asked: list[dict] = []

    class Lib:
        def train(self, token, **options):
            asked.append(options)
            return iter(())

    for argv, expected in ((["train", "--minutes", "3"], 2), (["train", "--noise-copies", "0"], 0)):
        assert run_command(parser.parse_args(argv), Lib) == 0
        assert asked[-1]["noise_copies"] == expected
