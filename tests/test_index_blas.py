"""Indexing runs with NumPy's BLAS on one thread (engine.index.indexer: a second OpenBLAS thread
spins after each of Whisper's small filterbank products, taking CPU from decoding). Checked in a
fresh process, as `mmvsearch index` runs: in the suite's process, which has run the whole app,
OpenBLAS was seen to ignore the limit (tests/test_blas.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from threadpoolctl import threadpool_info

from engine.api import Library
from engine.index import indexer
from engine.jobs import CancelToken, Progress
from tests.synth import make_video


def blas():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


np.ones((4, 4)) @ np.ones((4, 4))  # NumPy's BLAS is loaded
before, seen = blas(), []


def stages(*args):
    seen.append(blas())
    yield Progress("done", 1, 1, "files", "indexed")


indexer._index_files = stages
tmp = Path(sys.argv[1])
make_video(tmp / "videos" / "a.mp4", seconds=1)
lib = Library(tmp / "lib")
lib.ctx.loader = lambda ctx: SimpleNamespace(load_all=lambda: None)
events = list(indexer.index_paths(lib.ctx, [tmp / "videos"], CancelToken(), transcribe=False))
lib.close()
assert events[-1].stage == "done"
assert before and all(n == 2 for n in before), before
assert seen and seen[0] and all(n == 1 for n in seen[0]), seen
assert blas() == before, (blas(), before)
print("ok")
"""


def test_the_indexing_stages_run_with_one_blas_thread_and_restore_it(tmp_path):
    pytest.importorskip("threadpoolctl")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                           "OPENBLAS_NUM_THREADS": "2", "HOME": str(tmp_path)})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
