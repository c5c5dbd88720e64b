"""Retrieval quality on ../shared/media, out of the box (or with the library's active model).

- text -> video: each video's label as the query; R@1/5/10 and mean rank of the first video
  with that label, next to the random baseline;
- audio -> video: ESC-50 clips of classes the videos share as queries; R@1/5;
- audio tower: ESC-50 fold-4 linear probe, folds grouped by source recording.

Usage: python bench/bench_retrieval.py [--library DIR] [--rebuild] [--transcribe] [--name NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from math import comb
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_index import DEFAULT_LIB, build_library
from bench.common import MEDIA, esc50_meta, save, videos
from engine.api import Library
from engine.train.evaluate import AUDIO_TO_VIDEO, ranked_videos, recall  # shared with `mmvsearch eval`


def random_baseline(n: int, n_relevant: list[int], k: int) -> float:
    return float(np.mean([1 - comb(n - m, k) / comb(n, k) for m in n_relevant]))


def first_hit_rank(ranking: list[str], relevant: set[str], n: int) -> int:
    for i, path in enumerate(ranking, 1):
        if path in relevant:
            return i
    return n  # not retrieved at all: worst rank


def text_to_video(lib: Library, field: str = "label") -> dict:
    vids = videos()
    n = len(vids)
    by_label: dict[str, set[str]] = {}
    for v in vids:
        by_label.setdefault(v["label"], set()).add(str(MEDIA / v["path"]))
    ranks, n_rel, per_query, times = [], [], [], []
    for v in vids:
        query = v[field] or v["label"]
        relevant = by_label[v["label"]]
        t0 = time.perf_counter()
        res = lib.search_text(query, top_k=200)
        times.append(time.perf_counter() - t0)
        r = first_hit_rank(ranked_videos(res), relevant, n)
        ranks.append(r)
        n_rel.append(len(relevant))
        per_query.append({"query": query, "rank": r, "top": Path(res.moments[0].path).name if res.moments else None})
    return {"n_queries": len(ranks), **{f"R@{k}": recall(ranks, k) for k in (1, 5, 10)},
            "mean_rank": float(np.mean(ranks)), **{f"random_R@{k}": random_baseline(n, n_rel, k) for k in (1, 5, 10)},
            "random_mean_rank": float(np.mean([(n + 1) / (m + 1) for m in n_rel])),
            "warm_query_ms_median": 1000 * float(np.median(times)), "per_query": per_query}


def audio_to_video(lib: Library) -> dict:
    vids = videos()
    n = len(vids)
    ranks, n_rel, per_query = [], [], []
    for clip in esc50_meta():
        labels = AUDIO_TO_VIDEO.get(clip["label"])
        if not labels:
            continue
        relevant = {str(MEDIA / v["path"]) for v in vids if v["label"] in labels}
        res = lib.search_audio(clip["path"], top_k=200)
        r = first_hit_rank(ranked_videos(res), relevant, n)
        ranks.append(r)
        n_rel.append(len(relevant))
        per_query.append({"query": clip["path"].name, "class": clip["label"], "rank": r})
    return {"n_queries": len(ranks), **{f"R@{k}": recall(ranks, k) for k in (1, 5, 10)},
            "mean_rank": float(np.mean(ranks)), **{f"random_R@{k}": random_baseline(n, n_rel, k) for k in (1, 5)},
            "per_query": per_query}


def linear_probe(lib: Library) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine.media.audio import load_audio

    model = lib.load_models()
    clips = [c for c in esc50_meta() if c["fold"] == 4]
    feats, labels, groups = [], [], []
    for c in clips:
        wave = load_audio(c["path"], model.config.sample_rate)
        feats.append(model.audio_features(wave, [(0.0, len(wave) / model.config.sample_rate)]).numpy()[0])
        labels.append(c["label"])
        groups.append(c["source"])
    x, y, g = np.stack(feats), np.asarray(labels), np.asarray(groups)
    out = {"n_clips": len(y), "n_classes": len(set(labels)), "chance": 1 / len(set(labels))}
    for name, splits in (("grouped_4fold", GroupKFold(4).split(x, y, g)),
                         ("stratified_4fold", StratifiedKFold(4, shuffle=True, random_state=0).split(x, y))):
        accs = []
        for tr, te in splits:
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
            clf.fit(x[tr], y[tr])
            accs.append(float((clf.predict(x[te]) == y[te]).mean()))
        out[name] = float(np.mean(accs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--transcribe", action="store_true")
    ap.add_argument("--name", default="retrieval")
    ap.add_argument("--skip-probe", action="store_true")
    args = ap.parse_args()
    if args.rebuild or not (args.library / "library.db").exists():
        lib, _ = build_library(args.library, transcribe=args.transcribe)
    else:
        lib = Library(args.library, device="cpu")
    out = {"model": lib.active_model_id, "text_to_video": text_to_video(lib),
           "text_to_video_caption": text_to_video(lib, "caption"), "audio_to_video": audio_to_video(lib)}
    if not args.skip_probe:
        out["esc50_linear_probe"] = linear_probe(lib)
    print(save(args.name, out))
    for key, val in out.items():
        if isinstance(val, dict):
            print(key, {k: round(v, 3) if isinstance(v, float) else v for k, v in val.items() if k != "per_query"})


if __name__ == "__main__":
    main()
