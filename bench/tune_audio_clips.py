"""Does a 5 s query find 4 s clips of the same kind of sound? The query-vs-clip check of the sound
channel with many queries, on the *tune* side only (docs/evaluation.md).

Each tune sound is cut as the indexer cuts a video: its first 4 s window is a "clip" (Whisper
frames of the whole recording pooled over the window, the window's spectrogram through the CNN).
Each tune sound as a whole recording is a query, as `search --audio` embeds it; a hit is a clip
of another recording with the same label. Compares the features of bench/tune_audio.py, and
the spectrogram half with the query cut into 4 s windows too (the CNN sees a 5 s spectrogram
squeezed into 224 px otherwise, a time scale 4/5 of a clip's).

Usage: python bench/tune_audio_clips.py --library DIR [--side tune] [--variants ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save
from bench.harness import load_splits, media_path, report, sound_alike_queries
from bench.tune_audio import PARTS, WM, transform
from engine.evaluation.metrics import first_relevant_ranks, paired_difference
from engine.evaluation.splits import members

CLIP = 4.0


def features(model, sounds) -> dict[str, np.ndarray]:
    from bench.spectrogram_cnn import spectrogram_features, v2_audio_features
    from engine.media.audio import load_audio

    whole, clip, spec_windows = [], [], []
    for s in sounds:
        wave = load_audio(Path(media_path(s)), 16000)
        dur = max(len(wave) / 16000, 0.2)
        whole.append(v2_audio_features(model, wave, [(0.0, dur)])[0])
        clip.append(v2_audio_features(model, wave, [(0.0, min(CLIP, dur))])[0])
        wins = [(0.0, dur)] if dur <= CLIP else [(0.0, CLIP), (dur - CLIP, dur)]
        spec_windows.append(spectrogram_features(model, wave, wins).mean(axis=0))
    return {"whole": np.stack(whole), "clip": np.stack(clip), "spec_windows": np.stack(spec_windows)}


def sound_to_clip(sounds, q: np.ndarray, g: np.ndarray) -> dict:
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    relevant, rows = sound_alike_queries(sounds)
    groups = np.array([s.group for s in sounds])
    scores = q @ g.T
    queries = []
    for i in rows:
        keep = groups != groups[i]
        queries += first_relevant_ranks(scores[i][keep][None], relevant[i][keep][None])
    return report(queries, [sounds[i].path for i in rows])


def main() -> None:
    from engine.api import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--side", default="tune", choices=["tune", "report"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/tune_audio_clips.npz"))
    ap.add_argument("--centre-cache", type=Path, default=Path("/tmp/tune_audio.npz"))
    ap.add_argument("--variants", nargs="*", default=None)
    args = ap.parse_args()
    splits = load_splits()
    sounds = splits["sounds"]
    if args.cache.exists():
        f = dict(np.load(args.cache))
    else:
        f = features(Library(args.library, device="cpu").load_models(), sounds)
        np.savez(args.cache, **f)
    side = np.array([s.split == args.side for s in sounds])
    tune = np.array([s.split == "tune" for s in sounds])
    side_rows = [s for s in sounds if s.split == args.side]
    # The centre of bench/tune_audio.py (tune sounds and tune video clips), recomputed the same way.
    from bench.tune_audio import clip_features

    lib = Library(args.library, device="cpu")
    clip_paths, clips, _ = clip_features(lib)
    tune_paths = {media_path(v) for v in members(splits["videos"], "tune")}
    tune_clip = np.array([p in tune_paths for p in clip_paths])
    centre = 0.5 * f["whole"][tune].mean(axis=0) + 0.5 * clips[tune_clip].mean(axis=0)
    windowed = f["whole"].copy()
    windowed[:, 768:] = f["spec_windows"]
    results = {}
    for name, parts in PARTS.items():
        for centred in (False, True):
            for query_kind, q in (("", f["whole"]), ("_windowed_query", windowed)):
                if query_kind and name in ("whisper_mean", "whisper_mean_std"):
                    continue  # the windows change only the spectrogram half
                key = f"{name}{'_centred' if centred else ''}{query_kind}"
                if args.variants and key not in args.variants:
                    continue
                c = centre if centred else None
                results[key] = sound_to_clip(side_rows, transform(q[side], parts, c),
                                             transform(f["clip"][side], parts, c))
    hits = {k: [q["rank"] <= 5 for q in r["per_query"]] for k, r in results.items()}
    base = "whisper_mean" if "whisper_mean" in hits else None
    diffs = {k: paired_difference(h, hits[base]).to_dict() for k, h in hits.items() if base and k != base}
    print(save(f"tune_audio_clips_{args.side}", {"side": args.side, "variants": results,
                                                 "R@5_minus_whisper_mean": diffs}))
    for key, r in results.items():
        d = diffs.get(key)
        extra = f"  diff {d['value']:+.2f} [{d['low']:+.2f},{d['high']:+.2f}]" if d else ""
        print(f"{key:<44} R@1 {r['R@1']['value']:.2f} R@5 {r['R@5']['value']:.2f} "
              f"[{r['R@5']['low']:.2f},{r['R@5']['high']:.2f}] n={r['R@5']['n_queries']}{extra}")
    _ = WM


if __name__ == "__main__":
    main()
