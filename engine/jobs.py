"""Cancel tokens and progress records shared by every long job (indexing, training, transcription).

Long jobs are generators that yield :class:`Progress` and call ``token.raise_if_cancelled()``
between units of work, so the CLI can draw a bar and the GUI can run them in a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.errors import Cancelled

T = TypeVar("T")


class CancelToken:
    """Thread-safe flag, set by the UI thread and polled by the worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by user")


@dataclass
class Progress:
    """One progress report. ``done``/``total`` are in ``unit``; extra keys live in ``info``."""

    stage: str
    done: float = 0.0
    total: float = 0.0
    unit: str = ""
    message: str = ""
    eta_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


def checked(items: Iterable[T], token: CancelToken | None, every: int = 64) -> Iterator[T]:
    """``items``, raising Cancelled within ``every`` items of ``token`` being set (for the inner
    loops of long decodes, so a cancel does not wait for a whole hour-long file)."""
    for n, item in enumerate(items):
        if token is not None and n % every == 0:
            token.raise_if_cancelled()
        yield item
