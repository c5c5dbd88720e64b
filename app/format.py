"""Small text formatters shared by the widgets (durations, progress lines; times come from engine.format)."""

from __future__ import annotations

from engine.format import clock, span
from engine.jobs import Progress

__all__ = ["clock", "duration", "eta", "index_progress_line", "span"]


def duration(seconds: float | None) -> str:
    """Human durations for totals: 45 s, 12 min, 3.4 h."""
    if not seconds:
        return "0 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left…"
    if seconds < 60:
        return f"{max(1, round(seconds))} s left"
    return f"{round(seconds / 60)} min left"


def index_progress_line(p: Progress) -> str:
    """'12 / 40 files · 310 clips · 2 min left' from an indexing Progress."""
    info = p.info or {}
    files_done = info.get("files_done", p.done if p.unit == "files" else None)
    files_total = info.get("files_total", p.total if p.unit == "files" else None)
    parts = []
    if files_total:
        parts.append(f"{int(files_done or 0)} / {int(files_total)} files")
    if "clips" in info:
        parts.append(f"{int(info['clips'])} clips")
    if info.get("video_seconds"):
        parts.append(f"{duration(info['video_seconds'])} of video")
    if p.total:
        parts.append(eta(p.eta_s))
    line = " · ".join(parts)
    return f"{line}\n{p.message}" if p.message else line
