"""Choose the sound channel's feature on the *tune* side of the split only (docs/evaluation.md).

Compares, by cosine between a query recording and the library's 4 s clips (a video ranks by its
best clip) and between recordings (sound-alike), the audio features the model can use:
Whisper encoder frame mean (384), mean + std (768), the spectrogram CNN (1280), both halves as
today, each raw and centred. Centres are computed from tune-side data only (tune sounds and the
tune videos' clips), so the report side never informs them. Also compares the clips' Whisper
context (stored: frames encoded with up to 30 s of the video around them; isolated: each 4 s
window encoded alone, as a short query is).

Usage: python bench/tune_audio.py --library DIR [--side tune] [--cache /tmp/tune_audio.npz]
Writes bench/results/tune_audio.json (``--side report`` exists to report the chosen variant once).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save
from bench.harness import load_splits, media_path, report, sound_alike_from_vectors, sound_queries
from engine.evaluation.metrics import paired_difference, ranks_from_rankings
from engine.evaluation.splits import members
from engine.index.db import from_blob

WM, STD, SPEC = slice(0, 384), slice(384, 768), slice(768, 2048)
PARTS = {"whisper_mean": [WM], "whisper_mean_std": [WM, STD], "spectrogram_cnn": [SPEC],
         "both_halves": [slice(0, 768), SPEC]}


def clip_features(lib) -> tuple[list[str], np.ndarray, list[tuple[float, float]]]:
    """Each clip's path, audio feature in backbone v2's 2048-d layout (the spectrogram CNN half,
    which the library no longer stores, computed again from the media) and window."""
    from bench.spectrogram_cnn import with_spectrogram_half

    rows = lib.db.conn.execute(
        "SELECT v.path, f.audio, c.start, c.end FROM features f JOIN clips c ON c.id = f.clip_id "
        "JOIN videos v ON v.id = c.video_id WHERE f.audio IS NOT NULL ORDER BY v.path, c.idx").fetchall()
    paths, windows = [r[0] for r in rows], [(r[2], r[3]) for r in rows]
    stored = np.stack([from_blob(r[1], "float16").astype(np.float32) for r in rows])
    if stored.shape[1] < 2048:
        stored = with_spectrogram_half(lib.load_models(), paths, windows, stored)
    return paths, stored, windows


def isolated_whisper(model, paths: list[str], windows: list[tuple[float, float]]) -> np.ndarray:
    """Whisper frame mean of each clip window encoded alone (no surrounding context)."""
    from engine.media.audio import load_audio

    out, waves = [], {}
    whisper = model.audio.whisper
    for path, (s, e) in zip(paths, windows):
        if path not in waves:
            waves[path] = load_audio(Path(path), 16000)
        seg = waves[path][int(s * 16000):int(e * 16000)]
        out.append(whisper.frame_features(seg).mean(axis=0))
    return np.stack(out)


def query_features(model, sounds) -> np.ndarray:
    from bench.spectrogram_cnn import v2_audio_features
    from engine.media.audio import load_audio

    feats = []
    for s in sounds:
        wave = load_audio(Path(media_path(s)), 16000)
        feats.append(v2_audio_features(model, wave, [(0.0, max(len(wave) / 16000, 0.2))])[0])
    return np.stack(feats)


def transform(x: np.ndarray, parts: list[slice], centre: np.ndarray | None) -> np.ndarray:
    """Each part (optionally centred) normalised, concatenated: cosine gives the parts equal weight."""
    if centre is not None:
        x = x - centre
    out = [x[:, p] / np.maximum(np.linalg.norm(x[:, p], axis=1, keepdims=True), 1e-12) for p in parts]
    return np.concatenate(out, axis=1)


def video_ranking(query: np.ndarray, clips: np.ndarray, clip_paths: list[str]) -> list[list[str]]:
    sims = query @ clips.T
    out = []
    for row in sims:
        best: dict[str, float] = {}
        for p, s in zip(clip_paths, row.tolist()):
            best[p] = max(s, best.get(p, -9.0))
        out.append(sorted(best, key=best.get, reverse=True))
    return out


def evaluate_variant(qx, cx, clip_paths, sounds, videos, all_videos) -> dict:
    out = {}
    for name, gallery_rows in (("sound_to_video", videos), ("sound_to_video_all_videos", all_videos)):
        gallery = {media_path(v) for v in gallery_rows}
        queries = sound_queries(sounds, gallery_rows)
        idx = [sounds.index(s) for s, _ in queries]
        rankings = video_ranking(qx[idx], cx, clip_paths) if idx else []
        ranks = ranks_from_rankings(rankings, [r for _, r in queries], gallery)
        out[name] = report(ranks, [s.path for s, _ in queries]) if ranks else None
    out["sound_alike"] = sound_alike_from_vectors(sounds, qx)
    return out


def main() -> None:
    from engine.api import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--side", default="tune", choices=["tune", "report"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/tune_audio.npz"))
    ap.add_argument("--variants", nargs="*", default=None, help="only these variants (for --side report)")
    args = ap.parse_args()
    lib = Library(args.library, device="cpu")
    splits = load_splits()
    all_sounds = splits["sounds"]
    clip_paths, clips, windows = clip_features(lib)
    if args.cache.exists():
        cached = np.load(args.cache)
        queries, isolated = cached["queries"], cached["isolated"]
    else:
        model = lib.load_models()
        queries = query_features(model, all_sounds)
        isolated = isolated_whisper(model, clip_paths, windows)
        np.savez(args.cache, queries=queries, isolated=isolated)
    side_sounds = members(all_sounds, args.side)
    side_idx = [all_sounds.index(s) for s in side_sounds]
    tune_paths = {media_path(v) for v in members(splits["videos"], "tune")}
    tune_clip = np.array([p in tune_paths for p in clip_paths])
    tune_sound = np.array([s.split == "tune" for s in all_sounds])
    # Centre: the mean over tune sounds and tune clips, equally weighted (never the report side).
    centre = 0.5 * queries[tune_sound].mean(axis=0) + 0.5 * clips[tune_clip].mean(axis=0)
    centre_iso = 0.5 * queries[tune_sound][:, WM].mean(axis=0) + 0.5 * isolated[tune_clip].mean(axis=0)
    videos = members(splits["videos"], args.side)
    results, hits = {}, {}
    for name, parts in PARTS.items():
        for centred in (False, True):
            key = f"{name}{'_centred' if centred else ''}"
            if args.variants and key not in args.variants:
                continue
            c = centre if centred else None
            results[key] = evaluate_variant(transform(queries[side_idx], parts, c), transform(clips, parts, c),
                                            clip_paths, side_sounds, videos, splits["videos"])
    for centred in (False, True):
        key = f"whisper_mean_isolated_clips{'_centred' if centred else ''}"
        if args.variants and key not in args.variants:
            continue
        c = centre_iso if centred else None
        q = queries[side_idx][:, WM] - (0 if c is None else c)
        x = isolated - (0 if c is None else c)
        results[key] = evaluate_variant(q / np.linalg.norm(q, axis=1, keepdims=True),
                                        x / np.linalg.norm(x, axis=1, keepdims=True),
                                        clip_paths, side_sounds, videos, splits["videos"])
    for key, res in results.items():
        hits[key] = {m: [q["rank"] is not None and q["rank"] <= 5 for q in r["per_query"]]
                     for m, r in res.items() if r}
    base = "whisper_mean"
    diffs = {key: {m: paired_difference(h, hits[base][m]).to_dict() for m, h in hs.items()}
             for key, hs in hits.items() if base in hits and key != base}
    out = {"side": args.side, "centre": "mean of tune sounds and tune clips", "variants": results,
           "R@5_minus_whisper_mean": diffs}
    print(save(f"tune_audio_{args.side}", out))
    for key, res in results.items():
        line = "  ".join(f"{m} R@5 {r['R@5']['value']:.2f} [{r['R@5']['low']:.2f},{r['R@5']['high']:.2f}]"
                         f" R@1 {r['R@1']['value']:.2f} n={r['R@5']['n_queries']}" for m, r in res.items() if r)
        print(f"{key:<36} {line}")


if __name__ == "__main__":
    main()
