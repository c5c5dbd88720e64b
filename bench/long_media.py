"""Long test videos for the indexing benchmark: 10 minutes of 720p30 and 1080p30 H.264 + AAC with
speech (espeak-ng sentences every few seconds) over background sound (a soft tone and noise).

Generated once with PyAV and cached outside the repository (default /tmp/mmvsearch-long-media),
since encoding 10 minutes of 1080p takes minutes on a laptop CPU. The picture is a moving pattern
that changes scene every 20 s, so frames are not trivially compressible.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

SR = 16000
SENTENCES = [
    "The weather today is sunny with a light breeze from the west.",
    "Please remember to bring your camera to the birthday party.",
    "The train to the city leaves every twenty minutes.",
    "Our dog likes to run on the beach in the morning.",
    "She played the piano while the children were dancing.",
    "The market sells fresh bread, cheese and vegetables.",
]
SIZES = {"720p30": (1280, 720), "1080p30": (1920, 1080)}
DEFAULT_DIR = Path("/tmp/mmvsearch-long-media")


def _speech(text: str) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is needed for the long benchmark videos")
    import io
    import wave

    from engine.media.audio import resample

    raw = subprocess.run([exe, "-v", "en-us", "-s", "150", "--stdout", text], check=True,
                         capture_output=True).stdout
    with wave.open(io.BytesIO(raw)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return resample(pcm.astype(np.float32) / 32768.0, rate, SR)


def soundtrack(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech every ~12 s (about half the time) over a tone and noise, float32 mono 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    audio = 0.05 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(n)
    voices = [_speech(s) for s in SENTENCES]
    start = 1.0
    while start < seconds - 6:
        v = voices[int(rng.integers(len(voices)))]
        a = int(start * SR)
        audio[a:a + v.size] += 0.6 * v[: max(0, n - a)]
        start += 12.0
    return np.clip(audio, -1, 1).astype(np.float32)


def _frame(w: int, h: int, i: int, fps: int) -> np.ndarray:
    scene = i // (20 * fps)
    colour = np.array([(scene * 70) % 255, (scene * 130 + 60) % 255, (scene * 40 + 120) % 255], np.uint8)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = colour
    x = (i * 7) % w
    img[:, x:x + w // 8] = 255 - colour
    y = (i * 3) % h
    img[y:y + h // 10, :] //= 2
    return img


def make_long_video(path: Path, size: tuple[int, int], seconds: float, fps: int = 30) -> Path:
    import av

    w, h = size
    audio = soundtrack(seconds)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "26", "bf": "2"}
        as_ = out.add_stream("aac", rate=SR)
        as_.layout = "mono"
        for i in range(int(seconds * fps)):
            for packet in vs.encode(av.VideoFrame.from_ndarray(_frame(w, h, i, fps), format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        step = 1024
        for k in range(0, audio.size, step):
            frame = av.AudioFrame.from_ndarray(audio[None, k:k + step], format="flt", layout="mono")
            frame.sample_rate = SR
            for packet in as_.encode(frame):
                out.mux(packet)
        for packet in as_.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def long_videos(folder: Path = DEFAULT_DIR, minutes: float = 10.0) -> list[Path]:
    """The cached long videos (generated on first use)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, size in SIZES.items():
        path = folder / f"long_{name}_{minutes:g}min.mp4"
        if not path.exists():
            print(f"generating {path} (once)...", flush=True)
            make_long_video(path, size, minutes * 60)
        paths.append(path)
    return paths
