"""What the noise-floor augmentation of fine-tuning costs: the time to make the noisy copies of a
library's training sounds (engine/train/noisy.py: decode, add a floor, Whisper, pool).

    python bench/bench_noisy_copies.py --library /tmp/mmv-bench-lib [--out bench/results/noisy_copies.json]

The library must be indexed (bench/bench_finetune.py indexes the shared media into it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit
from engine.api import Library
from engine.jobs import CancelToken
from engine.train.config import TrainConfig
from engine.train.data import load_training_data
from engine.train.holdout import split_holdout
from engine.train.noisy import noisy_copies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=Path("/tmp/mmv-bench-lib"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cfg = TrainConfig()
    lib = Library(args.library, device="cpu")
    try:
        base = lib.load_models()
        data = load_training_data(lib.db, backbone_id=base.config.backbone_id, vision_dim=base.config.vision_dim,
                                  audio_dim=base.config.audio_dim, text_dim=base.config.text_dim)
        train = split_holdout(data, cfg.holdout).train
        _ = base.whisper  # loaded before the clock starts: a training run has it loaded already
        load, t0, last = os.getloadavg(), time.perf_counter(), None
        gen = noisy_copies(lib.db.conn, lambda: base.whisper, train, copies=cfg.noise_copies,
                           max_seconds=cfg.noise_max_seconds, probability=cfg.noise_probability, seed=cfg.seed,
                           token=CancelToken())
        try:
            while True:
                last = next(gen)
        except StopIteration as stop:
            noisy = stop.value
        result = {"seconds": round(time.perf_counter() - t0, 1), "message": last.message,
                  "copies": None if noisy is None else noisy.summary(), "training_clips": len(train),
                  "load_before": load, "load_after": os.getloadavg()}
    finally:
        lib.close()
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
