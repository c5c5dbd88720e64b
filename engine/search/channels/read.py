"""Read: words shown on screen that match a text query (engine.ocr.store)."""

from __future__ import annotations

from engine.hits import ClipHit
from engine.search.fusion import standardise_against
from engine.search.query import Query
from engine.search.sources import CANDIDATES, Sources


class Read:
    reason = "read"
    own_thread = True

    def hits(self, sources: Sources, query: Query) -> list[ClipHit]:
        """Hits standardised like transcripts, against every on-screen text row."""
        if query.kind != "text":
            return []
        from engine.ocr.store import screen_text_hits
        from engine.speech.store import SegmentVectors

        background: dict = {}
        vectors = sources.kept("screen_text", lambda: SegmentVectors("screen_text", sources.ann_dir))
        hits = screen_text_hits(sources.conn, query.text or "", query.vectors["words"], limit=CANDIDATES,
                                background=background, vectors=vectors)
        return standardise_against(hits, background)
