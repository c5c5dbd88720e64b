import numpy as np
import pytest

from engine.blas import one_blas_thread


def test_one_blas_thread_limits_and_restores_numpys_blas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    np.ones((4, 4)) @ np.ones((4, 4))  # NumPy's BLAS is loaded
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    with one_blas_thread():
        inside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    after = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside) and after == before
