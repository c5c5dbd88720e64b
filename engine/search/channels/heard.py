"""Heard: what the sound track sounds like (S_va audio for recordings and clips, S_vat audio for words)."""

from __future__ import annotations

import numpy as np

from engine.hits import ClipHit
from engine.index.ann import UNKNOWN, AnnIndex, index_path
from engine.search import whitening
from engine.search.hubness import corrected
from engine.search.query import Query
from engine.search.sources import Sources


class Heard:
    reason = "heard"
    own_thread = False

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
        """A recording -> S_va audio: the nearest clips, re-scored in the library's own whitened
        space (engine.search.whitening) and hubness-corrected (engine.search.hubness): clips whose
        sound is close to every other clip's would otherwise rank high for any recording."""
        index = sources.index("va", "audio")
        hits = sources.knn("va", "audio", q, self.reason)
        if not hits:
            return []
        vecs = index.vectors(np.array([h.clip_id for h in hits], np.int64))
        sims = np.array([h.score for h in hits])
        white = library_whitening(sources, index)
        if white is not None:
            vecs = white.apply(vecs)
            sims = vecs @ white.apply(np.asarray(q, np.float32).reshape(1, -1))[0]
        scores = corrected(sims, vecs, np.array([h.video_id for h in hits]))
        for h, s in zip(hits, scores.tolist()):
            h.score = s * weight
        return hits


def library_whitening(sources: Sources, index: AnnIndex) -> whitening.Whitening | None:
    """The library's whitening of its S_va audio vectors, for the index's generation: kept in
    memory, read from beside the index, or fit and stored there. None for a library too small to
    have statistics of its own (the model's vectors are then used as they are)."""
    kept: dict[int, whitening.Whitening | None] = sources.kept("audio_whitening", dict)
    if index.gen not in kept or index.gen == UNKNOWN:
        kept.clear()
        kept[index.gen] = _load_or_fit(sources, index)
    return kept[index.gen]


def _load_or_fit(sources: Sources, index: AnnIndex) -> whitening.Whitening | None:
    ids = index.ids()
    n_videos = sources.conn.execute("SELECT COUNT(DISTINCT c.video_id) FROM clips c JOIN videos v "
                                    "ON v.id = c.video_id WHERE v.status = 'done'").fetchone()[0]
    if len(ids) < whitening.MIN_CLIPS or n_videos < whitening.MIN_VIDEOS:
        return None
    path = index_path(sources.ann_dir, sources.model.model_id, "va", "audio").with_name("va_audio_whitening.npz")
    stored = whitening.load(path, index.gen, index.dim) if index.gen != UNKNOWN else None
    if stored is not None:
        return stored
    white = whitening.fit(index.vectors(whitening.sample_ids(ids)), sources.model.config.audio_head_dim)
    if index.gen != UNKNOWN:
        try:
            whitening.save(path, white, index.gen)
        except OSError:
            pass  # a read-only library still searches; the fit is redone next session
    return white
