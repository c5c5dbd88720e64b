"""Does captioning an audio query help it find videos? Decided on the *tune* side only.

Variant (fixed before measuring): a recording without speech is captioned by the same Whisper
that writes the library's sound captions ("heard": the forced "(" caption pass,
``Transcriber.sound_captions``), and the caption is searched as a text query alongside the
acoustic channel (``Query.spoken``, as a spoken query's transcript already is), fused by the
product's standardised max. Text search generalises on this media and on unseen media (issue 9),
so the caption is a bridge from a sound to pictures (and to stored "heard" captions when the
library was indexed with them).

Compares, through the product's ``Library.search_audio`` (bench/harness.py), sound -> video with
the side's videos and with all videos, base vs caption, with paired bootstrap differences.

Usage: python bench/tune_audio_caption.py --library DIR [--side tune]
Writes bench/results/tune_audio_caption_<side>_<library name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save
from bench.harness import headline, load_splits, media_path, run_all, sound_queries
from engine.evaluation.metrics import paired_difference

MEASURES = ("sound_to_video", "sound_to_video_all_videos")


def captions(sounds, cache: Path) -> dict[str, str]:
    """Resolved media path -> the recording's sound captions joined (cached: Whisper is slow here)."""
    if cache.exists():
        return json.loads(cache.read_text())
    from engine.media.audio import load_audio
    from engine.speech.transcribe import get_transcriber

    tr = get_transcriber("cpu")
    out = {media_path(s): " ".join(seg.text for seg in tr.sound_captions(load_audio(Path(media_path(s)), 16000)))
           for s in sounds}
    cache.write_text(json.dumps(out))
    return out


def with_captions(caps: dict[str, str]) -> None:
    """Patch the searcher so an audio query without speech also searches its caption as text."""
    import engine.search.searcher as searcher
    from engine.search.query import audio_query, text_query

    paths: dict[int, str] = {}
    load = searcher.load_wave

    def load_wave(audio, sample_rate, model_rate):
        wave = load(audio, sample_rate, model_rate)
        paths[id(wave)] = str(Path(audio).resolve())
        return wave

    def captioned_query(model, wave):
        query = audio_query(model, wave)
        caption = caps.get(paths.get(id(wave), ""), "")
        if query.spoken is None and caption:
            query.spoken = text_query(model, caption)
        return query

    searcher.load_wave, searcher.audio_query = load_wave, captioned_query


def main() -> None:
    from engine.api import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--side", default="tune", choices=["tune", "report"])
    args = ap.parse_args()
    splits = load_splits()
    sounds = [s for s, _ in sound_queries([s for s in splits["sounds"] if s.split == args.side], splits["videos"])]
    caps = captions(sounds, Path(f"/tmp/tune_audio_captions_{args.side}.json"))
    lib = Library(args.library, device="cpu")
    base = run_all(lib, splits, sides=[args.side], measures=MEASURES)
    with_captions(caps)
    captioned = run_all(lib, splits, sides=[args.side], measures=MEASURES)
    diffs = {}
    for m in MEASURES:
        for k in (1, 5):
            a = [q["rank"] <= k for q in captioned[m][args.side]["per_query"]]
            b = [q["rank"] <= k for q in base[m][args.side]["per_query"]]
            diffs[f"{m}_R@{k}"] = paired_difference(a, b).to_dict()
    name = f"tune_audio_caption_{args.side}_{args.library.name}"
    print(save(name, {"side": args.side, "library": args.library.name, "captions": caps, "base": base,
                      "caption": captioned, "caption_minus_base": diffs}))
    print(headline(base))
    print(headline(captioned))
    for key, d in diffs.items():
        print(f"{key:<34} {d['value']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]")


if __name__ == "__main__":
    main()
