"""Heard: what the sound track sounds like (S_va audio for recordings and clips, S_vat audio for words)."""

from __future__ import annotations

import numpy as np

from engine.hits import ClipHit
from engine.search.hubness import corrected
from engine.search.query import Query
from engine.search.sources import Sources


class Heard:
    reason = "heard"

    def hits(self, sources: Sources, query: Query) -> list[ClipHit]:
        v = query.vectors
        if query.kind == "text":  # the base model's S_vat audio is not aligned with text yet
            return sources.knn("vat", "audio", v["vat"], self.reason) if sources.trained else []
        if query.kind == "audio":
            return self._sounds_like(sources, v["va"], query.weight)
        if query.kind == "like" and "va_audio" in v:
            return sources.knn("va", "audio", v["va_audio"], self.reason)
        return []

    def _sounds_like(self, sources: Sources, q: np.ndarray, weight: float) -> list[ClipHit]:
        """A recording -> S_va audio, hubness-corrected (engine.search.hubness): clips whose sound
        is close to every other clip's would otherwise rank high for any recording."""
        index = sources.index("va", "audio")
        hits = sources.knn("va", "audio", q, self.reason)
        if not hits:
            return []
        vecs = index.vectors(np.array([h.clip_id for h in hits], np.int64))
        scores = corrected(np.array([h.score for h in hits]), vecs, np.array([h.video_id for h in hits]))
        for h, s in zip(hits, scores.tolist()):
            h.score = s * weight
        return hits
