"""One writer per library, across threads and processes.

The process-wide part is an advisory lock (``flock``; ``msvcrt.locking`` on Windows) on
``<library>/writer.lock``. The operating system releases it when the holder exits or is killed, so
a crash never leaves a stale lock behind; the file also records who holds it (pid, start time,
job) so a second writer can say who is in the way. Readers (searches) never take it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from engine.errors import LibraryBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt


class WriterLock:
    """A re-usable lock with ``threading.Lock``'s interface (``acquire(blocking)``, ``release``,
    ``with``) whose holder is also the only process writing to the library."""

    def __init__(self, root: Path, job: str = "writing"):
        self.path = Path(root) / "writer.lock"
        self.job = job
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Non-blocking: False when another thread of this process holds it; raises
        LibraryBusyError, naming the holder, when another process does. Blocking: waits up to
        ``timeout`` seconds (forever when negative) for both."""
        if not self._thread_lock.acquire(blocking, timeout):
            return False
        deadline = None if timeout < 0 else time.monotonic() + timeout
        try:
            while not self._lock_file():
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    raise LibraryBusyError(self.busy_message())
                time.sleep(0.2)
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            _unlock(fd)
            os.close(fd)
        self._thread_lock.release()

    def __enter__(self) -> WriterLock:
        self.acquire(blocking=True, timeout=10.0)
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def holder(self) -> dict | None:
        """Who holds the lock, as recorded in the file (None when nobody or unknown)."""
        try:
            info = json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def busy_message(self) -> str:
        info = self.holder()
        who = "another mmvsearch process"
        if info:
            started = time.strftime("%H:%M:%S", time.localtime(info.get("started", 0)))
            who += f" (pid {info.get('pid')}, {info.get('job', 'writing')} since {started})"
        return (f"{who} is writing to the library {self.path.parent}; wait for it to finish or stop it, "
                "then run this again. Searching works meanwhile.")

    def _lock_file(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started": time.time(), "job": self.job}).encode())
        self._fd = fd
        return True


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:  # pragma: no cover - Windows
            os.lseek(fd, 0, 0)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:
        pass
