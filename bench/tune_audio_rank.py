"""How an audio query ranks clips, decided on the *tune* side only (docs/evaluation.md).

The feature is fixed (mmv-base-v2: Whisper encoder frame mean, centred on the shipped centre;
its S_va projection is an isometry, so cosine here is the product's cosine). What is compared is
the ranking on top of it, each variant fixed before looking at any figure:

- ``base``: cosine; a video ranks by its best clip (the product today).
- ``csls``: hubness correction (CSLS, Lample et al. 2018, as the text -> picture channel does):
  a clip's score is lowered by half its mean cosine to its 10 nearest *other* clips of the
  gallery (clips of its own video or recording excluded, they are near copies). Computable at
  search time from the library's own vectors.
- ``top2``: a video scores the mean of its best two clips (its best clip when it has one).
- ``whiten``: per-dimension standardisation with shrinkage: each centred dimension divided by
  sqrt(0.5 var_d + 0.5 mean(var)), the variances over tune sounds and tune clips only (a
  statistic that would ship with the model like the centre).

Measures (tune side): sound -> video (side's videos, and all videos) with the library's stored
clip features; and the larger 5 s query -> 4 s clip check of bench/tune_audio_clips.py (its cache),
where a hit is a clip of another recording of the same label; and sound-alike (recording ->
the side's other recordings, the same protocol with whole recordings as the gallery). Paired bootstrap differences of
R@5 and of the rank of the first hit against ``base``.

Usage: python bench/tune_audio_rank.py --library DIR [--side tune]
Needs the caches of bench/tune_audio.py and bench/tune_audio_clips.py (/tmp/tune_audio*.npz).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save
from bench.harness import load_splits, media_path, report, sound_alike_queries, sound_queries
from bench.tune_audio import WM, clip_features
from engine.evaluation.metrics import first_relevant_ranks, paired_difference, ranks_from_rankings
from engine.evaluation.splits import members

CENTRE = Path(__file__).resolve().parents[1] / "resources" / "models" / "whisper_mean_centre_v2.npy"
HUB_K, HUB_WEIGHT, SHRINK = 10, 0.5, 0.5
VARIANTS = ("base", "csls", "top2", "whiten", "csls_top2")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def hub_penalty(gallery: np.ndarray, groups: np.ndarray, k: int = HUB_K) -> np.ndarray:
    """Each gallery item's mean cosine to its k nearest items of *other* groups."""
    sims = gallery @ gallery.T
    sims[groups[:, None] == groups[None, :]] = -np.inf
    k = min(k, max(1, int((sims > -np.inf).sum(axis=1).min())))
    return np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)


def scores(variant: str, q: np.ndarray, g: np.ndarray, groups: np.ndarray, scale: np.ndarray) -> np.ndarray:
    if "whiten" in variant:
        q, g = q / scale, g / scale
    q, g = unit(q), unit(g)
    s = q @ g.T
    if "csls" in variant:
        s = s - HUB_WEIGHT * hub_penalty(g, groups)[None, :]
    return s


def video_rankings(s: np.ndarray, clip_paths: list[str], top2: bool) -> list[list[str]]:
    out = []
    paths = np.array(clip_paths)
    uniq = sorted(set(clip_paths))
    for row in s:
        score = {}
        for p in uniq:
            v = np.sort(row[paths == p])[::-1]
            score[p] = float(v[:2].mean()) if top2 else float(v[0])
        out.append(sorted(uniq, key=score.get, reverse=True))
    return out


def sound_to_video(variant, qx, cx, clip_paths, scale, sounds, videos) -> dict | None:
    gallery = {media_path(v) for v in videos}
    queries = sound_queries(sounds, videos)
    if not queries:
        return None
    idx = [sounds.index(s) for s, _ in queries]
    s = scores(variant, qx[idx], cx, np.array(clip_paths), scale)
    rankings = video_rankings(s, clip_paths, "top2" in variant)
    return report(ranks_from_rankings(rankings, [r for _, r in queries], gallery), [s.path for s, _ in queries])


def query_to_clip(variant, whole, clip, scale, sounds) -> dict:
    relevant, rows = sound_alike_queries(sounds)
    groups = np.array([s.group for s in sounds])
    s = scores(variant, whole, clip, groups, scale)
    queries = []
    for i in rows:
        keep = groups != groups[i]
        queries += first_relevant_ranks(s[i][keep][None], relevant[i][keep][None])
    return report(queries, [sounds[i].path for i in rows])


def main() -> None:
    from engine.api import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--side", default="tune", choices=["tune", "report"])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    splits = load_splits()
    sounds = splits["sounds"]
    centre = np.load(CENTRE)
    queries = np.load("/tmp/tune_audio.npz")["queries"][:, WM] - centre
    qc = np.load("/tmp/tune_audio_clips.npz")
    whole, clip = qc["whole"][:, WM] - centre, qc["clip"][:, WM] - centre
    clip_paths, clips, _ = clip_features(Library(args.library, device="cpu"))
    clips = clips[:, WM] - centre
    tune_paths = {media_path(v) for v in members(splits["videos"], "tune")}
    tune_clip = np.array([p in tune_paths for p in clip_paths])
    tune_sound = np.array([s.split == "tune" for s in sounds])
    var = 0.5 * queries[tune_sound].var(axis=0) + 0.5 * clips[tune_clip].var(axis=0)
    scale = np.sqrt(SHRINK * var + (1 - SHRINK) * var.mean())
    side = np.array([s.split == args.side for s in sounds])
    side_sounds = [s for s in sounds if s.split == args.side]
    videos = members(splits["videos"], args.side)
    results: dict[str, dict] = {}
    for v in args.variants:
        results[v] = {
            "sound_to_video": sound_to_video(v, queries[side], clips, clip_paths, scale, side_sounds, videos),
            "sound_to_video_all_videos": sound_to_video(v, queries[side], clips, clip_paths, scale,
                                                        side_sounds, splits["videos"]),
            "query_to_clip": query_to_clip(v, whole[side], clip[side], scale, side_sounds),
            "sound_alike": query_to_clip(v, queries[side], queries[side], scale, side_sounds),
        }
    diffs = {}
    for v, res in results.items():
        if v == "base" or "base" not in results:
            continue
        diffs[v] = {m: paired_difference([q["rank"] <= 5 for q in r["per_query"]],
                                         [q["rank"] <= 5 for q in results["base"][m]["per_query"]]).to_dict()
                    for m, r in res.items() if r}
    rank_diffs = {v: {m: paired_difference([q["rank"] for q in r["per_query"]],
                                           [q["rank"] for q in results["base"][m]["per_query"]]).to_dict()
                      for m, r in res.items() if r}
                  for v, res in results.items() if v != "base" and "base" in results}
    print(save(f"tune_audio_rank_{args.side}", {"side": args.side, "hub_k": HUB_K, "hub_weight": HUB_WEIGHT,
                                                "shrink": SHRINK, "variants": results, "R@5_minus_base": diffs,
                                                "rank_minus_base": rank_diffs}))
    for v, res in results.items():
        for m, r in res.items():
            if not r:
                continue
            d = diffs.get(v, {}).get(m)
            e = rank_diffs.get(v, {}).get(m)
            extra = (f"  R@5 diff {d['value']:+.2f} [{d['low']:+.2f},{d['high']:+.2f}]  rank diff "
                     f"{e['value']:+.2f} [{e['low']:+.2f},{e['high']:+.2f}]") if d else ""
            print(f"{v:<10} {m:<26} n={r['R@5']['n_queries']:<3} R@1 {r['R@1']['value']:.2f} "
                  f"R@5 {r['R@5']['value']:.2f} [{r['R@5']['low']:.2f},{r['R@5']['high']:.2f}] "
                  f"(random {r['R@5']['random']:.2f}){extra}")


if __name__ == "__main__":
    main()
