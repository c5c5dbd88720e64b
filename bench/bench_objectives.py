"""The self-supervised objectives side by side on the shared media (heads-only fine-tuning).

    python bench/bench_objectives.py [--library /tmp/mmv-bench-lib] [--objectives mmv simclr ...]
                                     [--epochs 30] [--out bench/results/objectives.json]

The base library (indexed with transcripts and sound captions; indexed here if missing) is copied
once per objective, so every run starts from the same base model; each copy is fine-tuned with
``--objective NAME`` and otherwise default settings, then measured with the one retrieval harness
(bench/harness.py) on the report part of the fixed split: text -> video, sound -> video (product
search) and sound-alike (S_va), each with 95% bootstrap intervals and random baselines. Nothing
is tuned per objective (each runs with the trainer's defaults), so the tune part is not used. Per objective,
the paired difference from ``mmv`` on the report part (R@5, per-query hits, paired bootstrap)
says whether the data can tell the two apart.

The audio backbones are frozen in heads-only training, so each sound's backbone features are
computed once and reused by every model (the heads still run per model); this changes nothing in
the figures, only the time the benchmark takes. Raw numbers: bench/results/objectives.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MEDIA, RESULTS, save
from bench.harness import load_splits, run_all
from engine.api import Library
from engine.evaluation.metrics import paired_difference
from engine.jobs import CancelToken

OBJECTIVES = ("mmv", "simclr", "barlow", "swav", "gdt", "avlnet", "gdt-td")
MEASURES = ("text_to_video", "sound_to_video", "sound_alike")
# Only the report part: every objective runs with its default settings, so nothing is tuned here
# and the tune part has nothing to decide (measuring it would double the benchmark's time).
SIDES = ("report",)
_AUDIO_CACHE: dict[str, object] = {}


def memoise_audio(lib: Library) -> None:
    """Reuse each sound's (frozen) backbone features across models: see the module docstring."""
    model = lib.load_models()
    if getattr(model, "_bench_memo", False):
        return
    compute = model.audio_features

    def cached(wave: np.ndarray, windows):
        key = hashlib.sha1(np.ascontiguousarray(wave).tobytes() + repr(windows).encode()).hexdigest()
        if key not in _AUDIO_CACHE:
            _AUDIO_CACHE[key] = compute(wave, windows)
        return _AUDIO_CACHE[key]

    model.audio_features = cached
    model._bench_memo = True


def ensure_indexed(library: Path) -> None:
    lib = Library(library, device="cpu")
    for p in lib.index([MEDIA / "video"], CancelToken(), transcribe=True):
        print(f"\r[index] {p.stage} {int(p.done)}/{int(p.total)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    if lib.active_model_id != lib.base_model_id:
        lib.use_model(lib.base_model_id)
    lib.close()


def measure(lib: Library, splits) -> dict:
    memoise_audio(lib)
    t0 = time.perf_counter()
    out = run_all(lib, splits, sides=SIDES, measures=MEASURES)
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def train(lib: Library, objective: str, epochs: int | None, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    done = None
    options = {"objective": objective, "device": "cpu", "seed": seed, **({"epochs": epochs} if epochs else {})}
    for p in lib.train(CancelToken(), **options):
        if p.stage == "train":
            print(f"\r[{objective}] step {int(p.done)}/{int(p.total)} loss {p.info['loss']:.3f}", end="",
                  file=sys.stderr)
        done = p
    print(file=sys.stderr)
    info = done.info
    return {"model_id": info["model_id"], "train_seconds": info.get("train_seconds"),
            "wall_seconds": round(time.perf_counter() - t0, 1), "steps": lib.list_models()[-1]["info"].get("steps"),
            "held_out": info.get("metrics", {}).get("held_out")}


def hits(report: dict, k: int) -> list[float]:
    return [float(q["rank"] <= k) for q in report["per_query"]]


def versus_mmv(results: dict, k: int = 5) -> dict:
    """{objective: {measure: paired R@k difference from mmv on the report part}}."""
    if "mmv" not in results:
        return {}
    base = results["mmv"]["after"]
    out = {}
    for name, r in results.items():
        if name == "mmv":
            continue
        out[name] = {m: paired_difference(hits(r["after"][m]["report"], k), hits(base[m]["report"], k)).to_dict()
                     for m in MEASURES}
    return out


def markdown(data: dict) -> str:
    """The report-part table of docs/objectives.md."""
    def cell(rep: dict, key: str) -> str:
        e = rep[key]
        return f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"

    head = ("| objective | sound -> video R@1 | sound -> video R@5 | text -> video R@1 | text -> video R@5 "
            "| sound-alike R@1 | sound-alike R@5 | train s |\n|---|---|---|---|---|---|---|---|")
    rows = []
    runs = [("before (base model)", data["before"], None)]
    runs += [(n, r["after"], r["train"]["train_seconds"]) for n, r in data["objectives"].items()]
    for name, res, seconds in runs:
        s, t, a = (res[m]["report"] for m in ("sound_to_video", "text_to_video", "sound_alike"))
        rows.append(f"| {name} | {cell(s, 'R@1')} | {cell(s, 'R@5')} | {cell(t, 'R@1')} | {cell(t, 'R@5')} "
                    f"| {cell(a, 'R@1')} | {cell(a, 'R@5')} | {'-' if seconds is None else f'{seconds:.1f}'} |")
    b = data["before"]
    rows.append(f"| random | {b['sound_to_video']['report']['R@1']['random']:.2f} "
                f"| {b['sound_to_video']['report']['R@5']['random']:.2f} "
                f"| {b['text_to_video']['report']['R@1']['random']:.2f} "
                f"| {b['text_to_video']['report']['R@5']['random']:.2f} "
                f"| {b['sound_alike']['report']['R@1']['random']:.2f} "
                f"| {b['sound_alike']['report']['R@5']['random']:.2f} | |")
    return "\n".join([head, *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--library", type=Path, default=Path("/tmp/mmv-bench-lib"))
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--epochs", type=int, default=None, help="default: the trainer's default")
    ap.add_argument("--out", type=Path, default=RESULTS / "objectives.json")
    ap.add_argument("--seed", type=int, default=0, help="training seed (batch order, prototypes)")
    ap.add_argument("--table", action="store_true", help="only print the markdown table of --out")
    args = ap.parse_args()
    if args.table:
        import json

        print(markdown(json.loads(args.out.read_text())))
        return
    ensure_indexed(args.library)
    splits = load_splits()
    data: dict = {"load_before": [round(x, 2) for x in os.getloadavg()], "seed": args.seed, "objectives": {}}
    base = Library(args.library, device="cpu")
    data["before"] = measure(base, splits)
    base.close()
    print("[before] measured", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.objectives:
            copy = Path(tmp) / name
            shutil.copytree(args.library, copy)
            lib = Library(copy, device="cpu")
            run = {"train": train(lib, name, args.epochs, args.seed)}
            run["after"] = measure(lib, splits)
            data["objectives"][name] = run
            lib.close()
            shutil.rmtree(copy, ignore_errors=True)
            print(f"[{name}] trained {run['train']['train_seconds']} s, measured in {run['after']['eval_seconds']} s",
                  file=sys.stderr)
            save(args.out.stem, {**data, "partial": True})  # a long run keeps what it measured so far
    data["versus_mmv_report_R@5"] = versus_mmv(data["objectives"])
    data["load_after"] = [round(x, 2) for x in os.getloadavg()]
    path = save(args.out.stem, data)
    print(markdown(data))
    print(path)


if __name__ == "__main__":
    main()
