"""Speech commands for ``mmvsearch``: ``record``, ``transcribe``, ``devices``."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

from engine.errors import RecorderError

COMMANDS = ("record", "transcribe", "devices")


def add_commands(sub) -> None:
    rec = sub.add_parser("record", help="record from the microphone into a WAV file")
    rec.add_argument("--seconds", type=float, default=5.0, help="how long to record (default 5)")
    rec.add_argument("--out", required=True, help="WAV file to write (16 kHz mono)")
    # dest differs from the global --device (compute device) so the two never overwrite each other
    rec.add_argument("--device", dest="input_device",
                     help="input device index or name (see `mmvsearch devices`)")
    sub.add_parser("transcribe", help="add transcripts and sound captions to already indexed videos")
    dev = sub.add_parser("devices", help="list microphones (audio input devices)")
    dev.add_argument("--json", action="store_true", help="one JSON object per device")


def run_command(args, lib_factory) -> int | None:
    """Exit code of a speech command, or None when ``args.command`` is not one of ours."""
    if args.command == "record":
        return _record(args)
    if args.command == "devices":
        return _devices(args)
    if args.command == "transcribe":
        return _transcribe(lib_factory())
    return None


def _record(args) -> int:
    from engine.speech.recorder import record

    if args.seconds <= 0:
        raise RecorderError("--seconds must be positive")
    name = args.input_device
    device = int(name) if name and name.isdigit() else name
    print(f"recording {args.seconds:g} s...", file=sys.stderr)
    audio = record(args.seconds, device=device)
    write_wav(Path(args.out), audio)
    print(f"wrote {args.out} ({len(audio) / 16000:.1f} s)", file=sys.stderr)
    return 0


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = 16000) -> None:
    """16-bit PCM mono WAV (readable by every player and by ``search --audio``)."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def _devices(args) -> int:
    import json

    from engine.speech.recorder import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found", file=sys.stderr)
        return 1
    for d in devices:
        if getattr(args, "json", False):
            print(json.dumps(d))
        else:
            mark = "*" if d["default"] else " "
            print(f"{mark} {d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['sample_rate']:.0f} Hz, "
                  f"{d['host_api']})")
    return 0


def _transcribe(lib) -> int:
    from engine.jobs import CancelToken

    runner = getattr(lib, "transcribe", None)  # the facade's method holds the writer lock
    if runner is None:
        from engine.speech.transcribe_library import transcribe_library

        runner = lambda token: transcribe_library(lib, token)
    from engine.terminal import ProgressLine

    last = None
    out = ProgressLine()
    for progress in runner(CancelToken()):
        last = progress
        out.show(progress, f"[{progress.fraction * 100:5.1f}%] {progress.message[:70]}")
    out.end()
    failed = (last.info.get("failed") if last else None) or []
    for path in failed:
        print(f"could not read: {path}", file=sys.stderr)
    return 1 if failed else 0
