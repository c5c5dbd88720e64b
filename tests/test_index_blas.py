"""Indexing runs with NumPy's BLAS on one thread (engine.index.indexer: a second OpenBLAS thread
spins after each of Whisper's small filterbank products, taking CPU from decoding)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.api import Library
from engine.jobs import CancelToken, Progress
from tests.synth import make_video


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_the_indexing_stages_run_with_one_blas_thread_and_restore_it(tmp_path, monkeypatch):
    pytest.importorskip("threadpoolctl")
    import numpy as np

    from engine.index import indexer

    np.ones((4, 4)) @ np.ones((4, 4))  # NumPy's BLAS is loaded
    before = _blas_threads()
    seen = []

    def stages(*args):
        seen.append(_blas_threads())
        yield Progress("done", 1, 1, "files", "indexed")

    monkeypatch.setattr(indexer, "_index_files", stages)
    make_video(tmp_path / "videos" / "a.mp4", seconds=1)
    lib = Library(tmp_path / "lib")
    lib.ctx.loader = lambda ctx: SimpleNamespace(load_all=lambda: None)
    try:
        events = list(indexer.index_paths(lib.ctx, [tmp_path / "videos"], CancelToken(), transcribe=False))
    finally:
        lib.close()
    assert events[-1].stage == "done"
    assert seen and seen[0] and all(n == 1 for n in seen[0]), seen
    assert _blas_threads() == before
