"""Files that are not healthy videos, one per kind a user's folders hold (for the bad-file tests)."""

from __future__ import annotations

import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.synth import make_audio, make_video


def _png(w: int = 8, h: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + bytes([200, 30, 30]) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        wave = make_audio(2.0)
        frame = av.AudioFrame.from_ndarray((wave[None] * 0.5).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        for packet in [*s.encode(frame), *s.encode()]:
            c.mux(packet)


def _no_frames(path: Path) -> None:
    """A video stream is declared, but only sound is stored."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        wave = make_audio(2.0)
        frame = av.AudioFrame.from_ndarray((wave[None] * 0.5).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        for packet in [*s.encode(frame), *s.encode()]:
            c.mux(packet)


def _absurd_duration(path: Path, good: Path) -> None:
    """A real video whose headers claim days: every mvhd/tkhd/mdhd duration set to 2^32 - 2."""
    data = bytearray(good.read_bytes())
    offsets = {b"mvhd": 20, b"tkhd": 24, b"mdhd": 20}  # duration field, from the box type (version 0)
    for box, off in offsets.items():
        start = 0
        while (i := data.find(box, start)) >= 0:
            data[i + off: i + off + 4] = struct.pack(">I", 0xFFFFFFFE)
            start = i + 4
    path.write_bytes(bytes(data))


def make_bad_files(folder: Path, good: Path) -> dict[str, Path]:
    """kind -> file, all named like videos, in ``folder``; ``good`` is a healthy mp4 to mutate."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    files = {
        "zero-byte": folder / "empty.mp4",
        "truncated": folder / "truncated.mp4",
        "random bytes": folder / "random.mp4",
        "image named .mp4": folder / "picture.mp4",
        "text named .mp4": folder / "notes.mp4",
        "audio only": folder / "audio_only.mp4",
        "no video frames": folder / "no_frames.mp4",
        "absurd duration in header": folder / "absurd_duration.mp4",
    }
    files["zero-byte"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["random bytes"].write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["image named .mp4"].write_bytes(_png())
    files["text named .mp4"].write_text("just some notes\n" * 100)
    _audio_only(files["audio only"])
    _no_frames(files["no video frames"])
    _absurd_duration(files["absurd duration in header"], good)
    return files


def make_odd_entries(folder: Path) -> dict[str, Path]:
    """Directory entries that are not readable regular files with a storable name."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = {"FIFO": folder / "fifo.mp4", "broken symlink": folder / "broken.mp4",
               "symlink loop": folder / "loop.mp4"}
    os.mkfifo(entries["FIFO"])
    os.symlink(folder / "nowhere.mp4", entries["broken symlink"])
    os.symlink(entries["symlink loop"], entries["symlink loop"])
    raw = os.fsencode(str(folder)) + b"/bad\xff.mp4"
    with open(raw, "wb") as f:
        f.write(b"x")
    entries["non-UTF-8 name"] = Path(os.fsdecode(raw))
    return entries


def good_video(path: Path) -> Path:
    return make_video(path, seconds=3.0, size=(96, 72))
