"""Why a video failed, and whether that is the file's fault (permanent) or the moment's (transient).

Only the file's own problems (it cannot be decoded, it has no video) mark a video ``error``; that
stays until the file changes or the user retries (``mmvsearch index --retry-errors``). A full disk
or a busy database stop the job; running out of memory, or a file deleted or rewritten while it
was being read, leave the video ``pending``, so the next run tries it again by itself.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DiskFullError, LibraryBusyError, MediaError

TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ENOMEM, errno.ETIMEDOUT, errno.ESTALE}


@dataclass
class Failure:
    permanent: bool
    message: str


def classify(exc: BaseException, path: Path, scanned: tuple[int, float] | None) -> Failure:
    """``scanned``: the (size, mtime) the scan recorded, to tell a file changed under us.
    Raises DiskFullError / LibraryBusyError for failures that must stop the whole job."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        raise DiskFullError("the disk is full: free some space and run again") from exc
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        raise LibraryBusyError(f"the library database is busy: {exc}") from exc
    if _changed_since_scan(path, scanned):
        return Failure(False, "the file was deleted or changed while it was being indexed; it is tried again "
                              "at the next run")
    if isinstance(exc, MemoryError):
        return Failure(False, "ran out of memory; it is tried again at the next run")
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return Failure(False, f"{exc.strerror or exc}; it is tried again at the next run")
    if isinstance(exc, MediaError):
        return Failure(True, str(exc))
    return Failure(True, f"{type(exc).__name__}: {exc}")


def _changed_since_scan(path: Path, scanned: tuple[int, float] | None) -> bool:
    try:
        st = path.stat()
    except OSError:
        return True
    return scanned is not None and (st.st_size != scanned[0] or abs(st.st_mtime - scanned[1]) >= 1e-3)
