"""Heard: what the sound track sounds like (S_va audio for recordings and clips, S_vat audio for words)."""

from __future__ import annotations

from engine.hits import ClipHit
from engine.search.query import Query
from engine.search.sources import Sources


class Heard:
    reason = "heard"

    def hits(self, sources: Sources, query: Query) -> list[ClipHit]:
        v = query.vectors
        if query.kind == "text":  # the base model's S_vat audio is not aligned with text yet
            return sources.knn("vat", "audio", v["vat"], self.reason) if sources.trained else []
        if query.kind == "audio":
            return sources.knn("va", "audio", v["va"], self.reason, weight=query.weight)
        if query.kind == "like" and "va_audio" in v:
            return sources.knn("va", "audio", v["va_audio"], self.reason)
        return []
