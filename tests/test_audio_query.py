"""A sound query and an indexed clip go through the same Whisper encoder and the same pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.media.clips import clip_windows
from engine.models.audio import FRAME_RATE, SAMPLE_RATE, WhisperAudioBackbone, query_features


@pytest.fixture(scope="module")
def whisper():
    return WhisperAudioBackbone(torch.device("cpu"), threads=1)


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("seconds", [5.0, 4.0, 2.5])
def test_a_recording_is_pooled_as_the_clip_of_a_video_with_that_sound(whisper, seconds):
    """A 5 s query and a 5 s video: the video has one clip window (0, 5) (a 1 s tail is absorbed),
    and its stored feature is the same frame mean and std as the query's."""
    wave = tone(seconds)
    windows = clip_windows(seconds)
    assert windows == [(0.0, seconds)]
    as_clip = whisper.pool(whisper.frame_features(wave), windows)
    as_query = query_features(whisper, wave)
    np.testing.assert_allclose(as_query, as_clip, rtol=1e-5, atol=1e-5)


def test_query_pooling_covers_every_encoder_frame_of_the_recording(whisper):
    wave = tone(5.0)
    frames = whisper.frame_features(wave)
    assert abs(len(frames) - 5.0 * FRAME_RATE) <= 1
    np.testing.assert_allclose(query_features(whisper, wave)[0, :384], frames.mean(axis=0), rtol=1e-5, atol=1e-5)
