"""The new-user scenario of issue 9: can a short fine-tune teach sound -> picture on a new library?

    python bench/bench_tones.py [--minutes 3] [--work /tmp/mmv-tones] [--out bench/results/tones.json]

Six kinds of generated scene (a colour and a shape), each always with its own tone; four training
videos per kind with sound; one *silent* video per kind, made separately (other shape positions,
another background shade). `train --minutes M` with the default settings (heads only), then a
fresh recording of each tone (a new wav: other length, phase and level, with a little noise, as a
microphone would give; once clean and once with a quiet noise floor) is the query of
`search --audio`. The figure: for how many tones is the
right silent video the first silent video in the results (chance: 1 in 6), before and after
fine-tuning, with the rank of the right one among the six silent videos.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.api import Library
from engine.jobs import CancelToken
from tests.synth import SAMPLE_RATE, _frame, make_video, write_wav

KINDS = (  # (name, colour, shape, tone Hz)
    ("red-square", (220, 30, 30), "square", 300.0),
    ("green-circle", (30, 180, 60), "circle", 450.0),
    ("blue-stripes", (40, 60, 220), "stripes", 650.0),
    ("yellow-circle", (230, 210, 40), "circle", 900.0),
    ("purple-square", (140, 40, 160), "square", 1300.0),
    ("cyan-stripes", (40, 200, 210), "stripes", 1900.0),
)
TRAIN_PER_KIND = 4


def tone(seconds: float, hz: float, phase: float = 0.0, level: float = 0.3, noise: float = 0.0,
         seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = level * np.sin(2 * np.pi * hz * t + phase)
    if noise:
        wave = wave + noise * np.random.default_rng(seed).standard_normal(len(t))
    return wave.astype(np.float32)


def make_library_media(folder: Path) -> dict[str, Path]:
    """Write the videos; -> {kind: its silent video}."""
    silent = {}
    for name, colour, shape, hz in KINDS:
        for i in range(TRAIN_PER_KIND):
            make_video(folder / f"{name}-{i}.mp4", colour, shape, seconds=8.0,
                       audio_wave=tone(8.0, hz, phase=0.5 * i, level=0.25 + 0.03 * i))
        # Made separately: the shape elsewhere in the frame and a slightly different background.
        frames = [_frame((160, 120), colour, shape, 2.0 + i / 10, (235, 235, 235)) for i in range(60)]
        silent[name] = make_video(folder / f"silent-{name}.mp4", colour, shape, audio=False, frames=frames)
    return silent


QUERY_NOISE = {"clean": 0.0, "noise floor": 0.003}  # the second: a quiet room's hiss, -32 dB under the tone


def make_queries(folder: Path) -> dict[str, dict[str, Path]]:
    """A fresh 'recording' of each tone: other length, phase and level; clean, and with a noise
    floor as a microphone gives. -> {variant: {kind: wav}}."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Path]] = {}
    for variant, noise in QUERY_NOISE.items():
        tag = variant.replace(" ", "-")
        out[variant] = {name: write_wav(folder / f"{name}-{tag}.wav",
                                        tone(5.3, hz, phase=1.1, level=0.12, noise=noise, seed=k))
                        for k, (name, _c, _s, hz) in enumerate(KINDS)}
    return out


def silent_ranking(lib: Library, query: Path, silent: dict[str, Path]) -> list[str]:
    """The kinds of the silent videos in the order `search --audio` shows them."""
    by_path = {str(p.resolve()): name for name, p in silent.items()}
    order: list[str] = []
    for moment in lib.search_audio(str(query), top_k=500).moments:
        name = by_path.get(str(Path(moment.path).resolve()))
        if name and name not in order:
            order.append(name)
    return order + [n for n in silent if n not in order]


def score(lib: Library, queries: dict[str, dict[str, Path]], silent: dict[str, Path]) -> dict:
    out = {}
    for variant, wavs in queries.items():
        ranks = {name: silent_ranking(lib, q, silent).index(name) + 1 for name, q in wavs.items()}
        out[variant] = {"first": sum(r == 1 for r in ranks.values()), "of": len(ranks), "ranks": ranks}
    return out


def run(work: Path, minutes: float, device: str = "cpu", options: dict | None = None,
        reuse: bool = False) -> dict:
    """``reuse``: keep an earlier run's media and index (the model goes back to the base one)."""
    media, lib_dir = work / "media", work / "lib"
    if not reuse:
        shutil.rmtree(lib_dir, ignore_errors=True)
        shutil.rmtree(media, ignore_errors=True)
    silent = ({name: media / f"silent-{name}.mp4" for name, *_ in KINDS} if media.exists()
              else make_library_media(media))
    queries = make_queries(work / "queries")
    lib = Library(lib_dir, device=device)
    if lib.active_model_id != lib.base_model_id:
        lib.use_model(lib.base_model_id)
    try:
        t0 = time.perf_counter()
        for _ in lib.index([media], CancelToken()):
            pass
        out = {"index_seconds": round(time.perf_counter() - t0, 1), "before": score(lib, queries, silent)}
        t0 = time.perf_counter()
        done = None
        for p in lib.train(CancelToken(), minutes=minutes, device=device, **(options or {})):
            done = p
        out["train_seconds"] = round(time.perf_counter() - t0, 1)
        out["held_out"] = done.info["metrics"]["held_out"]
        out["after"] = score(lib, queries, silent)
        return out
    finally:
        lib.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/mmv-tones"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--reuse", action="store_true", help="reuse the indexed library of an earlier run")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="extra TrainConfig field")
    args = ap.parse_args()
    options = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    result = {"minutes": args.minutes, "options": options, "load_before": os.getloadavg(),
              **run(args.work, args.minutes, args.device, options, args.reuse), "load_after": os.getloadavg()}
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
