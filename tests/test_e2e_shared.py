"""End to end on real videos from ../shared/media: out-of-the-box text and sound search."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

SUBSET = {
    "video/vas/dog__video_02754.mp4": "dog",
    "video/vas/fireworks__video_02997.mp4": "fireworks",
    "video/vas/baby__video_01951.mp4": "baby",
    "video/vas/drum__video_02480.mp4": "drum",
    "video/demos/videollama__boat.mp4": "boat",
    "video/demos/difffoley__car.mp4": "car",
    "video/activitynet/v_GGSY1Qvo990.mp4": "weightlifting",
    "video/demos/moviepy__big_buck_bunny_0_30.webm": "animation",
}


@pytest.fixture(scope="module")
def shared_library(tmp_path_factory, shared_media, model):
    from engine.api import Library

    lib = Library(tmp_path_factory.mktemp("lib-shared"), device="cpu")
    lib.ctx.adopt_model(model)
    last = list(lib.index([shared_media / p for p in SUBSET], transcribe=False))[-1]
    assert last.info["files_done"] == len(SUBSET) and last.info["errors"] == 0
    yield lib
    lib.close()


def top_label(result) -> str:
    return next(label for p, label in SUBSET.items() if result.moments[0].path.endswith(p))


@pytest.mark.parametrize("query,label", [("a dog", "dog"), ("a boat on the water", "boat"), ("a car", "car"),
                                         ("a drum", "drum"), ("a woman lifting a barbell", "weightlifting")])
def test_text_finds_the_right_video_first(shared_library, query, label):
    result = shared_library.search_text(query, top_k=5)
    assert top_label(result) == label
    assert "seen" in result.moments[0].reasons


@pytest.mark.parametrize("clip,label", [("audio/esc50/4-119647-A-48.flac", "fireworks"),
                                        ("audio/esc50/4-167077-A-20.flac", "baby")])
def test_real_sound_query(shared_library, shared_media, clip, label):
    path = shared_media / clip
    if not path.exists():
        pytest.skip(f"{clip} not in the shared media")
    result = shared_library.search_audio(path, top_k=8)
    assert result.moments and "heard" in result.moments[0].reasons  # found by how it sounds
    top3 = {next(lbl for p, lbl in SUBSET.items() if m.path.endswith(p)) for m in result.moments[:3]}
    assert label in top3


def test_moments_carry_thumbnails(shared_library):
    moment = shared_library.search_text("a dog", top_k=1).moments[0]
    thumb = shared_library.thumbnail(moment.path, moment.best_time)
    assert thumb.exists() and thumb.stat().st_size > 1000
    assert shared_library.thumbnail(moment.path, moment.best_time) == thumb  # cached
