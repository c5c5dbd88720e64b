"""Query the library: text, audio (sound + speech), image, or an indexed clip ("more like this").

A query is encoded once (engine.search.query), every channel in engine.search.channels.CHANNELS
answers it with clip hits (seen / heard / said / read: what each reads is in its module), fusion
(engine.search.fusion) puts them on one scale and keeps one hit per clip, and adjacent clips of
one video merge into moments (engine.search.moments). A recording that contains speech is also
searched as the text it said.

``model`` is the torch model or, for text queries without a loaded one, the torch-free query
model (engine.models.query_model); nothing here imports torch, cv2 or PyAV at module level.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.blas import one_blas_thread
from engine.hits import ClipHit
from engine.search.channels import CHANNELS, Channel
from engine.search.fusion import fuse
from engine.search.moments import SearchResult, merge_hits
from engine.search.query import Query, audio_query, image_query, like_query, load_image, load_wave, text_query
from engine.search.sources import Sources

if TYPE_CHECKING:
    from engine.context import LibraryContext
    from engine.models.mmv import MMVModel


class Searcher:
    def __init__(self, lib: LibraryContext, model: MMVModel):
        self.model = model
        self.sources = Sources(lib.paths.db, lib.paths.ann_dir, model)
        # The text-table channels (transcripts, on-screen text) run beside the others, on a thread
        # and a connection of their own: at a million clips each side is ~10 ms of mostly GIL-free
        # work (HNSW, SQLite, BLAS), so a text query waits for the longer side, not for both.
        self.text_sources = Sources(lib.paths.db, lib.paths.ann_dir, model)
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmv-search")

    def search_text(self, text: str, top_k: int = 20) -> SearchResult:
        t0 = time.perf_counter()
        return self._search(text_query(self.model, text), "text", t0, top_k)

    def search_audio(self, audio: str | Path | np.ndarray, top_k: int = 20, sample_rate: int = 16000,
                     kind: str = "audio") -> SearchResult:
        t0 = time.perf_counter()
        wave = load_wave(audio, sample_rate, self.model.config.sample_rate)
        return self._search(audio_query(self.model, wave), kind, t0, top_k)

    def search_image(self, image: str | Path | np.ndarray, top_k: int = 20) -> SearchResult:
        t0 = time.perf_counter()
        return self._search(image_query(self.model, load_image(image)), "image", t0, top_k)

    def search_like(self, clip_id: int, top_k: int = 20) -> SearchResult:
        t0 = time.perf_counter()
        return self._search(like_query(self.sources.conn, self.model, clip_id), "like", t0, top_k)

    def hits(self, query: Query) -> list[ClipHit]:
        """Every channel's raw hits for ``query`` (and for what a recording said), before fusion."""
        pending = self._beside.submit(_channel_hits, [c for c in CHANNELS if c.own_thread], self.text_sources, query)
        here = _channel_hits([c for c in CHANNELS if not c.own_thread], self.sources, query)
        found = {**here, **pending.result()}
        hits = [h for channel in CHANNELS for h in found[channel.reason]]  # fusion keeps the first of ties
        if query.spoken is not None:
            hits += self.hits(query.spoken)
        if query.exclude_clip is not None:
            hits = [h for h in hits if h.clip_id != query.exclude_clip]
        return hits

    def _search(self, query: Query, result_kind: str, t0: float, top_k: int) -> SearchResult:
        with one_blas_thread():  # candidate-sized products: threads cost more than they save
            fused = fuse(self.hits(query), query.kind)
        paths = self.sources.paths({h.video_id for h in fused})
        moments = [m for m in merge_hits(fused, paths, top_k=top_k * 2) if os.path.exists(m.path)][:top_k]
        return SearchResult(moments, result_kind, query.text if query.kind == "audio" else None,
                            time.perf_counter() - t0, self.model.model_id)


def _channel_hits(channels: list[Channel], sources: Sources, query: Query) -> dict[str, list[ClipHit]]:
    return {channel.reason: channel.hits(sources, query) for channel in channels}
