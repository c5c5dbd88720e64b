"""The new-user scenario of issue 9 with a smaller budget (bench/bench_tones.py has the full one):
six generated scenes, each with its own tone; after a one-minute heads-only fine-tune, a fresh
recording of each tone (other length, phase and level), clean and with a quiet noise floor, finds
its scene's *silent* video first."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_fresh_tone_recordings_find_the_silent_video_of_their_scene(tmp_path):
    from bench.bench_tones import run

    result = run(tmp_path, minutes=1.0, before=False, variants=["clean", "noise floor"])
    assert result["held_out"]["judged"]  # 24 videos with sound: 5 held out
    for variant in ("clean", "noise floor"):  # the floor: learnt from noisy copies of the training sounds
        after = result["after"][variant]
        assert after["first"] >= 5, (variant, after)  # chance: 1 in 6
