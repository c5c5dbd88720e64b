"""The new-user scenario of issue 9 with a smaller budget (bench/bench_tones.py has the full one):
six generated scenes, each with its own tone; after a one-minute heads-only fine-tune, a fresh
recording of each tone (other length, phase and level) finds its scene's *silent* video first."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_fresh_tone_recordings_find_the_silent_video_of_their_scene(tmp_path):
    from bench.bench_tones import run

    result = run(tmp_path, minutes=1.0)
    assert result["held_out"]["judged"]  # 24 videos with sound: 5 held out
    clean = result["after"]["clean"]
    assert clean["first"] >= 5, clean  # chance: 1 in 6
