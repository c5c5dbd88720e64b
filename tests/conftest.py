"""Shared fixtures: generated test videos, a loaded model, and indexed libraries (session-scoped,
because loading the pretrained towers takes seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.synth import make_video

SHARED_MEDIA = Path(os.environ.get("MMVSEARCH_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"))

# Known content: each video pairs one picture with one sound.
GENERATED = {
    "red_square_tone.mp4": {"color": (230, 20, 20), "shape": "square", "tone_hz": 440.0},
    "blue_circle_noise.mkv": {"color": (20, 40, 230), "shape": "circle", "noise": True, "tone_hz": None},
    "green_stripes_low.webm": {"color": (20, 200, 40), "shape": "stripes", "tone_hz": 150.0,
                               "codec": "libvpx-vp9"},
    "silent_yellow.mp4": {"color": (240, 220, 10), "shape": "circle", "audio": False},
}


@pytest.fixture(scope="session")
def shared_media() -> Path:
    if not (SHARED_MEDIA / "MANIFEST.tsv").exists():
        pytest.skip(f"shared media not found at {SHARED_MEDIA}")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    for name, kw in GENERATED.items():
        make_video(root / name, seconds=10.0, **kw)
    return root


@pytest.fixture(scope="session")
def generated_library(tmp_path_factory, generated_dir):
    """A library with the generated videos indexed (no transcription), shared by read-only tests."""
    from engine.api import Library

    lib = Library(tmp_path_factory.mktemp("lib-generated"), device="cpu")
    progress = list(lib.index([generated_dir], transcribe=False))
    assert progress[-1].stage == "done"
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def model(generated_library):
    return generated_library.load_models()
