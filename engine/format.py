"""Times as people read them, one way for the CLI and the GUI (the GUI's app/format.py builds on it)."""

from __future__ import annotations


def clock(seconds: float | None, missing: str = "–") -> str:
    """0:07, 1:02:03: a position or a length the way players show it (rounded to the second)."""
    if seconds is None:
        return missing
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def span(start: float, end: float, sep: str = "–") -> str:
    """A moment's time range: 0:07–0:12."""
    return f"{clock(start)}{sep}{clock(end)}"
