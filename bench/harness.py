"""The one retrieval harness every retrieval benchmark uses (and the same metrics as `mmvsearch eval`).

Protocols, each run per side of the fixed split (bench/splits/, see docs/evaluation.md):
- text -> video: each distinct label (or caption) of the side's videos is a query; the gallery is
  the side's videos; a hit is a video with that label. Product search (``Library.search_text``).
- sound -> video: each sound of the side whose class maps to video labels (engine.evaluation.labels)
  is a query, through the product's ``Library.search_audio`` (`search --audio`); the gallery is the
  side's videos (``sound_to_video``), or every video (``sound_to_video_all_videos``: the query split
  only, more queries). Queries whose class has no video in the gallery cannot be scored and are left out.
- sound-alike (sound -> sound): every sound of the side is a query, embedded as the product embeds
  an audio query (``MMVModel.encode_audio``, S_va); the gallery is the side's other sounds except
  takes of the query's own recording; a hit has the same label.

The library holds every shared video; a side's gallery is its videos, so rankings are filtered to
them (the per-channel score standardisation sees the whole library's candidates: a small leak,
none for single-channel searches). Every figure has a 95% bootstrap interval and its random
baseline (engine.evaluation.metrics).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MEDIA
from engine.evaluation.labels import AUDIO_TO_VIDEO
from engine.evaluation.metrics import RankedQuery, as_dict, first_relevant_ranks, ranks_from_rankings, summarise
from engine.evaluation.splits import SPLITS, SplitRow, load_split, members

SPLIT_DIR = Path(__file__).resolve().parent / "splits"
TOP_K = 500  # enough moments to rank every video of the shared media


def load_splits(split_dir: Path = SPLIT_DIR) -> dict[str, list[SplitRow]]:
    return {"videos": load_split(split_dir / "videos.tsv"), "sounds": load_split(split_dir / "sounds.tsv")}


def media_path(row: SplitRow) -> str:
    return str((MEDIA / row.path).resolve())


def ranked_videos(result) -> list[str]:
    """Video paths in the order of their best moment."""
    seen: dict[str, None] = {}
    for moment in result.moments:
        seen.setdefault(moment.path)
    return list(seen)


def report(queries: list[RankedQuery], names: list[str]) -> dict:
    """Summary (with intervals and random baselines) plus the per-query ranks, for the JSON."""
    out = as_dict(summarise(queries))
    out["per_query"] = [{"query": n, "rank": q.rank, "relevant": q.relevant, "gallery": q.gallery}
                        for n, q in zip(names, queries)]
    return out


def text_queries(videos: list[SplitRow], field: str = "label") -> dict[str, set[str]]:
    """Distinct query text -> the gallery videos it should find (its videos' label)."""
    from bench.common import videos as manifest_videos

    captions = {v["path"]: (v.get("caption") or v["label"]) for v in manifest_videos()}
    by_label: dict[str, set[str]] = {}
    for v in videos:
        by_label.setdefault(v.label, set()).add(media_path(v))
    queries: dict[str, set[str]] = {}
    for v in videos:
        text = v.label if field == "label" else captions.get(v.path, v.label)
        queries.setdefault(text, set()).update(by_label[v.label])
    return queries


def text_to_video(lib, videos: list[SplitRow], field: str = "label") -> dict:
    gallery = {media_path(v) for v in videos}
    queries = text_queries(videos, field)
    rankings = [ranked_videos(lib.search_text(q, top_k=TOP_K)) for q in queries]
    return report(ranks_from_rankings(rankings, queries.values(), gallery), list(queries))


def sound_queries(sounds: list[SplitRow], videos: list[SplitRow]) -> list[tuple[SplitRow, set[str]]]:
    """(sound, relevant video paths) for sounds whose class has a video among ``videos``."""
    out = []
    for s in sounds:
        wanted = AUDIO_TO_VIDEO.get(s.label, set())
        relevant = {media_path(v) for v in videos if v.label in wanted}
        if relevant:
            out.append((s, relevant))
    return out


def sound_to_video(lib, sounds: list[SplitRow], videos: list[SplitRow]) -> dict:
    gallery = {media_path(v) for v in videos}
    queries = sound_queries(sounds, videos)
    rankings = [ranked_videos(lib.search_audio(media_path(s), top_k=TOP_K)) for s, _ in queries]
    return report(ranks_from_rankings(rankings, [r for _, r in queries], gallery), [s.path for s, _ in queries])


def sound_alike_queries(sounds: list[SplitRow]) -> tuple[np.ndarray, list[int]]:
    """Relevance [Q, N] over ``sounds`` (same label, another recording) and the query rows that have
    at least one relevant item. Takes of the query's own recording are masked out by the caller."""
    labels = np.array([s.label for s in sounds])
    groups = np.array([s.group for s in sounds])
    relevant = (labels[:, None] == labels[None, :]) & (groups[:, None] != groups[None, :])
    return relevant, [i for i in range(len(sounds)) if relevant[i].any()]


def sound_alike_from_vectors(sounds: list[SplitRow], vectors: np.ndarray) -> dict:
    """Cosine sound-alike retrieval over one side's sounds, given one vector per sound."""
    vecs = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    relevant, rows = sound_alike_queries(sounds)
    scores = vecs @ vecs.T
    groups = np.array([s.group for s in sounds])
    own = groups[:, None] == groups[None, :]
    queries = []
    for i in rows:  # the query's own recording is not in its gallery
        keep = ~own[i]
        queries += first_relevant_ranks(scores[i][keep][None], relevant[i][keep][None])
    return report(queries, [sounds[i].path for i in rows])


def embed_sounds(encode: Callable[[np.ndarray], np.ndarray], sounds: Iterable[SplitRow],
                 sample_rate: int = 16000) -> np.ndarray:
    from engine.media.audio import load_audio

    return np.stack([encode(load_audio(Path(media_path(s)), sample_rate)) for s in sounds])


def sound_alike(lib, sounds: list[SplitRow]) -> dict:
    model = lib.load_models()
    vectors = embed_sounds(lambda w: model.encode_audio(w)["va"][0], sounds, model.config.sample_rate)
    return sound_alike_from_vectors(sounds, vectors)


def measure(lib, name: str, videos: list[SplitRow], sounds: list[SplitRow], all_videos: list[SplitRow]) -> dict:
    if name == "text_to_video":
        return text_to_video(lib, videos)
    if name == "text_to_video_caption":
        return text_to_video(lib, videos, "caption")
    if name == "sound_to_video":
        return sound_to_video(lib, sounds, videos)
    if name == "sound_to_video_all_videos":
        return sound_to_video(lib, sounds, all_videos)
    if name == "sound_alike":
        return sound_alike(lib, sounds)
    raise ValueError(f"unknown measure {name!r}")


MEASURES = ("text_to_video", "text_to_video_caption", "sound_to_video", "sound_to_video_all_videos", "sound_alike")


def run_all(lib, splits: dict[str, list[SplitRow]], sides: Iterable[str] = SPLITS,
            measures: Iterable[str] = MEASURES) -> dict:
    """{measure: {side: report}} for the library's active model."""
    out: dict[str, dict] = {}
    for side in sides:
        vids, sounds = members(splits["videos"], side), members(splits["sounds"], side)
        for name in measures:
            out.setdefault(name, {})[side] = measure(lib, name, vids, sounds, splits["videos"])
    return out


def headline(results: dict) -> str:
    """One line per measure and side: R@1 / R@5 with intervals."""
    lines = []
    for measure, sides in results.items():
        for side, rep in sides.items():
            figs = "  ".join(f"{k} {rep[k]['value']:.2f} [{rep[k]['low']:.2f}, {rep[k]['high']:.2f}] "
                             f"(random {rep[k]['random']:.2f})" for k in ("R@1", "R@5"))
            lines.append(f"{measure:<26} {side:<6} n={rep['R@1']['n_queries']:<3} {figs}")
    return "\n".join(lines)
