"""Write the audio centre shipped with the model (resources/models/whisper_mean_centre_v2.npy).

The heads centre the Whisper frame mean on a fixed vector before projecting it (subtracting the
component every sound shares makes cosine similarity about what differs). The centre is part of
the model, not of a library: the same for every query and every clip, whatever has been indexed.
It is the mean of the *tune* side only (never the report side, docs/evaluation.md), half from the
tune sounds (environmental-sound recordings, pooled as a query is) and half from the 4 s clips of
the tune videos (as stored at indexing), so neither kind dominates. 384 floats: a statistic, no media.

Usage: python bench/make_audio_centre.py --library DIR   (a library of the shared videos)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import load_splits, media_path
from engine.evaluation.splits import members
from engine.index.db import from_blob

OUT = Path(__file__).resolve().parents[1] / "resources" / "models" / "whisper_mean_centre_v2.npy"


def tune_sound_means(sounds) -> np.ndarray:
    """Whisper frame means of the sounds, pooled as a query is (no heads: the centre is their input)."""
    import torch

    from engine.media.audio import load_audio
    from engine.models.audio import WhisperAudioBackbone, query_features

    whisper = WhisperAudioBackbone(torch.device("cpu"))
    return np.stack([query_features(whisper, load_audio(Path(media_path(s)), 16000))[0, :384] for s in sounds])


def tune_clip_means(lib, videos) -> np.ndarray:
    paths = [media_path(v) for v in videos]
    rows = lib.db.conn.execute(
        f"SELECT f.audio FROM features f JOIN clips c ON c.id = f.clip_id JOIN videos v ON v.id = c.video_id "
        f"WHERE f.audio IS NOT NULL AND v.path IN ({','.join('?' * len(paths))})", paths).fetchall()
    return np.stack([from_blob(r[0], "float16").astype(np.float32)[:384] for r in rows])


def main() -> None:
    from engine.api import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    lib = Library(args.library, device="cpu")
    splits = load_splits()
    sounds = tune_sound_means(members(splits["sounds"], "tune"))
    clips = tune_clip_means(lib, members(splits["videos"], "tune"))
    centre = (0.5 * sounds.mean(axis=0) + 0.5 * clips.mean(axis=0)).astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, centre)
    print(f"{args.out}: from {len(sounds)} tune sounds and {len(clips)} tune clips, norm {np.linalg.norm(centre):.3f}")


if __name__ == "__main__":
    main()
