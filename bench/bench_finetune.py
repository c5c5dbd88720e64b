"""Does fine-tuning keep (or improve) the product? Index the shared media, measure the product's
figures on the *report* part of the fixed split (bench/splits, quality's harness), fine-tune,
measure again, and report the run's own held-out before/after figures.

    python bench/bench_finetune.py [--media ../shared/media] [--library /tmp/mmv-bench-lib]
                                   [--epochs N | --minutes M] [--out bench/results/finetune.json]

Training uses the whole library, as a user's `mmvsearch train` does (self-supervised: no labels;
the trainer itself holds out a fifth of the videos for its validation). The report part's videos
are therefore among those trained on (without their labels); the product figures are measured on
the report part only, so no design choice made on the tune part is rewarded here. Figures: text ->
video, sound -> video (`search --audio`), sound-alike; R@k with 95% bootstrap intervals and the
random baseline; ``regressions`` lists every figure whose value after fine-tuning falls below the
pretrained interval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit
from bench.harness import headline, load_splits, run_all
from engine.api import Library
from engine.jobs import CancelToken

MEASURES = ("text_to_video", "sound_to_video", "sound_alike")


def measure(lib: Library) -> dict:
    t0 = time.perf_counter()
    result = run_all(lib, load_splits(), sides=("report",), measures=MEASURES)
    return {"figures": result, "eval_seconds": round(time.perf_counter() - t0, 1)}


def regressions(before: dict, after: dict) -> list[str]:
    """Figures (R@1, R@5) whose fine-tuned value is below the pretrained 95% interval."""
    out = []
    for name, sides in before["figures"].items():
        for side, rep in sides.items():
            for k in ("R@1", "R@5"):
                if after["figures"][name][side][k]["value"] < rep[k]["low"]:
                    out.append(f"{name} {side} {k}: {after['figures'][name][side][k]['value']:.2f} "
                               f"< {rep[k]['low']:.2f}")
    return out


def index(lib: Library, media: Path) -> float:
    t0 = time.perf_counter()
    for p in lib.index([media / "video"], CancelToken()):
        print(f"\r[index] {p.stage} {int(p.done)}/{int(p.total)} {p.message[:80]}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - t0


def fine_tune(lib: Library, options: dict) -> tuple[dict, float]:
    """-> (the "done" event's info plus measured phases, wall seconds)."""
    t0 = time.perf_counter()
    done, first_step, rates = None, None, []
    for p in lib.train(CancelToken(), **options):
        if p.stage == "train":
            i = p.info
            first_step = first_step or time.perf_counter()
            if "loss" in i:
                rates.append(i["clips_per_s"])
                print(f"\r[train] step {int(p.done)}/{int(p.total)} loss {i['loss']:.3f} "
                      f"held-out {i.get('best_val_loss') or 0:.3f} {i['clips_per_s']:.0f} clips/s",
                      end="", file=sys.stderr)
        done = p
    print(file=sys.stderr)
    phases = {"prepare_seconds": round((first_step or t0) - t0, 1),  # deep mode: decoding + trunk cache
              "clips_per_s_train": round(float(sorted(rates)[len(rates) // 2]), 1) if rates else None}
    return {**done.info, **phases}, time.perf_counter() - t0


def plot_losses(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    curves = (("loss", "total"), ("val_loss", "held-out (validation)"), ("loss_nce", "NCE video-audio (S_va)"),
              ("loss_milnce", "MIL-NCE video-narration (S_vat)"),
              ("loss_bridge", "bridge audio->video (S_vat)"), ("loss_keep", "keep (S_vat, vs parent)"))
    for key, label in curves:
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def throughput(n_clips: int, device: str, batch_size: int) -> dict:
    """Training speed on a synthetic library of ``n_clips`` 4 s clips (features only, no media)."""
    import tempfile

    from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library

    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(Path(tmp) / "lib", device=device)
        model = fake_base_model()
        lib.ctx.loader = lambda ctx: model
        spec = SyntheticSpec(n_pairs=10, videos_per_pair=max(1, n_clips // 150), clips_per_video=15)
        write_synthetic_library(lib.db, spec, model.config)
        info, seconds = fine_tune(lib, {"epochs": 1, "device": device, "batch_size": batch_size})
        steps = lib.list_models()[-1]["info"]["steps"]
        lib.close()
    clips = spec.n_pairs * spec.videos_per_pair * spec.clips_per_video
    return {"clips": clips, "hours_of_video": round(clips * 4 / 3600, 2), "device": device,
            "train_seconds_per_epoch": info["train_seconds"], "clips_per_s": round(clips / info["train_seconds"]),
            "steps": steps, "total_seconds_with_reprojection_and_indexes": round(seconds, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--media", type=Path, default=root.parent / "shared" / "media")
    ap.add_argument("--library", type=Path, default=Path("/tmp/mmv-bench-lib"))
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--weights", type=float, nargs=2, default=(1.0, 1.0))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--deep", action="store_true", help="deep mode: the last vision blocks train too")
    ap.add_argument("--plot", type=Path, help="loss curves PNG (default docs/finetune[_deep]_loss.png)")
    ap.add_argument("--plot-losses", action="store_true", help="draw the loss curves (needs matplotlib)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="extra TrainConfig field, e.g. --set keep_audio_weight=1.0")
    ap.add_argument("--throughput", type=int, metavar="N_CLIPS",
                    help="only measure training speed on N synthetic clips (no media needed)")
    args = ap.parse_args()
    args.plot = args.plot or root / "docs" / ("finetune_deep_loss.png" if args.deep else "finetune_loss.png")
    if args.throughput:
        print(json.dumps(throughput(args.throughput, args.device, args.batch_size), indent=2))
        return 0
    lib = Library(args.library, device=args.device)
    if lib.active_model_id != lib.base_model_id:
        lib.use_model(lib.base_model_id)  # before indexing: a new backbone makes old fine-tunes unusable
    report: dict = {"index_seconds": round(index(lib, args.media), 1), "trained_on": "the whole library",
                    "figures_on": "report part of bench/splits", "load_before": os.getloadavg()}
    report["before"] = measure(lib)
    print(headline(report["before"]["figures"]), file=sys.stderr)
    options = {
        "epochs": args.epochs,
        "minutes": args.minutes,
        "device": args.device,
        "batch_size": args.batch_size,
        "weights": tuple(args.weights),
        "deep": args.deep,
        **{k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)},
    }
    info, seconds = fine_tune(lib, options)
    report["train"] = {"wall_seconds": round(seconds, 1), "options": options, **info}
    report["after"] = measure(lib)
    print(headline(report["after"]["figures"]), file=sys.stderr)
    report["regressions"] = regressions(report["before"], report["after"])
    report["load_after"] = os.getloadavg()
    model = next(m for m in lib.list_models() if m["id"] == info["model_id"])
    report["train"]["data"] = model["info"]["data"]
    report["train"]["steps"] = model["info"]["steps"]
    if args.plot_losses:
        plot_losses(model["info"]["history"], args.plot,
                    f"fine-tuning on {args.media.name}: {model['info']['data']['clips']} clips, "
                    f"{model['info']['steps']} steps ({args.device}{', deep' if args.deep else ''})")
    return emit(report, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
