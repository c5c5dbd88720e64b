"""Search results as *moments*: adjacent clip hits in one video merge into one time range."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from engine.hits import ClipHit

__all__ = ["ClipHit", "Moment", "SearchResult", "merge_hits"]


@dataclass
class Moment:
    video_id: int
    path: str
    start: float
    end: float
    score: float
    clip_ids: list[int]
    best_clip_id: int
    best_time: float                      # where to start playing: start of the best clip
    reasons: list[str] = field(default_factory=list)   # subset of seen / heard / said / read, best first
    snippet: str | None = None
    read_text: str | None = None          # the words read on screen, when 'read' is a reason

    def to_json(self) -> dict:
        return {
            "path": self.path, "start": round(self.start, 3), "end": round(self.end, 3),
            "score": round(float(self.score), 4), "clip_ids": self.clip_ids, "best_clip_id": self.best_clip_id,
            "video_id": self.video_id, "reasons": self.reasons, "snippet": self.snippet,
            "read_text": self.read_text,
        }


@dataclass
class SearchResult:
    moments: list[Moment]
    query_kind: str                       # text | audio | image | like | mic
    transcript: str | None = None         # what the user said, for spoken queries
    elapsed_s: float = 0.0
    model_id: str = ""


EXTEND_WITHIN = 2.0


def merge_hits(hits: list[ClipHit], paths: dict[int, str], gap: float = 0.05, top_k: int = 20,
               max_per_video: int = 3, extend_within: float = EXTEND_WITHIN) -> list[Moment]:
    """Merge hits that touch (within ``gap`` seconds) in the same video; rank moments by best score.

    A moment's score is its best clip's score, so merging never inflates a long moment over a short
    sharp one. Only *strong* hits (within ``extend_within`` standard deviations of all hits' scores
    of their video's best) build moments together; a weak hit touching one is dropped rather than
    stretching it (a short video would otherwise always come back whole, because every one of its
    clips is some channel's candidate), and weak hits elsewhere form moments of their own. At most
    ``max_per_video`` moments per video keep one long video from filling the page.
    """
    spread = float(np.std([h.score for h in hits])) if len(hits) > 1 else 0.0
    by_video: dict[int, list[ClipHit]] = {}
    for h in hits:
        by_video.setdefault(h.video_id, []).append(h)
    # Moments are ranked by score, ties in the order their videos first appear in ``hits``. A
    # moment scores its best clip, so no moment of a video beats that video's best hit: visiting
    # videos from the best hit down, the merge stops once a video's best is below the last of
    # ``top_k`` moments already kept (most of a query's videos are never merged).
    position = {video_id: i for i, video_id in enumerate(by_video)}
    best = {video_id: max(h.score for h in vh) for video_id, vh in by_video.items()}
    ranked: list[tuple[float, int, int, Moment]] = []
    kept: list[Moment] = []
    for video_id in sorted(by_video, key=lambda v: -best[v]):
        if len(kept) >= top_k and best[video_id] < kept[-1].score:
            break
        if video_id not in paths:  # removed or gone missing since the hit was found
            continue
        vh = by_video[video_id]
        floor = best[video_id] - extend_within * spread
        strong = _runs([h for h in vh if h.score >= floor], gap)
        weak = [h for h in vh if h.score < floor and not any(_touches(h, run, gap) for run in strong)]
        for j, run in enumerate(strong + _runs(weak, gap)):
            m = _to_moment(run, paths[video_id])
            bisect.insort(ranked, (-m.score, position[video_id], j, m), key=lambda r: r[:3])
        kept = _cap(ranked, top_k, max_per_video)
    return kept


def _cap(ranked: list[tuple[float, int, int, Moment]], top_k: int, max_per_video: int) -> list[Moment]:
    """The first ``top_k`` moments in rank order, at most ``max_per_video`` of each video."""
    kept: list[Moment] = []
    per_video: dict[int, int] = {}
    for *_, m in ranked:
        if per_video.get(m.video_id, 0) < max_per_video:
            kept.append(m)
            per_video[m.video_id] = per_video.get(m.video_id, 0) + 1
            if len(kept) >= top_k:
                break
    return kept


def _runs(hits: list[ClipHit], gap: float) -> list[list[ClipHit]]:
    """Hits of one video grouped into runs that touch in time."""
    runs: list[list[ClipHit]] = []
    for h in sorted(hits, key=lambda h: h.start):
        if runs and h.start <= max(r.end for r in runs[-1]) + gap:
            runs[-1].append(h)
        else:
            runs.append([h])
    return runs


def _touches(hit: ClipHit, run: list[ClipHit], gap: float) -> bool:
    return hit.start <= max(r.end for r in run) + gap and hit.end >= min(r.start for r in run) - gap


def _to_moment(run: list[ClipHit], path: str) -> Moment:
    best = max(run, key=lambda h: h.score)
    reason_score: dict[str, float] = {}
    for h in run:
        for r in (h.reason, *h.also):
            reason_score[r] = max(reason_score.get(r, -1e9), h.score if r == h.reason else h.score - 1e-6)
    reasons = sorted(reason_score, key=lambda r: -reason_score[r])
    snippet = next((h.snippet for h in sorted(run, key=lambda h: -h.score) if h.snippet), None)
    clip_ids = sorted({h.clip_id for h in run if h.clip_id >= 0})
    read_text = next((h.read_text for h in sorted(run, key=lambda h: -h.score) if h.read_text), None)
    return Moment(video_id=best.video_id, path=path, start=min(h.start for h in run), end=max(h.end for h in run),
                  score=best.score, clip_ids=clip_ids, best_clip_id=best.clip_id, best_time=best.start,
                  reasons=reasons, snippet=snippet, read_text=read_text if "read" in reasons else None)
