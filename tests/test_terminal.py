"""ProgressLine: escape codes only on a terminal; elsewhere a line per stage and per tenth."""

import io

from engine.jobs import Progress
from engine.terminal import ProgressLine


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(stream) -> str:
    out = ProgressLine(stream)
    out.show(Progress("scan", message="looking"), "looking")
    for i in range(1, 101):
        out.show(Progress("train", i, 100, "steps"), f"step {i}")
    out.end()
    return stream.getvalue()


def test_a_pipe_gets_plain_lines_per_stage_and_tenth():
    text = _feed(io.StringIO())
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines() == ["looking", "step 1", *[f"step {k}" for k in range(10, 101, 10)]]


def test_a_terminal_gets_one_overwritten_line():
    text = _feed(_Tty())
    assert text.count("\r\x1b[K") == 101 and text.endswith("step 100\n") and text.count("\n") == 1
