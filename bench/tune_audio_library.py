"""Label-free, library-adaptive ways to rank clips for a sound query, decided on the *tune* side.

The feature is fixed (mmv-base-v2: Whisper encoder frame mean, centred on the shipped centre and
projected by an isometry; so the unit vectors ``u`` below are the library's S_va audio vectors up
to a rotation). What is compared is what the product could do on top of them at search time with
statistics of the user's own library only (no labels, nothing from the queries). Every variant and
its constants were fixed before any figure was seen:

- ``prod``: cosine + CSLS (engine/search/hubness.py), a video ranks by its best clip (the product).
- ``libc``: library centring (Jegou & Chum 2012): subtract the mean of the library's unit clip
  vectors from clips and query, renormalise, then CSLS. The shipped centre was estimated on this
  media's tune side; a user's library has its own mean (microphones, rooms, codecs).
- ``libw``: ``libc`` plus PCA whitening with shrinkage from the library's clips: each principal
  direction scaled by (0.5 lambda + 0.5 mean lambda)^-1/2 (mean over the audio width), then CSLS.
- ``qe``: alpha-query expansion (Radenovic et al. 2018; alpha 3, the 3 nearest clips) on ``prod``.
- ``ctx``: each clip's vector averaged with its neighbours in its video (a sound across a clip
  boundary), then ``prod``.
- ``libc_qe``: ``libc`` then alpha-QE.

Measures (tune side): sound -> video (side's videos; all videos), the library being the 29
indexed videos; and 5 s query -> 4 s clip (bench/tune_audio_clips.py's cache, each recording's
first 4 s window as a clip; the "library" there is the side's clips). Paired bootstrap differences
against ``prod`` in R@1, R@5 and in the rank of the first hit.

``--shrink-grid`` (tune only): ``libw`` over a grid of SHRINK, and how often each value has the best
mean R@5 over the three measures when the queries are resampled (2000 bootstraps, each measure's
queries resampled on their own): is the constant fixed beforehand also what the tune data prefers,
and is the gain flat around it?

``--library-sizes`` (tune only): the same variants in smaller libraries, 40 random ones per size: a
random subset of the 29 videos (tune queries; the gallery is the subset's tune videos, the
statistics come from all its clips), and a random subset of the tune recordings' clips for
query -> clip. Mean R@1, R@5 and first-hit rank over the libraries, per size: from how many clips
on is a library's own covariance worth using?

Usage: python bench/tune_audio_library.py --library DIR [--side tune] [--variants ...] [--shrink-grid]
       [--library-sizes]
Needs /tmp/tune_audio.npz and /tmp/tune_audio_clips.npz (bench/tune_audio.py, tune_audio_clips.py).
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
from engine.search.hubness import corrected

ROOT = Path(__file__).resolve().parents[1]
CENTRE = ROOT / "resources" / "models" / "whisper_mean_centre_v2.npy"
SHRINK, QE_K, QE_ALPHA = 0.5, 3, 3.0
VARIANTS = ("prod", "libc", "libw", "qe", "ctx", "libc_qe")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def whitener(lib: np.ndarray, shrink: float = SHRINK) -> tuple[np.ndarray, np.ndarray]:
    """Mean and PCA whitening matrix (with shrinkage toward the mean eigenvalue) of library rows."""
    mean = lib.mean(axis=0)
    cov = np.cov((lib - mean).T, bias=True)
    lam, vec = np.linalg.eigh(cov)
    lam = np.maximum(lam, 0.0)
    scale = 1.0 / np.sqrt(shrink * lam + (1 - shrink) * lam.sum() / lib.shape[1])
    return mean, (vec * scale) @ vec.T


def neighbours_mean(u: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row averaged with the rows before and after it of the same group (rows in time order)."""
    out = u.copy()
    same_prev = np.r_[False, groups[1:] == groups[:-1]]
    same_next = np.r_[groups[:-1] == groups[1:], False]
    out[1:] += np.where(same_prev[1:, None], u[:-1], 0)
    out[:-1] += np.where(same_next[:-1, None], u[1:], 0)
    return unit(out)


def expand(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """alpha-QE: the query plus its QE_K nearest gallery rows weighted by cosine^alpha."""
    s = q @ g.T
    top = np.argsort(-s, axis=1)[:, :QE_K]
    w = np.maximum(np.take_along_axis(s, top, axis=1), 0) ** QE_ALPHA
    return unit(q + np.einsum("qk,qkd->qd", w, g[top]))


def scores(variant: str, q: np.ndarray, g: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Scores [Q, N] of unit queries ``q`` against unit gallery rows ``g`` (the library)."""
    if variant.startswith("libc"):
        m = g.mean(axis=0)
        q, g = unit(q - m), unit(g - m)
    elif variant == "libw":
        m, w = whitener(g)
        q, g = unit((q - m) @ w), unit((g - m) @ w)
    elif variant == "ctx":
        g = neighbours_mean(g, groups)
    if variant.endswith("qe"):
        q = expand(q, g)
    return np.stack([corrected(row, g, groups) for row in q @ g.T])


def video_rankings(s: np.ndarray, clip_paths: list[str]) -> list[list[str]]:
    paths = np.array(clip_paths)
    uniq = sorted(set(clip_paths))
    best = np.stack([s[:, paths == p].max(axis=1) for p in uniq], axis=1)
    return [[uniq[j] for j in np.argsort(-row, kind="stable")] for row in best]


def sound_to_video(variant, qx, cx, clip_paths, sounds, videos) -> dict | None:
    gallery = {media_path(v) for v in videos}
    queries = sound_queries(sounds, videos)
    if not queries:
        return None
    idx = [sounds.index(s) for s, _ in queries]
    s = scores(variant, qx[idx], cx, np.array(clip_paths))
    return report(ranks_from_rankings(video_rankings(s, clip_paths), [r for _, r in queries], gallery),
                  [s.path for s, _ in queries])


def query_to_clip(variant, whole, clip, sounds) -> dict:
    relevant, rows = sound_alike_queries(sounds)
    groups = np.array([s.group for s in sounds])
    s = scores(variant, whole, clip, groups)
    out = []
    for i in rows:
        keep = groups != groups[i]
        out += first_relevant_ranks(s[i][keep][None], relevant[i][keep][None])
    return report(out, [sounds[i].path for i in rows])


def differences(results: dict, base: str = "prod") -> dict:
    out: dict = {}
    for v, res in results.items():
        if v == base:
            continue
        for m, r in res.items():
            if not r:
                continue
            b = results[base][m]["per_query"]
            out.setdefault(v, {})[m] = {
                f"{name}_minus_{base}": paired_difference([f(q["rank"]) for q in r["per_query"]],
                                                          [f(q["rank"]) for q in b]).to_dict()
                for name, f in (("R@1", lambda r: r <= 1), ("R@5", lambda r: r <= 5), ("rank", float))}
    return out


GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)


def shrink_selection(q, cx, clip_paths, whole, clip, sounds, videos, all_videos, n_boot: int = 2000) -> dict:
    """R@5 per measure for each SHRINK of GRID, and the share of query resamples each one wins."""
    hits = {}
    for shrink in GRID:
        whitener.__defaults__ = (shrink,)
        reps = [sound_to_video("libw", q, cx, clip_paths, sounds, videos),
                sound_to_video("libw", q, cx, clip_paths, sounds, all_videos),
                query_to_clip("libw", whole, clip, sounds)]
        hits[shrink] = [np.array([x["rank"] <= 5 for x in r["per_query"]], float) for r in reps]
    whitener.__defaults__ = (SHRINK,)
    rng = np.random.default_rng(0)
    wins = dict.fromkeys(GRID, 0.0)
    for _ in range(n_boot):
        idx = [rng.integers(0, len(h), len(h)) for h in hits[GRID[0]]]
        mean = {g: np.mean([h[i].mean() for h, i in zip(hits[g], idx)]) for g in GRID}
        best = [g for g in GRID if mean[g] == max(mean.values())]
        for g in best:
            wins[g] += 1 / len(best) / n_boot
    return {str(g): {"R@5": [round(float(h.mean()), 4) for h in hits[g]], "mean_R@5": round(float(np.mean(
        [h.mean() for h in hits[g]])), 4), "bootstrap_wins": round(wins[g], 3)} for g in GRID}


VIDEO_SUBSETS, CLIP_SUBSETS, N_LIBRARIES = (6, 10, 15, 20, 25), (30, 50, 70, 100, 130), 40


def _mean_figures(reports: list[dict]) -> dict:
    keys = (("R@1", "R@1"), ("R@5", "R@5"), ("mean_rank", "mean_rank"))
    return {name: round(float(np.mean([r[k]["value"] for r in reports])), 4) for name, k in keys}


def library_sizes(q, cx, clip_paths, whole, clip, sounds, all_videos, variants) -> dict:
    """Mean figures over N_LIBRARIES random smaller libraries per size (videos; recordings' clips)."""
    rng = np.random.default_rng(0)
    paths = np.array(clip_paths)
    out: dict = {"videos": {}, "clips": {}}
    for size in VIDEO_SUBSETS:
        reps: dict[str, list] = {v: [] for v in variants}
        n_clips = []
        for _ in range(N_LIBRARIES):
            sub = [all_videos[i] for i in rng.choice(len(all_videos), size, replace=False)]
            keep = np.isin(paths, [media_path(v) for v in sub])
            gallery = [v for v in sub if v.split == "tune"]
            for v in variants:
                r = sound_to_video(v, q, cx[keep], list(paths[keep]), sounds, gallery) if gallery else None
                if r:
                    reps[v].append(r)
            n_clips.append(int(keep.sum()))
        out["videos"][size] = {"mean_clips": round(float(np.mean(n_clips)), 1),
                               **{v: _mean_figures(r) for v, r in reps.items() if r}}
    for size in CLIP_SUBSETS:
        reps = {v: [] for v in variants}
        for _ in range(N_LIBRARIES):
            sub = np.sort(rng.choice(len(sounds), size, replace=False))
            for v in variants:
                reps[v].append(query_to_clip_in(v, whole, clip, sounds, sub))
        out["clips"][size] = {v: _mean_figures(r) for v, r in reps.items()}
    return out


def query_to_clip_in(variant, whole, clip, sounds, sub: np.ndarray) -> dict:
    """query -> clip with only the clips ``sub`` in the library (queries: every recording with a
    relevant clip among them)."""
    relevant, rows = sound_alike_queries(sounds)
    groups = np.array([s.group for s in sounds])
    s = scores(variant, whole, clip[sub], groups[sub])
    out, names = [], []
    for i in rows:
        keep = groups[sub] != groups[i]
        rel = relevant[i][sub][keep]
        if rel.any():
            out += first_relevant_ranks(s[i][keep][None], rel[None])
            names.append(sounds[i].path)
    return report(out, names)


def main() -> None:
    from engine.api import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--side", default="tune", choices=["tune", "report"])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--shrink-grid", action="store_true")
    ap.add_argument("--library-sizes", action="store_true")
    args = ap.parse_args()
    splits = load_splits()
    sounds = splits["sounds"]
    centre = np.load(CENTRE)
    queries = unit(np.load("/tmp/tune_audio.npz")["queries"][:, WM] - centre)
    qc = np.load("/tmp/tune_audio_clips.npz")
    whole, clip = unit(qc["whole"][:, WM] - centre), unit(qc["clip"][:, WM] - centre)
    clip_paths, clips, _ = clip_features(Library(args.library, device="cpu"))
    clips = unit(clips[:, WM] - centre)
    side = np.array([s.split == args.side for s in sounds])
    side_sounds = [s for s in sounds if s.split == args.side]
    videos = members(splits["videos"], args.side)
    results = {v: {"sound_to_video": sound_to_video(v, queries[side], clips, clip_paths, side_sounds, videos),
                   "sound_to_video_all_videos": sound_to_video(v, queries[side], clips, clip_paths, side_sounds,
                                                               splits["videos"]),
                   "query_to_clip": query_to_clip(v, whole[side], clip[side], side_sounds)}
               for v in args.variants}
    diffs = differences(results) if "prod" in results else {}
    grid = None
    if args.shrink_grid and args.side == "tune":
        grid = shrink_selection(queries[side], clips, clip_paths, whole[side], clip[side], side_sounds, videos,
                                splits["videos"])
        for g, r in grid.items():
            print(f"shrink {g:<5} R@5 {r['R@5']} mean {r['mean_R@5']:.3f} bootstrap wins {r['bootstrap_wins']:.3f}")
    sizes = None
    if args.library_sizes and args.side == "tune":
        sizes = library_sizes(queries[side], clips, clip_paths, whole[side], clip[side], side_sounds,
                              splits["videos"], [v for v in ("prod", "libc", "libw") if v in args.variants])
        for kind, by_size in sizes.items():
            for size, figs in by_size.items():
                print(f"{kind} {size}: {figs}")
    print(save(f"tune_audio_library_{args.side}", {"side": args.side, "shrink": SHRINK, "qe_k": QE_K,
                                                  "qe_alpha": QE_ALPHA, "variants": results, "paired": diffs,
                                                  "shrink_grid": grid, "library_sizes": sizes}))
    for v, res in results.items():
        for m, r in res.items():
            if not r:
                continue
            d = diffs.get(v, {}).get(m, {})
            extra = "  ".join(f"{k[:4]} {e['value']:+.2f} [{e['low']:+.2f},{e['high']:+.2f}]" for k, e in d.items())
            print(f"{v:<8} {m:<26} n={r['R@5']['n_queries']:<3} R@1 {r['R@1']['value']:.2f} "
                  f"R@5 {r['R@5']['value']:.2f} [{r['R@5']['low']:.2f},{r['R@5']['high']:.2f}] "
                  f"rank {r['mean_rank']['value']:.2f} (rnd R@5 {r['R@5']['random']:.2f})  {extra}")


if __name__ == "__main__":
    main()
