"""Helpers for the speech tests: synthesised speech (espeak-ng), word error rate, shared media,
narrated test videos and a fake ALSA microphone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

SAMPLE_RATE = 16000
_DEFAULT_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SHARED_MEDIA = Path(os.environ.get("MMVSEARCH_MEDIA", _DEFAULT_MEDIA))

# Videos whose sound is music, noise or non-speech voices: a transcript there is a hallucination.
NON_SPEECH_VIDEOS = [
    "video/demos/moviepy__chaplin.mp4", "video/demos/moviepy__big_buck_bunny_0_30.webm",
    "video/demos/difffoley__drum.mp4", "video/demos/difffoley__car.mp4",
    "video/vas/drum__video_02480.mp4", "video/vas/fireworks__video_03051.mp4",
    "video/vas/dog__video_02754.mp4", "video/vas/baby__video_01951.mp4",
    "video/demos/videollama__dog_barking.mp4", "video/demos/videollava__sample_demo_22.mp4",
]

# Sentences for word-error-rate checks; plain words that espeak-ng pronounces clearly.
SENTENCES = [
    "The budget for next year will grow by ten percent.",
    "Please put the red cup on the kitchen table.",
    "We watched the boats sail across the lake at sunset.",
    "The children played football in the park after school.",
]


def require_shared_media(*relative: str) -> Path:
    """The shared media folder (or a file in it); skip the test when it is not on this machine."""
    path = SHARED_MEDIA.joinpath(*relative)
    if not path.exists():
        pytest.skip(f"shared media not found at {path} (set MMVSEARCH_MEDIA)")
    return path


def require_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (packaging/setup.sh installs it)")
    return exe


def speak(text: str, voice: str = "en-us", words_per_minute: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng, as float32 mono 16 kHz."""
    exe = require_espeak()
    out = subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "--stdout", text],
                         check=True, capture_output=True).stdout
    return read_wav_bytes(out)


def read_wav_bytes(data: bytes) -> np.ndarray:
    import io
    import wave

    from engine.media.audio import resample

    with wave.open(io.BytesIO(data)) as w:
        rate, n = w.getframerate(), w.getnframes()
        pcm = np.frombuffer(w.readframes(n), dtype="<i2")
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1)
    return resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def narration(parts: list[str | float]) -> np.ndarray:
    """A soundtrack: strings are spoken, numbers are seconds of silence."""
    return np.concatenate([silence(p) if isinstance(p, (int, float)) else speak(p) for p in parts])


def make_narrated_video(path: Path, parts: list[str | float],
                        color: tuple[int, int, int] = (0, 90, 200)) -> Path:
    """An mp4 with a drawn shape and an espeak-ng narration (muxed with PyAV by tests/synth.py)."""
    from tests.synth import make_video

    wave = narration(parts)
    seconds = len(wave) / SAMPLE_RATE
    return make_video(path, color=color, audio_wave=wave, seconds=seconds, fps=5, size=(96, 64))


def words_of(text: str) -> list[str]:
    """Lower-case words, digits spelled as Whisper may write them ("10%" vs "ten percent")."""
    text = text.lower().replace("%", " percent")
    numbers = {"10": "ten", "2": "two", "3": "three", "5": "five"}
    return [numbers.get(w, w) for w in re.findall(r"[a-z0-9']+", text)]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance over words."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    dist = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, dist[0] = dist[0], i
        for j, h in enumerate(hyp, 1):
            prev, dist[j] = dist[j], min(dist[j] + 1, dist[j - 1] + 1, prev + (r != h))
    return dist[len(hyp)] / max(1, len(ref))


ASOUNDRC = """
pcm.mmv_fake_file {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
pcm.{name} {{
    type plug
    slave {{ pcm "mmv_fake_file"; format S16_LE; rate {rate}; channels 1 }}
    hint.description "mmvsearch test microphone"
}}
"""


@contextmanager
def fake_microphone(tmp_path: Path, wave: np.ndarray, name: str = "mmv_fake_mic",
                    rate: int = SAMPLE_RATE) -> Iterator[str]:
    """An ALSA input device named ``name`` that plays ``wave`` (bit-exact, not paced in real time).

    The device lives in an asoundrc under a private ``$XDG_CONFIG_HOME``; PortAudio is re-initialised
    so that it sees it, and again on exit so that later tests do not.
    """
    from engine.errors import RecorderError
    from engine.speech.recorder import list_input_devices

    raw = tmp_path / "fake_mic.raw"
    (np.clip(wave, -1, 1) * 32767).round().astype("<i2").tofile(raw)
    conf_dir = tmp_path / "xdg" / "alsa"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "asoundrc").write_text(ASOUNDRC.format(infile=raw, name=name, rate=rate))
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    try:
        try:
            names = [d["name"] for d in list_input_devices(refresh=True)]
        except RecorderError as exc:
            pytest.skip(f"PortAudio is not usable here: {exc}")
        if name not in names:
            pytest.skip(f"ALSA did not pick up the fake microphone (devices: {names})")
        yield name
    finally:
        if old is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = old
        list_input_devices(refresh=True)
