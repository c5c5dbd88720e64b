"""One BLAS thread for query-sized matrix work.

A query multiplies small matrices (a few hundred candidates by a few hundred dimensions, three
short sentences through MiniLM). With two OpenBLAS threads on a busy 2-core machine, the wake-ups
cost far more than the work: the hubness product of 300 candidates by 1,000 class texts took a
median of 30 ms instead of 1 ms, and the text encoding ten times its single-thread time.
"""

from __future__ import annotations

import sys

_controller = None
_modules_seen = -1


def _threadpools():
    """threadpoolctl's view of the loaded BLAS libraries. Finding them walks every loaded library
    (3 ms, as much as the rest of a query's matrix work), so the view is kept, and found again only
    when modules were imported since: an import (torch, SciPy, onnxruntime) can load another BLAS,
    which a stale view would leave on all its threads."""
    global _controller, _modules_seen
    if _controller is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _modules_seen = len(sys.modules)
    return _controller


class one_blas_thread:
    """Context manager: NumPy's BLAS runs on one thread inside it (no-op without threadpoolctl)."""

    def __enter__(self):
        try:
            self._limit = _threadpools().limit(limits=1, user_api="blas")
        except ImportError:
            self._limit = None
        return self

    def __exit__(self, *exc) -> None:
        if self._limit is not None:
            self._limit.restore_original_limits()
