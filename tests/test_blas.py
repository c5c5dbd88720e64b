"""engine.blas.one_blas_thread, in a fresh process each (as a CLI search runs): in a process that
has already run the whole app (indexing, Qt, CTranslate2), OpenBLAS was seen to ignore
openblas_set_num_threads, so the suite's process state says nothing about the product's."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LIMITS = """
import numpy as np
from threadpoolctl import threadpool_info
from engine.blas import one_blas_thread

def blas():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

np.ones((4, 4)) @ np.ones((4, 4))
before = blas()
with one_blas_thread():
    inside = blas()
assert inside and all(n == 1 for n in inside), inside
assert blas() == before, (blas(), before)
import scipy.linalg  # another OpenBLAS, loaded after the first use
with one_blas_thread():
    inside = blas()
assert len(inside) >= 2 and all(n == 1 for n in inside), inside
print("ok")
"""


def test_one_blas_thread_limits_every_loaded_blas_and_restores_it():
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy.linalg")
    out = subprocess.run([sys.executable, "-c", LIMITS], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
