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

import numpy as np

from engine.evaluation.labels import AUDIO_TO_VIDEO
from engine.evaluation.metrics import as_dict, first_relevant_ranks, ranks_from_rankings, summarise


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
    result = {
        "model": lib.active_model_id,
        "videos": len(labelled.videos),
        "text_to_video": text_to_video(lib, labelled),
        "audio_to_video": audio_to_video(lib, labelled),
    }
    held = training_held_out(lib)
    if held.get("judged"):
        # A fine-tuned model trained on the other videos: figures over all labelled videos include
        # videos it was trained on, so the same queries are also scored among held-out ones only.
        paths = _video_paths(lib, held["videos"])
        result["labelled_videos_trained_on"] = sum(1 for p in labelled.videos if p not in paths)
        only = Labelled({p: lab for p, lab in labelled.videos.items() if p in paths}, labelled.sounds)
        if len(only.videos) >= 2:
            result["held_out_text_to_video"] = text_to_video(lib, only)
            result["held_out_audio_to_video"] = audio_to_video(lib, only)
    result["training_held_out"] = held
    return result


def training_held_out(lib) -> dict:
    """The active model's own record of its held-out videos and before/after figures ({} for a
    model that was not fine-tuned, or one trained before held-out validation existed)."""
    import json

    row = lib.db.conn.execute("SELECT info FROM models WHERE id = ?", (lib.active_model_id,)).fetchone()
    info = json.loads(row[0]) if row and row[0] else {}
    return (info.get("metrics") or {}).get("held_out") or {}


def _video_paths(lib, video_ids: list[int]) -> set[str]:
    marks = ",".join("?" * len(video_ids))
    return {r[0] for r in lib.db.conn.execute(f"SELECT path FROM videos WHERE id IN ({marks})", video_ids)}


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



# ---- label-free figures of a training run, on its held-out videos ------------------------------
HELD_OUT_KS = (1, 5)


def _video_scores(sim, clip_video: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """[Q, clips] similarities -> [Q, videos]: each video scored by its best clip."""
    out = np.full((sim.shape[0], len(videos)), -np.inf)
    for j, v in enumerate(videos):
        cols = clip_video == v
        if cols.any():
            out[:, j] = sim[:, cols].max(axis=1)
    return out


def _summary(scores: np.ndarray, relevant: np.ndarray) -> dict:
    """R@k with intervals over the queries whose right answer could be scored at all."""
    keep = np.isfinite(np.where(relevant, scores, -np.inf).max(axis=1))
    if keep.sum() < 2:
        return {}
    scores = np.where(np.isfinite(scores), scores, -1e9)
    return as_dict(summarise(first_relevant_ranks(scores[keep], relevant[keep]), HELD_OUT_KS))


def held_out_figures(heads, data, device, video=None) -> dict:
    """Retrieval among held-out videos, no labels needed (a video is its own class):
    - sound -> picture: a clip's sound (S_va) ranks the held-out videos by their best clip's
      picture; the right answer is its own video (what ``search --audio`` relies on);
    - sound -> sound: the same with the other clips' sounds (the sound-alike channel; the query
      clip itself is left out);
    - narration -> picture: a sentence said or heard (S_vat) ranks the videos; right answers are
      the videos it was said in (when the held-out videos have transcripts).
    Each figure: R@k and ranks with 95% bootstrap intervals and the random baseline."""
    import torch

    with torch.no_grad():
        heads.eval()
        feats = (data.video if video is None else video).to(device)
        v = heads.project_video(feats)
        va, vat = v["va"].float().cpu().numpy(), v["vat"].float().cpu().numpy()
        rows = torch.nonzero(data.has_audio).flatten()
        audio = heads.project_audio(data.audio[rows].to(device))["va"].float().cpu().numpy()
        text = heads.project_text(data.sentences.to(device)).float().cpu().numpy() if len(data.sentences) else None
    clip_video = data.keys[:, 0].numpy()
    videos = np.unique(clip_video)
    query_video = clip_video[rows.numpy()]
    out = {"videos": len(videos), "clips": len(data)}
    own = query_video[:, None] == videos[None, :]
    out["sound_to_picture"] = _summary(_video_scores(audio @ va.T, clip_video, videos), own)
    alike = audio @ audio.T
    np.fill_diagonal(alike, -np.inf)
    heard = np.unique(query_video)
    out["sound_to_sound"] = _summary(_video_scores(alike, query_video, heard),
                                     query_video[:, None] == heard[None, :])
    if text is not None:
        said_in = np.zeros((len(text), len(videos)), bool)
        for row, sentences in enumerate(data.clip_sentences):
            said_in[sentences, np.searchsorted(videos, clip_video[row])] = True
        used = said_in.any(axis=1)
        out["narration_to_picture"] = _summary(_video_scores(text[used] @ vat.T, clip_video, videos), said_in[used])
    return {k: v for k, v in out.items() if v != {}}
