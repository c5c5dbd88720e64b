"""Progress on stderr, as a terminal shows it or as a pipe and a log want it.

On a terminal, one line that overwrites itself (carriage return and erase-line). Anywhere else no
escape codes: a plain line when the stage changes and at every tenth of a stage, so a log of a
long job stays short and readable. Every command that draws progress uses this one class.
"""

from __future__ import annotations

import sys
from typing import TextIO

from engine.jobs import Progress

WIDTH = 160


class ProgressLine:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._previous: Progress | None = None

    def show(self, p: Progress, line: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + line[:WIDTH])
        elif self._worth_a_line(p):
            self.stream.write(line[:WIDTH] + "\n")
        self.stream.flush()
        self._previous = p

    def _worth_a_line(self, p: Progress) -> bool:
        prev = self._previous
        return prev is None or p.stage != prev.stage or int(10 * p.fraction) != int(10 * prev.fraction)

    def end(self) -> None:
        """Finish the overwritten line (on a terminal), so what follows starts on its own line."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
