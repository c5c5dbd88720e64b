"""Locate files shipped in the top-level ``resources/`` folder (source tree or installed share dir)."""

from __future__ import annotations

import sys
from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parents[1] / "resources",
    Path(sys.prefix) / "share" / "mmvsearch" / "resources",
)


def resource_path(*parts: str) -> Path:
    for base in _CANDIDATES:
        path = base.joinpath(*parts)
        if path.exists():
            return path
    raise FileNotFoundError(f"resource {'/'.join(parts)} not found in {[str(c) for c in _CANDIDATES]}")
