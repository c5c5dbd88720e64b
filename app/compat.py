"""Work-arounds for bugs in the libraries the app runs on.

PySide6 6.12.0 on Python < 3.12 returns ``None`` from every void C++ method (and ``True``/
``False`` from ``Signal.emit``) without taking a new reference. Python 3.12+ makes these objects
immortal, so it does not matter there; on 3.11 each call removes one reference that was never
added, and after ~10^5 calls (a few minutes of repainting a live loss plot) CPython aborts with
"Fatal Python error: none_dealloc". PySide6 6.11.2 does not have the bug.

Until the pin excludes 6.12.0 everywhere, :func:`pin_singletons` gives the three singletons 2**40
extra references (what "immortal" means on 3.12), so the missing increments can never reach zero.
"""

from __future__ import annotations

import ctypes
import sys
from importlib import metadata

_EXTRA = 1 << 40
_applied = False


def _pyside_version() -> str:
    for dist in ("PySide6-Essentials", "PySide6"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return ""


def needs_pin(pyside_version: str | None = None) -> bool:
    version = _pyside_version() if pyside_version is None else pyside_version
    return (sys.implementation.name == "cpython" and sys.version_info < (3, 12)
            and not hasattr(sys, "gettotalrefcount")   # debug builds lay PyObject out differently
            and version.startswith("6.12."))


def pin_singletons() -> bool:
    """Apply once per process when needed; True when the pin is (now) in place."""
    global _applied
    if _applied:
        return True
    if not needs_pin():
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every object in a release build of CPython 3.10/3.11
        ctypes.c_ssize_t.from_address(id(obj)).value += _EXTRA
    _applied = True
    return True
