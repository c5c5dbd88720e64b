"""Seen: what the pictures show (S_vat video for words and images, S_va video for images and clips)."""

from __future__ import annotations

import numpy as np

from engine.hits import ClipHit
from engine.search.query import Query
from engine.search.sources import CANDIDATES, Sources

HUB_K, HUB_WEIGHT = 10, 0.5


class Seen:
    reason = "seen"
    own_thread = False

    def hits(self, sources: Sources, query: Query) -> list[ClipHit]:
        v = query.vectors
        if query.kind == "text":
            return self._pictures_of(sources, v["picture"])
        if query.kind == "audio":  # only a fine-tuned model has learned which pictures make a sound
            return sources.knn("va", "video", v["va"], self.reason, weight=query.weight) if sources.trained else []
        if query.kind == "image":
            return sources.knn("va", "video", v["va"], self.reason) + sources.knn("vat", "video", v["vat"],
                                                                                   self.reason)
        if query.kind == "like":
            return sources.knn("va", "video", v["va"], self.reason)
        return []

    def _pictures_of(self, sources: Sources, q: np.ndarray) -> list[ClipHit]:
        """Text -> S_vat video, with CSLS-style hubness correction (Lample et al., 2018).

        Clips whose ConSE vector sits close to many class names (busy, generic scenes) would
        otherwise top every query; each candidate's score is lowered by half its mean similarity
        to its 10 nearest ImageNet class texts.
        """
        index = sources.index("vat", "video")
        ids, sims = index.query(q, CANDIDATES)
        if len(ids) == 0:
            return []
        hits, vecs = sources.hits_with_vectors("vat", "video", ids, sims, self.reason)
        if not hits:
            return []
        # only each row's top HUB_K matter: partition, not sort
        sims_to_classes = vecs @ sources.model.class_text_bank().T
        hub = np.partition(sims_to_classes, -HUB_K, axis=1)[:, -HUB_K:].mean(axis=1)
        for h, correction in zip(hits, (HUB_WEIGHT * hub).tolist()):
            h.score -= correction
        return hits
