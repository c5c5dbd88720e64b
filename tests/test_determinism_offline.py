"""Deterministic indexing (the same file twice gives the same clips, vectors and transcript) and
no network use at run time (index and search under `unshare -n`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.speech_fixtures import narration, require_espeak
from tests.synth import make_video

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _noisy_narrated_video(path: Path) -> Path:
    """Speech under loud noise: where Whisper's temperature fallback (sampling) used to kick in."""
    require_espeak()
    wave = narration(["the dog is barking at the red car", 0.5, "she said do you smell barbecue", 0.5])
    wave = wave + np.random.default_rng(0).normal(0, 1.0, wave.size).astype(np.float32) * 0.05
    return make_video(path, color=(0, 90, 200), audio_wave=np.clip(wave, -1, 1), seconds=len(wave) / 16000,
                      fps=5, size=(96, 64))


def _content(lib_root: Path) -> tuple:
    conn = sqlite3.connect(str(lib_root / "library.db"))
    try:
        clips = conn.execute("SELECT idx, start, end FROM clips ORDER BY idx").fetchall()
        vecs = conn.execute("SELECT c.idx, e.space, e.modality, e.vec FROM embeddings e JOIN clips c "
                            "ON c.id = e.clip_id ORDER BY 1, 2, 3").fetchall()
        said = conn.execute("SELECT kind, start, end, text FROM transcripts ORDER BY kind, start").fetchall()
    finally:
        conn.close()
    return clips, vecs, said


def test_same_file_twice_gives_the_same_clips_vectors_and_transcript(tmp_path, model):
    from engine.api import Library

    video = _noisy_narrated_video(tmp_path / "v" / "speech.mp4")
    results = []
    for run in range(3):  # one process, so a sampling decoder would have moved its random state
        lib = Library(tmp_path / f"lib{run}", device="cpu")
        lib.ctx.adopt_model(model)
        assert list(lib.index([video.parent], transcribe=True))[-1].stage == "done"
        lib.close()
        results.append(_content(tmp_path / f"lib{run}"))
    clips, vecs, said = results[0]
    assert said, "the narration was not transcribed at all"
    for other in results[1:]:
        assert other[0] == clips and other[2] == said
        for (a, b) in zip(vecs, other[1]):
            assert a[:3] == b[:3]
            assert np.allclose(np.frombuffer(a[3], np.float32), np.frombuffer(b[3], np.float32), atol=1e-5)


def test_index_and_search_work_without_a_network(tmp_path, generated_dir):
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = str(ROOT)
    base = ["unshare", "-n", sys.executable, "-m", "engine.cli", "--library", str(tmp_path / "lib"), "--device", "cpu"]
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy2(generated_dir / "red_square_tone.mp4", folder)
    res = subprocess.run([*base, "index", str(folder)], capture_output=True, text=True, env=env, timeout=900,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    res = subprocess.run([*base, "search", "--text", "a red square", "--json"], capture_output=True, text=True,
                         env=env, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "red_square_tone.mp4" in res.stdout
