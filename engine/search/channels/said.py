"""Said: transcripts and sound captions that match a text query ("said" / "heard", engine.speech.store)."""

from __future__ import annotations

from engine.hits import ClipHit
from engine.search.fusion import standardise_against
from engine.search.query import Query
from engine.search.sources import CANDIDATES, Sources


class Said:
    reason = "said"
    own_thread = True

    def hits(self, sources: Sources, query: Query) -> list[ClipHit]:
        """Hits already standardised against the query's cosine over every segment."""
        if query.kind != "text":
            return []
        from engine.speech.store import SegmentVectors, transcript_hits

        background: dict = {}
        vectors = sources.kept("transcripts", lambda: SegmentVectors(ann_dir=sources.ann_dir))
        hits = transcript_hits(sources.conn, query.text or "", query.vectors["words"], limit=CANDIDATES,
                               background=background, vectors=vectors)
        return standardise_against(hits, background)
