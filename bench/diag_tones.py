"""Why a noisy recording misses in the tones scenario: where the trouble is, measured on a library
that bench_tones.py built and trained (docs/finetune.md, "Why the noisy case failed").

    python bench/diag_tones.py WORK [--model ID] [--out bench/results/tones_diagnosis.json]

For every query wav of WORK/queries: (1) the base audio geometry, the mean cosine of the query's
audio input (centred Whisper mean, what the frozen audio head reads) to each kind's stored clips,
and the rank of its own kind; (2) with the fine-tuned model ``--model`` (default: the active one),
the rank of its own kind among the *silent* videos' pictures and among the *training* videos'
pictures (S_va, mean over a video's clips). If (1) already fails, no video head can fix it; if (2)
fails for the silent videos only, the picture side does not generalise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.api import Library
from engine.index.db import from_blob
from engine.models.audio import query_features
from engine.search.query import load_wave


def kind_of(path: str) -> tuple[str, bool]:
    """(kind, silent) from a bench_tones file name."""
    stem = Path(path).stem
    return (stem.removeprefix("silent-"), True) if stem.startswith("silent-") else (stem.rsplit("-", 1)[0], False)


def rank(scores: dict[str, float], true: str) -> int:
    return sorted(scores, key=lambda k: -scores[k]).index(true) + 1


def diagnose(lib: Library, queries: list[Path]) -> list[dict]:
    import torch

    model = lib.load_models()
    heads, conn = model.heads, lib.db.conn
    clips = conn.execute("SELECT c.id, v.path, f.audio FROM clips c JOIN videos v ON v.id = c.video_id "
                         "JOIN features f ON f.clip_id = c.id").fetchall()
    kinds = sorted({kind_of(p)[0] for _, p, _ in clips})
    audio = {k: heads.audio_input(torch.tensor(np.stack([from_blob(a, "float16") for _, p, a in clips
                                                         if a is not None and kind_of(p)[0] == k])).float()).numpy()
             for k in kinds}
    video = {}
    for cid, vec in conn.execute("SELECT clip_id, vec FROM embeddings WHERE model_id=? AND space='va' "
                                 "AND modality='video'", (lib.active_model_id,)):
        video[cid] = from_blob(vec)
    path_of = {cid: p for cid, p, _ in clips}
    out = []
    for q in queries:
        wave = load_wave(str(q), 16000, model.config.sample_rate)
        qa = heads.audio_input(torch.from_numpy(query_features(model.whisper, wave)).float()).numpy()[0]
        qv = model.encode_audio(wave)["va"][0]
        true = next(k for k in kinds if q.stem.startswith(k))
        geometry = {k: float((audio[k] @ qa).mean()) for k in kinds}
        pictures = {s: {k: float(np.mean([qv @ v for c, v in video.items() if kind_of(path_of[c]) == (k, s)]))
                        for k in kinds} for s in (True, False)}
        out.append({"query": q.stem, "audio_geometry": {k: round(v, 3) for k, v in geometry.items()},
                    "audio_geometry_rank": rank(geometry, true), "silent_picture_rank": rank(pictures[True], true),
                    "training_picture_rank": rank(pictures[False], true)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--model", help="the fine-tuned model to look at (default: the active one)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lib = Library(args.work / "lib", device="cpu")
    try:
        if args.model:
            lib.use_model(args.model)
        result = {"model": lib.active_model_id, "queries": diagnose(lib, sorted((args.work / "queries").glob("*.wav")))}
    finally:
        lib.close()
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    for q in result["queries"]:
        print(f"{q['query']:34s} audio geometry rank {q['audio_geometry_rank']}  silent pictures "
              f"{q['silent_picture_rank']}  training pictures {q['training_picture_rank']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
