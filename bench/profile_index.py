"""Where indexing spends its time: each stage of the default (speech on) pipeline run alone, in
one process, over the same files.

Usage: python bench/profile_index.py [--long] [--limit N] [--no-speech] [--out NAME]
Prints and saves (bench/results/profile_index[_long].json, or NAME.json) the process CPU time (user + sys,
which the other sessions' load changes little) and the wall time of each stage, with the load
average. The Whisper encoder's share of the two speech passes is counted by wrapping the
faster-whisper model's ``encode``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save, video_paths
from engine.index.decode import decode_video
from engine.jobs import CancelToken
from engine.library import Settings


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Stage:
    """Accumulates CPU and wall time of a named stage."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kw):
        c0, t0 = cpu_s(), time.perf_counter()
        out = fn(*args, **kw)
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu_s() - c0
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t0
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-speech", action="store_true", help="skip the speech and caption passes")
    ap.add_argument("--out", help="name of the results file in bench/results/")
    args = ap.parse_args()
    paths = video_paths(args.long)
    if args.limit:
        paths = paths[: args.limit]
    from engine.models.registry import create_model
    from engine.speech.transcribe import get_transcriber

    model = create_model("mmv-base", "cpu")
    model.load_all()
    tr = get_transcriber("cpu")
    st = Stage()
    enc = {"calls": 0}
    real_encode = tr.model.encode

    def counted_encode(features):
        enc["calls"] += 1
        return st.run("_whisper_encoder_in_passes", real_encode, features)

    tr.model.encode = counted_encode
    cfg, clip_s, token = model.config, Settings().clip_seconds, CancelToken()
    load = os.getloadavg()[0]
    seconds, n_segments = 0.0, 0
    from engine.index.indexer import _clip_features

    for p in paths:
        d = st.run("decode", decode_video, p, clip_s, cfg.frames_per_clip, cfg.image_size, cfg.sample_rate)
        seconds += d.info["duration"]
        wf = None
        if d.audio is not None:
            wf = st.run("whisper_encoder_tower", model.audio.whisper.frame_features, d.audio)
        feats = st.run("cnn_frames", _clip_features, model, d, wf, token)
        st.run("heads", model.project_video, feats.video)
        if d.audio is None or args.no_speech:
            continue
        from engine.speech.transcribe import as_model_input

        audio = as_model_input(d.audio, cfg.sample_rate)
        said = st.run("speech_pass", tr._speech, audio, True, tr.beam_size)
        heard = st.run("caption_pass", tr._sound_captions, audio)
        texts = [s.text for s in said + heard]
        n_segments += len(texts)
        if texts:
            st.run("minilm_segments", model.text_features, texts)
    out = {"load_average_start": load, "load_average_end": os.getloadavg()[0], "files": len(paths),
           "video_seconds": seconds, "segments": n_segments, "encoder_calls_in_passes": enc["calls"],
           "cpu_s": {k: round(v, 2) for k, v in st.cpu.items()},
           "wall_s": {k: round(v, 2) for k, v in st.wall.items()},
           "total_cpu_s": round(sum(v for k, v in st.cpu.items() if not k.startswith("_")), 2)}
    out["vision_runtime"] = model.vision.runtime
    print(save(args.out or ("profile_index_long" if args.long else "profile_index"), out))
    for k, v in out.items():
        print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
