"""Microphone search end to end: a small library of real clips indexed with transcription, queried
through the fake ALSA microphone with a spoken query or a played-back ESC-50 sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.speech.recorder import record
from tests.speech_fixtures import fake_microphone, require_shared_media, silence, speak

pytestmark = pytest.mark.slow

VIDEOS = {
    "dog": "video/vas/dog__video_02754.mp4",
    "fireworks": "video/vas/fireworks__video_02997.mp4",
    "car": "video/demos/difffoley__car.mp4",
    "drum": "video/vas/drum__video_02542.mp4",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from engine.api import Library
    from engine.jobs import CancelToken

    paths = [require_shared_media(v) for v in VIDEOS.values()]
    lib = Library(tmp_path_factory.mktemp("lib"), device="cpu")
    for _ in lib.index(paths, CancelToken(), transcribe=True):
        pass
    yield lib
    lib.close()


def through_microphone(tmp_path: Path, wave: np.ndarray) -> np.ndarray:
    with fake_microphone(tmp_path, wave) as mic:
        return record(len(wave) / 16000, device=mic)


def top_label(result) -> str:
    path = result.moments[0].path
    return next(label for label, rel in VIDEOS.items() if path.endswith(Path(rel).name))


SPOKEN = [("a dog barking", "dog"), ("a car engine", "car")]


def spoken_through_microphone(tmp_path: Path, words: str) -> np.ndarray:
    wave = np.concatenate([silence(0.3), speak(words, words_per_minute=130), silence(0.5)])
    return through_microphone(tmp_path, wave)


@pytest.mark.parametrize(("spoken", "label"), SPOKEN)
def test_spoken_query_is_transcribed_and_its_words_find_the_video(library, tmp_path, spoken, label):
    result = library.search_audio(spoken_through_microphone(tmp_path, spoken))
    assert result.transcript and label in result.transcript.lower()
    words_only = library.search_text(result.transcript)
    assert top_label(words_only) == label, [(m.path, m.score, m.reasons) for m in words_only.moments]


@pytest.mark.parametrize(("spoken", "label"), SPOKEN)
def test_spoken_query_through_the_microphone_finds_the_video(library, tmp_path, spoken, label):
    result = library.search_audio(spoken_through_microphone(tmp_path, spoken))
    assert top_label(result) == label, [(m.path, m.score, m.reasons) for m in result.moments]


def test_played_back_dog_bark_finds_the_dog_video(library, tmp_path):
    bark = require_shared_media("audio/esc50/4-184575-A-0.flac")
    from engine.media.audio import load_audio

    result = library.search_audio(through_microphone(tmp_path, load_audio(bark)))
    assert result.transcript is None  # a bark is not speech
    assert top_label(result) == "dog"
    assert "heard" in result.moments[0].reasons


def test_text_query_matches_sound_captions(library):
    result = library.search_text("dog barking")
    assert top_label(result) == "dog"
    assert "heard" in result.moments[0].reasons and "bark" in (result.moments[0].snippet or "")
