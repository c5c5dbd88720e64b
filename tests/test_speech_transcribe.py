"""Transcription with the packaged tiny.en model: speech, sound captions, hallucination gates."""

from __future__ import annotations

import numpy as np
import pytest

from engine.speech.captions import extract_captions, merge_repeated
from engine.speech.gate import GateThresholds, is_stock_hallucination, keep_speech
from engine.speech.query import speech_fraction, spoken_text
from engine.speech.transcribe import Segment, get_transcriber
from tests.speech_fixtures import (
    NON_SPEECH_VIDEOS,
    SAMPLE_RATE,
    SENTENCES,
    require_shared_media,
    silence,
    speak,
    word_error_rate,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcriber():
    return get_transcriber("cpu")


def shared_audio(relative: str) -> np.ndarray:
    from engine.media.audio import load_audio

    wave = load_audio(require_shared_media(relative), sr=SAMPLE_RATE)
    assert wave is not None and wave.size > SAMPLE_RATE
    return wave


# ---- speech -------------------------------------------------------------------------------------
def test_word_error_rate_on_synthesised_sentences(transcriber):
    rates = []
    for sentence in SENTENCES:
        segments = transcriber.transcribe(speak(sentence))
        said = " ".join(s.text for s in segments if s.kind == "said")
        rates.append(word_error_rate(sentence, said))
    assert np.mean(rates) <= 0.2, rates
    assert max(rates) <= 0.4, rates


def test_segments_have_word_timestamps_inside_the_speech(transcriber):
    wave = np.concatenate([silence(2.0), speak(SENTENCES[0]), silence(1.5)])
    said = [s for s in transcriber.transcribe(wave) if s.kind == "said"]
    assert said, "no speech found"
    first, last = said[0], said[-1]
    assert 1.5 <= first.start <= 2.6  # speech starts after 2 s of silence
    assert last.end <= len(wave) / SAMPLE_RATE - 0.8
    for seg in said:
        assert seg.words and all(seg.start - 0.5 <= w[1] <= w[2] <= seg.end + 0.5 for w in seg.words)
        assert all(0.0 <= w[3] <= 1.0 for w in seg.words)
        assert seg.avg_logprob > -1.0 and seg.no_speech_prob < 0.6


def test_other_sample_rates_and_stereo_are_accepted(transcriber):
    from engine.media.audio import resample

    wave = resample(speak("The children played football in the park."), SAMPLE_RATE, 44100)
    stereo = np.stack([wave, wave], axis=1)
    said = " ".join(s.text for s in transcriber.transcribe(stereo, 44100) if s.kind == "said")
    assert "football" in said.lower()


def test_transcribe_stops_when_cancelled(transcriber):
    from engine.errors import Cancelled
    from engine.jobs import CancelToken

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        transcriber.transcribe(speak(SENTENCES[1]), token=token)


def test_silence_and_tones_have_no_transcript(transcriber):
    t = np.arange(5 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert transcriber.transcribe(silence(5.0)) == []
    assert not [s for s in transcriber.transcribe(tone) if s.kind == "said"]
    assert transcriber.transcribe(np.zeros(100, np.float32)) == []


@pytest.mark.parametrize("relative", NON_SPEECH_VIDEOS)
def test_music_and_noise_videos_get_no_hallucinated_speech(transcriber, relative):
    said = transcriber.speech(shared_audio(relative))
    assert said == [], [s.text for s in said]


def test_one_shared_transcriber_per_device_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: get_transcriber("cpu"), range(8)))
    assert all(t is found[0] for t in found)
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        assert get_transcriber("auto") is found[0]  # without a GPU "auto" is the CPU model


def test_concurrent_calls_are_serialised_and_correct(transcriber):
    from concurrent.futures import ThreadPoolExecutor

    wave = speak(SENTENCES[3])
    with ThreadPoolExecutor(2) as pool:
        texts = list(pool.map(lambda w: " ".join(s.text for s in transcriber.speech(w)), [wave, wave]))
    assert texts[0] == texts[1] and "football" in texts[0].lower()


# ---- sound captions ---------------------------------------------------------------------------
@pytest.mark.parametrize(("relative", "expected"), [
    ("video/vas/dog__video_02754.mp4", "bark"),
    ("video/vas/cough__video_00331.mp4", "cough"),
    ("video/demos/difffoley__car.mp4", "engine"),
])
def test_sound_captions_are_heard_segments(transcriber, relative, expected):
    segments = transcriber.transcribe(shared_audio(relative))
    heard = [s for s in segments if s.kind == "heard"]
    assert any(expected in s.text for s in heard), [(s.kind, s.text) for s in segments]
    for s in heard:
        assert not any(c in s.text for c in "()[]*"), s.text
        assert s.text == s.text.lower() and 0 <= s.start < s.end and not s.words


def test_extract_captions_strips_brackets_and_drops_empty_descriptions():
    assert extract_captions("(dog barking)") == ["dog barking"]
    mixed = "[APPLAUSE] - Thank you. [ Audience cheering ]"
    assert extract_captions(mixed) == ["applause", "audience cheering"]
    assert extract_captions("*laughs* ok") == ["laughs"]
    assert extract_captions("♪ ♪") == ["music"]
    assert extract_captions("[BLANK_AUDIO]") == []
    assert extract_captions("(silence) [SOUND] (inaudible)") == []
    assert extract_captions("Hello there, how are you?") == []
    assert extract_captions("(this is a very long stage direction that is not a sound)") == []


def test_repeated_captions_merge_into_one_segment():
    parts = [Segment("heard", t, t + 1.0, "coughing") for t in (1.0, 3.0, 5.0)]
    parts.append(Segment("heard", 20.0, 22.0, "coughing"))
    parts.append(Segment("heard", 2.0, 2.5, "laughing"))
    merged = merge_repeated(parts)
    coughs = [(s.start, s.end) for s in merged if s.text == "coughing"]
    assert coughs == [(1.0, 6.0), (20.0, 22.0)]
    assert [s.text for s in merged if s.start == 2.0] == ["laughing"]


# ---- gate ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "logprob", "no_speech", "compression", "words", "keep"), [
    # measured on real clips: music under a weight-lifting video, a child's song, a crowd cheering
    ("So, you must know.", -0.74, 0.52, 1.36, [0.4, 0.5, 0.3, 0.6], False),
    ("Do a little, do a little, do a little, do a little.", -0.82, 0.25, 2.4, [0.8] * 12, False),
    ("Yay!", -0.89, 0.72, 0.33, [0.4], False),
    ("This is a very important challenge", -1.7, 0.56, 2.0, [0.3] * 6, False),
    ("Thank you so much for watching and I'll see you in the next video.", -0.3, 0.1, 1.1, [0.9] * 14, False),
    ("you", -0.5, 0.2, 0.3, [0.7], False),
    # real (synthesised or recorded) speech
    ("My dog loves to chase the red ball in the park every morning.", -0.76, 0.21, 0.92,
     [0.29, 0.37, 0.38, 0.33, 0.88, 0.51, 0.12, 0.98, 0.97, 0.84, 0.78, 1.0], True),
    ("I started the outer corner, I swirl and I move in.", -0.34, 0.01, 1.17, [0.9] * 10, True),
    ("Thank you for coming, the budget is ready.", -0.3, 0.05, 1.0, [0.9] * 8, True),
])
def test_gate(text, logprob, no_speech, compression, words, keep):
    assert keep_speech(text, logprob, no_speech, compression, words, GateThresholds()) is keep


def test_stock_hallucinations():
    assert is_stock_hallucination("Thanks for watching!")
    assert is_stock_hallucination("Please subscribe to my channel")
    assert is_stock_hallucination("Thank you.")
    assert not is_stock_hallucination("Thank you for the budget report, it was clear.")


# ---- spoken queries -----------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "must_contain"), [
    ("a dog barking", ["dog"]),
    ("fireworks", ["firework"]),
    ("someone playing the drums", ["drum"]),
])
def test_spoken_query_is_transcribed(query, must_contain):
    text = spoken_text(speak(query, words_per_minute=130))
    assert text is not None
    assert all(word in text.lower() for word in must_contain), text


def test_non_speech_query_has_no_text():
    assert spoken_text(silence(3.0)) is None
    bark = shared_audio("video/vas/dog__video_02754.mp4")
    assert spoken_text(bark[: 5 * SAMPLE_RATE]) is None


def test_speech_fraction_of_a_recording():
    words = speak("a car engine")
    assert speech_fraction(words) > 0.9
    assert 0.2 < speech_fraction(np.concatenate([silence(3.0), words])) < 0.5
    assert speech_fraction(silence(2.0)) == 0.0
