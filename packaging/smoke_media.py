"""Media for packaging/smoke_test.sh: generated videos with known speech and sounds.

Run with any Python that has numpy and PyAV (the build venv): ``python packaging/smoke_media.py DIR``.
Writes DIR/videos/*.mp4 (one video whose first clip is noise bursts and whose next clips are a
spoken sentence, plus two distractors) and DIR/bursts.wav (a different take of the same sound, the
``--audio`` query). The installed app never imports this file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.synth import SAMPLE_RATE, make_audio, make_video, write_wav

SENTENCE = "the lighthouse keeper feeds the seagulls every morning before sunrise"


def speak(text: str) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is missing (packaging/setup.sh --system installs it)")
    wav = subprocess.run([exe, "-v", "en-us", "-s", "140", "--stdout", text], check=True,
                         capture_output=True).stdout
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    x = pcm.astype(np.float32) / 32768
    idx = np.arange(int(len(x) * SAMPLE_RATE / rate)) * rate / SAMPLE_RATE
    return np.interp(idx, np.arange(len(x)), x).astype(np.float32)


def main(out: Path) -> None:
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    bursts = make_audio(4.0, noise=True, seed=1)
    speech = speak(SENTENCE)
    body = np.concatenate([bursts, speech])
    clip = 4 * SAMPLE_RATE
    wave = np.pad(body, (0, -len(body) % clip))          # whole 4 s clips
    make_video(videos / "lighthouse_talk.mp4", color=(0, 90, 200), shape="square",
               audio_wave=wave, seconds=len(wave) / SAMPLE_RATE, fps=5, size=(160, 120))
    make_video(videos / "green_tone.mp4", color=(0, 180, 0), shape="circle", tone_hz=1000.0, seconds=8.0)
    make_video(videos / "silent_stripes.mp4", color=(90, 90, 90), shape="stripes", tone_hz=None, seconds=8.0)
    write_wav(out / "bursts.wav", make_audio(4.0, noise=True, seed=7))
    print(f"smoke media in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
