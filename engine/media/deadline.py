"""A time bound on decoding one file: a damaged file must not stall indexing.

The media readers poll their cancel token between packets (engine.jobs.checked); a
:class:`DeadlineToken` answers those polls like the user's token, and also raises
:class:`DecodeTimeout` (a MediaError: the file is recorded with the reason) once the file has
taken longer than any healthy file of its length could.
"""

from __future__ import annotations

import time

from engine.errors import MediaError
from engine.jobs import CancelToken

BASE_SECONDS = 120.0   # opening, probing and seeking, even on a slow, busy machine
PER_VIDEO_SECOND = 5.0  # healthy decoding runs far faster than 1/5 of real time


class DecodeTimeout(MediaError):
    """Decoding one file took longer than its length allows."""


def decode_budget(duration: float) -> float:
    return BASE_SECONDS + PER_VIDEO_SECOND * max(0.0, duration)


class DeadlineToken(CancelToken):
    """The user's token plus a deadline for one file."""

    def __init__(self, parent: CancelToken | None, seconds: float, what: str) -> None:
        super().__init__()
        self._parent = parent
        self._deadline = time.monotonic() + seconds
        self._seconds, self._what = seconds, what

    def cancel(self) -> None:
        (self._parent or super()).cancel()

    @property
    def cancelled(self) -> bool:
        return self._parent is not None and self._parent.cancelled

    def raise_if_cancelled(self) -> None:
        if self._parent is not None:
            self._parent.raise_if_cancelled()
        if time.monotonic() > self._deadline:
            raise DecodeTimeout(f"decoding {self._what} took longer than {self._seconds:.0f} s; "
                                "the file is probably damaged")
