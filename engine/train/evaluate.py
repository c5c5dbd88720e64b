"""Retrieval quality: on a labelled folder, to judge a fine-tuned model honestly, and the
label-free figures a training run reports about itself.

Labels come from a TSV manifest (columns ``path``, ``kind``, ``label``; paths relative to the
manifest's folder) and are used only for scoring, never for training.
- text -> video: the query is a video label; videos are ranked by their best moment; a hit is any
  video with that label (R@k over the distinct labels).
- audio -> video: each sound file of a class in ``AUDIO_TO_VIDEO`` is a query; a hit is a video
  whose label is one of the class's labels (R@k over the sound files).
Scores come from engine.evaluation (the code bench/harness.py uses too): every R@k has a 95%
bootstrap interval over queries and the random baseline in ``estimates``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from engine.evaluation.labels import AUDIO_TO_VIDEO
from engine.evaluation.metrics import as_dict, ranks_from_rankings, summarise


@dataclass
class Labelled:
    videos: dict[str, str]  # resolved video path -> label
    sounds: list[tuple[str, str]]  # (resolved audio path, class) for classes in AUDIO_TO_VIDEO


def load_manifest(path: str | Path) -> Labelled:
    root = Path(path).resolve().parent
    videos, sounds = {}, []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            full = str((root / row["path"]).resolve())
            if row["kind"] == "video":
                videos[full] = row["label"]
            elif row["kind"] == "audio" and row["label"] in AUDIO_TO_VIDEO:
                sounds.append((full, row["label"]))
    return Labelled(videos, sounds)


def ranked_videos(result) -> list[str]:
    """Video paths in the order of their best moment."""
    seen: list[str] = []
    for moment in result.moments:
        if moment.path not in seen:
            seen.append(moment.path)
    return seen


def first_hit(ranking: list[str], labels: dict[str, str], wanted: set[str]) -> int | None:
    """1-based rank of the first video whose label is wanted, or None."""
    for rank, path in enumerate(ranking, start=1):
        if labels.get(path) in wanted:
            return rank
    return None


def recall(ranks: list[int | None], k: int) -> float:
    return round(sum(1 for r in ranks if r is not None and r <= k) / max(1, len(ranks)), 4)


def _report(rankings: list[list[str]], relevant: list[set[str]], names: list[str], gallery: set[str],
            ks: tuple[int, ...]) -> dict:
    """R@k per k (plain floats, for quick reading), ``estimates`` (value, 95% bootstrap interval,
    random baseline; engine.evaluation) and each query's rank (None: not retrieved)."""
    queries = ranks_from_rankings(rankings, relevant, gallery)
    summary = summarise(queries, ks) if queries else {}
    return {**{f"R@{k}": round(summary[f"R@{k}"].value, 4) if summary else 0.0 for k in ks},
            "queries": len(queries), "estimates": as_dict(summary),
            "ranks": {n: q.rank for n, q in zip(names, queries)}}


def text_to_video(lib, labelled: Labelled, ks=(1, 5, 10), top_k: int = 100) -> dict:
    labels = sorted(set(labelled.videos.values()))
    rankings = [ranked_videos(lib.search_text(label, top_k=top_k)) for label in labels]
    relevant = [{p for p, lab in labelled.videos.items() if lab == label} for label in labels]
    return _report(rankings, relevant, labels, set(labelled.videos), ks)


def audio_to_video(lib, labelled: Labelled, ks=(1, 5), top_k: int = 100) -> dict:
    sounds = [(p, c) for p, c in labelled.sounds
              if any(lab in AUDIO_TO_VIDEO[c] for lab in labelled.videos.values())]
    rankings = [ranked_videos(lib.search_audio(p, top_k=top_k)) for p, _ in sounds]
    relevant = [{v for v, lab in labelled.videos.items() if lab in AUDIO_TO_VIDEO[c]} for _, c in sounds]
    return _report(rankings, relevant, [Path(p).name for p, _ in sounds], set(labelled.videos), ks)


def evaluate(lib, manifest: str | Path) -> dict:
    labelled = load_manifest(manifest)
    indexed = {v.path for v in lib.videos() if v.status == "done"}
    labelled.videos = {p: lab for p, lab in labelled.videos.items() if p in indexed}
    return {
        "model": lib.active_model_id,
        "videos": len(labelled.videos),
        "text_to_video": text_to_video(lib, labelled),
        "audio_to_video": audio_to_video(lib, labelled),
    }


def _stored_vectors(lib, space: str, modality: str):
    import numpy as np

    from engine.index.db import from_blob

    rows = lib.db.conn.execute(
        "SELECT v.path, e.vec FROM embeddings e JOIN clips c ON c.id = e.clip_id "
        "JOIN videos v ON v.id = c.video_id "
        "WHERE e.model_id = ? AND e.space = ? AND e.modality = ? AND v.status = 'done'",
        (lib.active_model_id, space, modality),
    ).fetchall()
    return [r[0] for r in rows], np.stack([from_blob(r[1]) for r in rows])


def _rank_by_best_clip(paths: list[str], scores) -> list[str]:
    best: dict[str, float] = {}
    for path, score in zip(paths, scores.tolist()):
        best[path] = max(score, best.get(path, -2.0))
    return sorted(best, key=best.get, reverse=True)


def cross_modal_channels(lib, manifest: str | Path) -> dict:
    """Diagnostic: one channel each, no transcripts. Text -> S_vat video vectors ("seen"),
    sound -> S_va video vectors (the pair MMV's NCE actually trains) and sound -> S_va audio
    vectors of the clips (the sound-alike channel, "heard")."""
    from engine.media.audio import load_audio

    labelled = load_manifest(manifest)
    model = lib.load_models()
    paths_vat, vat = _stored_vectors(lib, "vat", "video")
    paths_va, va = _stored_vectors(lib, "va", "video")
    labels = {p: lab for p, lab in labelled.videos.items() if p in set(paths_vat)}
    text_ranks = [
        first_hit(_rank_by_best_clip(paths_vat, vat @ model.text_query(label)[1]), labels, {label})
        for label in sorted(set(labels.values()))
    ]
    paths_sound, sound = _stored_vectors(lib, "va", "audio")
    audio_ranks, sound_ranks = [], []
    for path, cls in labelled.sounds:
        query = model.encode_audio(load_audio(Path(path), model.config.sample_rate))["va"][0]
        audio_ranks.append(first_hit(_rank_by_best_clip(paths_va, va @ query), labels, AUDIO_TO_VIDEO[cls]))
        sound_ranks.append(first_hit(_rank_by_best_clip(paths_sound, sound @ query), labels, AUDIO_TO_VIDEO[cls]))
    return {
        "text_to_video_seen": {f"R@{k}": recall(text_ranks, k) for k in (1, 5, 10)},
        "audio_to_video_seen": {f"R@{k}": recall(audio_ranks, k) for k in (1, 5)},
        "audio_to_video_heard": {f"R@{k}": recall(sound_ranks, k) for k in (1, 5)},
    }


def self_retrieval(heads, data, device, limit: int = 2000, video=None) -> dict:
    """Sound -> picture retrieval among ``data``'s own clips (no labels): is the true clip's
    video (R@1 clip) or any clip of the same video (R@1 video) ranked first for each clip's audio?"""
    import torch

    with torch.no_grad():
        rows = torch.nonzero(data.has_audio).flatten()[:limit]
        if len(rows) < 2:
            return {}
        heads.eval()
        video = heads.project_video((data.video if video is None else video)[rows].to(device))["va"].float()
        audio = heads.project_audio(data.audio[rows].to(device))["va"].float()
        best = (audio @ video.T).argmax(dim=1).cpu()
    same_clip = best == torch.arange(len(rows))
    same_video = data.keys[rows][best, 0] == data.keys[rows][:, 0]
    return {
        "clips": len(rows),
        "a2v_r1_clip": round(float(same_clip.float().mean()), 4),
        "a2v_r1_video": round(float(same_video.float().mean()), 4),
    }
